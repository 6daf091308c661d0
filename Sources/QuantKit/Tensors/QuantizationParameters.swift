/// The scales and zero points chosen for a tensor, with the dtype and scheme they are for: what an observer's
/// `calculateQParams()` returns and what `Tensor<Float>.quantized(with:)` takes.
///
/// PyTorch: the `(scale, zero_point)` pair of `ObserverBase.calculate_qparams()`, together with the observer's
/// `dtype`, `qscheme` and `ch_axis`.
public struct QuantizationParameters: Sendable, Equatable, Codable, CustomStringConvertible {
    /// The integer type. PyTorch: `observer.dtype`.
    public var dtype: QuantizedDType
    /// Per tensor or per channel, affine or symmetric. PyTorch: `observer.qscheme`.
    public var qscheme: QScheme
    /// One scale per tensor, or one per channel. PyTorch: the `scale` tensor.
    public var scales: [Float]
    /// One zero point per tensor, or one per channel. PyTorch: the `zero_point` tensor.
    public var zeroPoints: [Int]
    /// The channel axis of a per-channel scheme, `nil` per tensor. PyTorch: `observer.ch_axis`.
    public var axis: Int?

    /// Parameters for one whole tensor. No validation here; `quantized(with:)` validates.
    public init(scale: Float, zeroPoint: Int, dtype: QuantizedDType, qscheme: QScheme = .perTensorAffine) {
        self.dtype = dtype
        self.qscheme = qscheme
        self.scales = [scale]
        self.zeroPoints = [zeroPoint]
        self.axis = nil
    }

    /// Parameters per slice along `axis`. No validation here; `quantized(with:)` validates.
    public init(scales: [Float], zeroPoints: [Int], axis: Int, dtype: QuantizedDType,
                qscheme: QScheme = .perChannelAffine) {
        self.dtype = dtype
        self.qscheme = qscheme
        self.scales = scales
        self.zeroPoints = zeroPoints
        self.axis = axis
    }

    /// The first (per tensor: the only) scale. PyTorch: `scale.item()`.
    public var scale: Float { scales.first ?? 1 }
    /// The first (per tensor: the only) zero point. PyTorch: `zero_point.item()`.
    public var zeroPoint: Int { zeroPoints.first ?? 0 }

    public var description: String {
        if let axis { return "QuantizationParameters(\(dtype), \(qscheme), axis: \(axis), scales: \(scales), " +
                             "zeroPoints: \(zeroPoints))" }
        return "QuantizationParameters(\(dtype), \(qscheme), scale: \(scale), zeroPoint: \(zeroPoint))"
    }
}

extension Tensor where Scalar == Float {
    /// Quantizes with parameters an observer chose: per tensor or per channel as `parameters.qscheme` says.
    ///
    /// PyTorch: `torch.quantize_per_tensor(x, scale, zero_point, dtype)` or
    /// `torch.quantize_per_channel(x, scales, zero_points, axis, dtype)`, as eager-mode convert calls them.
    /// - Throws: what `quantized(scale:zeroPoint:dtype:qscheme:)` and `quantized(scales:zeroPoints:axis:dtype:qscheme:)`
    ///   throw; `.qschemeMismatch` when a per-channel scheme has no axis.
    public func quantized(with parameters: QuantizationParameters) throws -> QuantizedTensor {
        if parameters.qscheme.isPerChannel {
            guard let axis = parameters.axis else {
                throw QuantizationError.qschemeMismatch(parameters.qscheme, expected: "a per-tensor scheme (no axis)")
            }
            return try quantized(scales: parameters.scales, zeroPoints: parameters.zeroPoints, axis: axis,
                                 dtype: parameters.dtype, qscheme: parameters.qscheme)
        }
        guard parameters.scales.count == 1, parameters.zeroPoints.count == 1 else {
            throw QuantizationError.channelCountMismatch(scales: parameters.scales.count,
                                                         zeroPoints: parameters.zeroPoints.count, channels: 1, axis: 0)
        }
        return try quantized(scale: parameters.scale, zeroPoint: parameters.zeroPoint, dtype: parameters.dtype,
                             qscheme: parameters.qscheme)
    }
}
