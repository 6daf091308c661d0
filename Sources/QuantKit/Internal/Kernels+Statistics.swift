// The C calls of the observers: per-channel min/max, torch.histc, the histogram observer state update and merge,
// and the three range searches (PyTorch's L2, ONNX Runtime's percentile, TensorRT's entropy). Swift types only.
internal import CKernels

extension Kernels {
    /// Per-channel min/max of a tensor viewed as `[outer, channels, inner]`; NaN skipped, infinities too with
    /// `finiteOnly`. A channel with nothing left gets `(+infinity, -infinity)`.
    static func minMaxPerChannel(view: ChannelView, input: UnsafePointer<Float>?, finiteOnly: Bool)
        throws(QuantizationError) -> (mins: [Float], maxs: [Float])
    {
        var mins = [Float](repeating: .infinity, count: view.channels)
        var maxs = [Float](repeating: -.infinity, count: view.channels)
        let flags = finiteOnly ? UInt32(QK_MINMAX_FINITE_ONLY) : 0
        let status = mins.withUnsafeMutableBufferPointer { lo in
            maxs.withUnsafeMutableBufferPointer { hi in
                qk_minmax_per_channel_f32(view.outer, view.channels, view.inner, input, flags, lo.baseAddress,
                                          hi.baseAddress)
            }
        }
        try check(status)
        return (mins, maxs)
    }

    /// `torch.histc(x, bins, lo, hi)` (of `|x|` with `absolute`) added to `histogram`.
    static func histogram(count: Int, input: UnsafePointer<Float>?, lo: Float, hi: Float, absolute: Bool,
                          into histogram: inout [Float]) throws(QuantizationError)
    {
        let flags = absolute ? UInt32(QK_HISTOGRAM_ABSOLUTE) : 0
        let bins = histogram.count
        let status = histogram.withUnsafeMutableBufferPointer { h in
            qk_histogram_f32(count, input, lo, hi, bins, flags, h.baseAddress)
        }
        try check(status)
    }

    /// HistogramObserver.forward on (histogram, min, max). With `batchRange`, returns the batch's finite min/max of
    /// x (which costs a little: without it, a batch inside the current range is binned in one pass and nothing else).
    static func histogramObserve(
        count: Int, input: UnsafePointer<Float>?, upsampleRate: Int, absolute: Bool, batchRange: Bool,
        histogram: inout [Float], min: inout Float, max: inout Float
    ) throws(QuantizationError) -> (min: Float, max: Float)? {
        var batchMin = Float.infinity, batchMax = -Float.infinity
        let flags = absolute ? UInt32(QK_HISTOGRAM_ABSOLUTE) : 0
        let bins = histogram.count
        let status = histogram.withUnsafeMutableBufferPointer { h in
            batchRange
                ? qk_histogram_observe_f32(count, input, bins, upsampleRate, flags, h.baseAddress, &min, &max,
                                           &batchMin, &batchMax)
                : qk_histogram_observe_f32(count, input, bins, upsampleRate, flags, h.baseAddress, &min, &max, nil,
                                           nil)
        }
        try check(status)
        return batchRange ? (batchMin, batchMax) : nil
    }

    /// Merges histogram states (same bin count) over the union of their ranges, in array order.
    static func histogramMerge(bins: Int, upsampleRate: Int, states: [(histogram: [Float], min: Float, max: Float)])
        throws(QuantizationError) -> (histogram: [Float], min: Float, max: Float)
    {
        // One contiguous copy, so that every pointer stays valid for the call.
        var all = [Float]()
        all.reserveCapacity(bins * states.count)
        for state in states { all.append(contentsOf: state.histogram) }
        let mins = states.map(\.min), maxs = states.map(\.max)
        var out = [Float](repeating: 0, count: bins)
        var lo = Float.infinity, hi = -Float.infinity
        let status = all.withUnsafeBufferPointer { a in
            let pointers: [UnsafePointer<Float>?] = (0..<states.count).map { a.baseAddress! + $0 * bins }
            return pointers.withUnsafeBufferPointer { p in
                mins.withUnsafeBufferPointer { mn in
                    maxs.withUnsafeBufferPointer { mx in
                        out.withUnsafeMutableBufferPointer { o in
                            qk_histogram_merge_f32(states.count, bins, upsampleRate, p.baseAddress, mn.baseAddress,
                                                   mx.baseAddress, o.baseAddress, &lo, &hi)
                        }
                    }
                }
            }
        }
        try check(status)
        return (out, lo, hi)
    }

    /// HistogramObserver._non_linear_param_search.
    static func histogramL2Range(histogram: [Float], min: Float, max: Float, dstBins: Double)
        throws(QuantizationError) -> (lo: Float, hi: Float)
    {
        var lo: Float = 0, hi: Float = 0
        let status = histogram.withUnsafeBufferPointer { h in
            qk_histogram_l2_range_f32(h.count, h.baseAddress, min, max, dstBins, &lo, &hi)
        }
        try check(status)
        return (lo, hi)
    }

    /// ONNX Runtime's percentile range, clamped to the data's range.
    static func histogramPercentileRange(
        histogram: [Float], min: Float, max: Float, percentile: Double, absolute: Bool, dataMin: Float, dataMax: Float
    ) throws(QuantizationError) -> (lo: Float, hi: Float) {
        var lo: Float = 0, hi: Float = 0
        let flags = absolute ? UInt32(QK_HISTOGRAM_ABSOLUTE) : 0
        let status = histogram.withUnsafeBufferPointer { h in
            qk_histogram_percentile_range_f32(h.count, h.baseAddress, min, max, percentile, flags, dataMin, dataMax,
                                              &lo, &hi)
        }
        try check(status)
        return (lo, hi)
    }

    /// TensorRT's entropy (KL divergence) threshold on a histogram of |x| over [0, max].
    static func histogramEntropyAmax(histogram: [Float], max: Float, levels: Int, startBin: Int)
        throws(QuantizationError) -> Float
    {
        var amax: Float = 0
        let status = histogram.withUnsafeBufferPointer { h in
            qk_histogram_entropy_amax_f32(h.count, h.baseAddress, max, levels, startBin, &amax)
        }
        try check(status)
        return amax
    }
}
