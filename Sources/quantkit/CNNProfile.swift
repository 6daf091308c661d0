import Foundation
import QuantKit

/// The int8 operator chain of the converted Fashion-MNIST CNN (what `convert` produces: Quantize, ConvReLU2d with BN
/// folded, quantized max pool, ConvReLU2d, max pool, flatten, LinearReLU, Linear, DeQuantize), built by hand from a
/// float CNN in evaluation mode, so it can be timed stage by stage against the float model.
struct CNNInt8Chain {
    struct Activation { var scale: Float; var zeroPoint: Int }
    let input: Activation
    let conv1: PackedConv2dWeight, conv2: PackedConv2dWeight
    let out1: Activation, out2: Activation
    let fc1: PackedLinearWeight, fc2: PackedLinearWeight
    let outFc1: Activation, outFc2: Activation
    let pool = MaxPool2d(kernelSize: 2)

    /// Weights per channel (symmetric qint8) from the float layers with BN folded; activation parameters from the
    /// min/max of the float activations on `calibration` (range 0...127, as the x86 default's reduce_range).
    init(_ model: Module, calibration: Tensor<Float>) throws {
        model.eval()
        func activation(_ t: Tensor<Float>) -> Activation {
            let s = t.scalars
            let lo = min(0, s.min() ?? 0), hi = max(0, s.max() ?? 0)
            let scale = max((hi - lo) / 127, 1e-8)
            return Activation(scale: scale, zeroPoint: min(127, max(0, Int((-lo / scale).rounded()))))
        }
        func perChannel(_ w: Tensor<Float>) throws -> QuantizedTensor {
            let rows = w.shape[0], inner = w.count / rows
            let s = w.scalars
            let scales = (0..<rows).map { r in
                max(s[(r * inner)..<((r + 1) * inner)].map { abs($0) }.max()! / 127, 1e-8)
            }
            return try w.quantized(scales: scales, zeroPoints: Array(repeating: 0, count: rows), axis: 0,
                                   dtype: .qint8, qscheme: .perChannelSymmetric)
        }
        func folded(_ conv: Conv2d, _ bn: BatchNorm2d) throws -> PackedConv2dWeight {
            let mean = try bn.buffer("running_mean")!.scalars, variance = try bn.buffer("running_var")!.scalars
            let gamma = try bn.parameter("weight")!.data.scalars, beta = try bn.parameter("bias")!.data.scalars
            var w = conv.weight.data.scalars
            let b0 = conv.bias?.data.scalars ?? Array(repeating: 0, count: conv.outChannels)
            let inner = w.count / conv.outChannels
            var bias = [Float](repeating: 0, count: conv.outChannels)
            for o in 0..<conv.outChannels {
                let f = gamma[o] / (variance[o] + 1e-5).squareRoot()
                for i in 0..<inner { w[o * inner + i] *= f }
                bias[o] = (b0[o] - mean[o]) * f + beta[o]
            }
            return try PackedConv2dWeight(weight: perChannel(Tensor(shape: conv.weight.data.shape, scalars: w)),
                                          bias: Tensor(bias))
        }
        let features = try model.child("features"), classifier = try model.child("classifier")
        let c1 = try features.child("0", as: Conv2d.self), b1 = try features.child("1", as: BatchNorm2d.self)
        let c2 = try features.child("4", as: Conv2d.self), b2 = try features.child("5", as: BatchNorm2d.self)
        let l1 = try classifier.child("0", as: Linear.self), l2 = try classifier.child("2", as: Linear.self)
        conv1 = try folded(c1, b1)
        conv2 = try folded(c2, b2)
        fc1 = try PackedLinearWeight(weight: perChannel(l1.weight.data), bias: l1.bias?.data)
        fc2 = try PackedLinearWeight(weight: perChannel(l2.weight.data), bias: l2.bias?.data)
        // Float activations at each quantization point.
        let x = Variable(calibration)
        let a1 = try features.child("2")(try features.child("1")(try features.child("0")(x)))
        let p1 = try features.child("3")(a1)
        let a2 = try features.child("6")(try features.child("5")(try features.child("4")(p1)))
        let f = try model.child("flatten")(try features.child("7")(a2))
        let h = try classifier.child("1")(try classifier.child("0")(f))
        let logits = try classifier.child("2")(h)
        input = activation(calibration)
        out1 = activation(a1.tensor!)
        out2 = activation(a2.tensor!)
        outFc1 = activation(h.tensor!)
        outFc2 = activation(logits.tensor!)
    }

