/// Differentiable operations on `Variable`s: each computes its result and, when recording, the closure that maps the
/// result's gradient to the inputs' gradients (see `Autograd.record`).
///
/// PyTorch: `torch.nn.functional` (and the `torch.*` operators it builds on).
public enum Functional {}

extension Functional {
    /// `y = x W^T + b` over the last dimension: `x [*, inFeatures]`, `weight [outFeatures, inFeatures]`,
    /// `bias [outFeatures]`, `y [*, outFeatures]`. The products run on CBLAS `sgemm` (forward and both gradients).
    ///
    /// PyTorch: `F.linear(input, weight, bias)`.
    /// - Throws: `QuantizationError.invalidOperand` for quantized payloads or mismatched shapes.
    public static func linear(_ input: Variable, weight: Variable, bias: Variable? = nil) throws -> Variable {
        let operation = "linear"
        let x = try input.floatTensor(for: operation)
        let w = try weight.floatTensor(for: operation + " (weight)")
        let b = try bias.map { try $0.floatTensor(for: operation + " (bias)") }
        guard w.rank == 2 else {
            throw QuantizationError.invalidOperand(
                operation: operation, reason: "the weight must be 2-D [outFeatures, inFeatures], got \(w.shape)")
        }
        let (outFeatures, inFeatures) = (w.shape[0], w.shape[1])
        guard x.rank >= 1, x.shape[x.rank - 1] == inFeatures else {
            throw QuantizationError.invalidOperand(
                operation: operation, reason: "mat1 and mat2 shapes cannot be multiplied: the input has shape "
                    + "\(x.shape) but the weight expects \(inFeatures) input features (last dimension)")
        }
        if let b, b.shape != [outFeatures] {
            throw QuantizationError.invalidOperand(
                operation: operation, reason: "the bias must have shape [\(outFeatures)], got \(b.shape)")
        }
        let rows = x.count / max(inFeatures, 1)
        let outShape = Array(x.shape.dropLast()) + [outFeatures]
        let y = x.withUnsafeBufferPointer { px in
            w.withUnsafeBufferPointer { pw in
                TensorMath.make(outShape) { py, _ in
                    var beta: Float = 0
                    if let b {
                        b.withUnsafeBufferPointer { pb in
                            for r in 0..<rows { (py + r * outFeatures).update(from: pb.baseAddress!, count: outFeatures) }
                        }
                        beta = 1
                    }
                    BLAS.sgemm(.none, .transposed, m: rows, n: outFeatures, k: inFeatures, a: px.baseAddress!,
                               lda: inFeatures, b: pw.baseAddress!, ldb: inFeatures, beta: beta, c: py,
                               ldc: outFeatures)
                }
            }
        }
        let inputs = bias.map { [input, weight, $0] } ?? [input, weight]
        return Autograd.record("LinearBackward", output: y, inputs: inputs) { dy in
            dy.withUnsafeBufferPointer { pdy in
                let dx: Tensor<Float>? = input.requiresGrad ? w.withUnsafeBufferPointer { pw in
                    TensorMath.make(x.shape) { pdx, _ in
                        BLAS.sgemm(.none, .none, m: rows, n: inFeatures, k: outFeatures, a: pdy.baseAddress!,
                                   lda: outFeatures, b: pw.baseAddress!, ldb: inFeatures, c: pdx, ldc: inFeatures)
                    }
                } : nil
                let dw: Tensor<Float>? = weight.requiresGrad ? x.withUnsafeBufferPointer { px in
                    TensorMath.make(w.shape) { pdw, _ in
                        BLAS.sgemm(.transposed, .none, m: outFeatures, n: inFeatures, k: rows, a: pdy.baseAddress!,
                                   lda: outFeatures, b: px.baseAddress!, ldb: inFeatures, c: pdw, ldc: inFeatures)
                    }
                } : nil
                var result = [dx, dw]
                if let bias {
                    result.append(bias.requiresGrad ? TensorMath.make([outFeatures]) { pdb, _ in
                        pdb.initialize(repeating: 0, count: outFeatures)
                        for r in 0..<rows {
                            let row = pdy.baseAddress! + r * outFeatures
                            for o in 0..<outFeatures { pdb[o] += row[o] }
                        }
                    } : nil)
                }
                return result
            }
        }
    }
}
