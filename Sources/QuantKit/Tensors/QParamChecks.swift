/// Swift-side validation of quantization parameters, so errors are reported as `QuantizationError`s with Swift
/// names before any C kernel runs.
enum QParamChecks {
    /// Scales must be finite, > 0 and have a finite float32 reciprocal (quantize multiplies by `1 / scale`), which
    /// rules out subnormals below about 2.9e-39. Same rule as the C API.
    static func isValidScale(_ scale: Float) -> Bool {
        scale.isFinite && scale > 0 && (1 / scale).isFinite
    }

    static func checkScale(_ scale: Float, channel: Int?) throws(QuantizationError) {
        guard isValidScale(scale) else { throw .invalidScale(scale, channel: channel) }
    }

    static func checkZeroPoint(_ zeroPoint: Int, dtype: QuantizedDType, qscheme: QScheme, channel: Int?)
        throws(QuantizationError)
    {
        guard dtype.range.contains(zeroPoint) else {
            throw .zeroPointOutOfRange(zeroPoint, dtype: dtype, channel: channel)
        }
        if qscheme.isSymmetric && zeroPoint != dtype.symmetricZeroPoint {
            throw .symmetricZeroPoint(zeroPoint, expected: dtype.symmetricZeroPoint, dtype: dtype, channel: channel)
        }
    }

    static func checkPerTensor(scale: Float, zeroPoint: Int, dtype: QuantizedDType, qscheme: QScheme)
        throws(QuantizationError)
    {
        guard !qscheme.isPerChannel else {
            throw .qschemeMismatch(qscheme, expected: "per_tensor_affine or per_tensor_symmetric")
        }
        try checkScale(scale, channel: nil)
        try checkZeroPoint(zeroPoint, dtype: dtype, qscheme: qscheme, channel: nil)
    }

    /// Normalises a PyTorch-style axis (`-rank..<rank`) into `0..<rank`.
    static func normalize(axis: Int, rank: Int) throws(QuantizationError) -> Int {
        guard rank > 0, axis >= -rank, axis < rank else { throw .axisOutOfRange(axis, rank: rank) }
        return axis < 0 ? axis + rank : axis
    }

    /// Returns the normalised axis.
    static func checkPerChannel(
        scales: [Float], zeroPoints: [Int], axis: Int, shape: [Int], dtype: QuantizedDType, qscheme: QScheme
    ) throws(QuantizationError) -> Int {
        guard qscheme.isPerChannel else {
            throw .qschemeMismatch(qscheme, expected: "per_channel_affine or per_channel_symmetric")
        }
        let axis = try normalize(axis: axis, rank: shape.count)
        let channels = shape[axis]
        guard scales.count == channels, zeroPoints.count == channels else {
            throw .channelCountMismatch(scales: scales.count, zeroPoints: zeroPoints.count, channels: channels,
                                        axis: axis)
        }
        for channel in 0..<channels {
            try checkScale(scales[channel], channel: channel)
            try checkZeroPoint(zeroPoints[channel], dtype: dtype, qscheme: qscheme, channel: channel)
        }
        return axis
    }
}