    /// The stages in order, each from the previous stage's output.
    enum Stage: String, CaseIterable {
        case quantize, conv1, pool1, conv2, pool2, flatten, fc1, fc2, dequantize
    }

    /// Runs the chain on `x`; `timings` (if given) gets each stage's seconds added.
    func run(_ x: Tensor<Float>, timings: UnsafeMutablePointer<[Double]>? = nil) throws -> Tensor<Float> {
        var t0 = now()
        func lap(_ stage: Stage) {
            let t1 = now()
            if let timings { timings.pointee[Stage.allCases.firstIndex(of: stage)!] += t1 - t0 }
            t0 = t1
        }
        var q = try x.quantized(scale: input.scale, zeroPoint: input.zeroPoint, dtype: .quint8)
        lap(.quantize)
        q = try quantizedConv2d(q, conv1, padding: 1, scale: out1.scale, zeroPoint: out1.zeroPoint, relu: true)
        lap(.conv1)
        q = try pool(Variable(q)).quantizedTensor!
        lap(.pool1)
        q = try quantizedConv2d(q, conv2, padding: 1, scale: out2.scale, zeroPoint: out2.zeroPoint, relu: true)
        lap(.conv2)
        q = try pool(Variable(q)).quantizedTensor!
        lap(.pool2)
        q = try Functional.flatten(Variable(q), startDimension: 1).quantizedTensor!
        lap(.flatten)
        q = try quantizedLinear(q, fc1, scale: outFc1.scale, zeroPoint: outFc1.zeroPoint, relu: true)
        lap(.fc1)
        q = try quantizedLinear(q, fc2, scale: outFc2.scale, zeroPoint: outFc2.zeroPoint)
        lap(.fc2)
        let y = q.dequantized()
        lap(.dequantize)
        return y
    }
}

func now() -> Double {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
}

func median(_ values: [Double]) -> Double {
    let s = values.sorted()
    guard !s.isEmpty else { return 0 }
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

/// Stage-by-stage timing of the float CNN (eval) against the hand-built int8 chain at one batch size.
func runCNNProfile(model: Module, batch: Tensor<Float>, repeats: Int) throws {
    model.eval()
    let chain = try CNNInt8Chain(model, calibration: batch)
    let features = try model.child("features"), classifier = try model.child("classifier")
    let floatStages: [(String, Module)] = try (0..<8).map { ("features.\($0)", try features.child("\($0)")) }
        + [("flatten", try model.child("flatten"))]
        + (0..<3).map { ("classifier.\($0)", try classifier.child("\($0)")) }
    var floatTimes = [[Double]](repeating: [], count: floatStages.count)
    var int8Times = [[Double]](repeating: [], count: CNNInt8Chain.Stage.allCases.count)
    var floatTotal: [Double] = [], int8Total: [Double] = []
    var agree = 0
    try Autograd.withNoGrad {
        for r in 0..<(repeats + 1) {
            var v = Variable(batch)
            let s0 = now()
            for (i, (_, m)) in floatStages.enumerated() {
                let t = now()
                v = try m(v)
                if r > 0 { floatTimes[i].append(now() - t) }
            }
            let s1 = now()
            var lap = [Double](repeating: 0, count: int8Times.count)
            let y = try chain.run(batch, timings: &lap)
            let s2 = now()
            if r > 0 {
                floatTotal.append(s1 - s0)
                int8Total.append(s2 - s1)
                for i in lap.indices { int8Times[i].append(lap[i]) }
            } else {
                let a = v.tensor!.scalars, b = y.scalars, c = y.shape[1]
                for row in 0..<y.shape[0] {
                    let fa = a[(row * c)..<((row + 1) * c)], fb = b[(row * c)..<((row + 1) * c)]
                    if fa.firstIndex(of: fa.max()!)! - row * c == fb.firstIndex(of: fb.max()!)! - row * c { agree += 1 }
                }
            }
        }
    }
    // The convolutions alone in NHWC (no permutes), to see what the NCHW interface costs.
    var nhwcTimes: [[Double]] = [[], []]
    do {
        let q0 = try batch.quantized(scale: chain.input.scale, zeroPoint: chain.input.zeroPoint, dtype: .quint8)
        let x1 = try q0.permutedToNHWC()
        let c1 = try quantizedConv2d(q0, chain.conv1, padding: 1, scale: chain.out1.scale,
                                     zeroPoint: chain.out1.zeroPoint, relu: true)
        let x2 = try quantizedMaxPool2d(c1, kernelSize: 2).permutedToNHWC()
        if let only = ProcessInfo.processInfo.environment["QUANTKIT_PROFILE_ONLY"] {   // for perf record
            for _ in 0..<(repeats * 20) {
                if only == "conv1" {
                    _ = try quantizedConv2d(x1, chain.conv1, padding: 1, scale: chain.out1.scale,
                                            zeroPoint: chain.out1.zeroPoint, relu: true, layout: .nhwc)
                } else {
                    _ = try quantizedConv2d(x2, chain.conv2, padding: 1, scale: chain.out2.scale,
                                            zeroPoint: chain.out2.zeroPoint, relu: true, layout: .nhwc)
                }
            }
            return
        }
        for _ in 0..<repeats {
            var t = now()
            _ = try quantizedConv2d(x1, chain.conv1, padding: 1, scale: chain.out1.scale,
                                    zeroPoint: chain.out1.zeroPoint, relu: true, layout: .nhwc)
            nhwcTimes[0].append(now() - t)
            t = now()
            _ = try quantizedConv2d(x2, chain.conv2, padding: 1, scale: chain.out2.scale,
                                    zeroPoint: chain.out2.zeroPoint, relu: true, layout: .nhwc)
            nhwcTimes[1].append(now() - t)
        }
    }
    func ms(_ s: Double) -> String { String(format: "%8.3f", s * 1000) }
    print("batch \(batch.shape[0]), \(repeats) runs, medians in ms; int8 agrees with fp32 on \(agree)/\(batch.shape[0])")
    print("fp32 (eval, im2col + \(Runtime.blasName) sgemm):")
    for (i, (name, m)) in floatStages.enumerated() { print("  \(name.padding(toLength: 14, withPad: " ", startingAt: 0)) \(ms(median(floatTimes[i])))  \(m.typeName)") }
    print("  total          \(ms(median(floatTotal)))")
    print("int8 chain (\(Runtime.isa), \(Runtime.numberOfThreads) thread(s)): conv1 \(chain.conv1.kernelName), conv2 \(chain.conv2.kernelName)")
    for (i, stage) in CNNInt8Chain.Stage.allCases.enumerated() {
        print("  \(stage.rawValue.padding(toLength: 14, withPad: " ", startingAt: 0)) \(ms(median(int8Times[i])))")
    }
    print("  total          \(ms(median(int8Total)))")
    print("  (conv1 in NHWC, no permutes: \(ms(median(nhwcTimes[0]))); conv2: \(ms(median(nhwcTimes[1]))))")
    print(String(format: "speedup fp32 / int8: %.2fx", median(floatTotal) / median(int8Total)))
}
