extension Functional {
    /// Element-wise `a + b` with broadcasting (NumPy rules). The gradients are `dy` summed down to each input's
    /// shape.
    ///
    /// PyTorch: `torch.add(a, b)` / `a + b` (and `FloatFunctional.add` in quantizable models).
    /// - Throws: `QuantizationError.invalidOperand` for quantized payloads or shapes that do not broadcast.
    public static func add(_ a: Variable, _ b: Variable) throws -> Variable {
        try binary(a, b, "add", { $0 + $1 }) { dy, _, _ in (dy, dy) }
    }

    /// Element-wise `a - b` with broadcasting. PyTorch: `torch.sub(a, b)` / `a - b`.
    /// - Throws: `QuantizationError.invalidOperand` for quantized payloads or shapes that do not broadcast.
    public static func sub(_ a: Variable, _ b: Variable) throws -> Variable {
        try binary(a, b, "sub", { $0 - $1 }) { dy, _, _ in (dy, TensorMath.map(dy) { -$0 }) }
    }

    /// Element-wise `a * b` with broadcasting; the gradients are `dy * b` and `dy * a` summed down to each input's
    /// shape.
    ///
    /// PyTorch: `torch.mul(a, b)` / `a * b` (and `FloatFunctional.mul`).
    /// - Throws: `QuantizationError.invalidOperand` for quantized payloads or shapes that do not broadcast.
    public static func mul(_ a: Variable, _ b: Variable) throws -> Variable {
        try binary(a, b, "mul", { $0 * $1 }) { dy, x, y in
            (TensorMath.broadcast(dy, y, to: dy.shape, *), TensorMath.broadcast(dy, x, to: dy.shape, *))
        }
    }

    /// `x + scalar`. PyTorch: `torch.add(x, scalar)` (`FloatFunctional.add_scalar`).
    public static func add(_ x: Variable, scalar: Float) throws -> Variable {
        try elementwise(x, ElementwiseFunctions.AddScalar(scalar: scalar))
    }

    /// `x * scalar`. PyTorch: `torch.mul(x, scalar)` (`FloatFunctional.mul_scalar`).
    public static func mul(_ x: Variable, scalar: Float) throws -> Variable {
        try elementwise(x, ElementwiseFunctions.MulScalar(scalar: scalar))
    }

    /// Runs a broadcasting binary operation; `gradients(dy, a, b)` returns the gradients at the broadcast shape.
    private static func binary(
        _ a: Variable, _ b: Variable, _ name: String, _ f: (Float, Float) -> Float,
        gradients: @escaping (Tensor<Float>, Tensor<Float>, Tensor<Float>) -> (Tensor<Float>, Tensor<Float>)
    ) throws -> Variable {
        let x = try a.floatTensor(for: name)
        let y = try b.floatTensor(for: name)
        guard let shape = TensorMath.broadcastShape(x.shape, y.shape) else {
            throw QuantizationError.invalidOperand(
                operation: name, reason: "the shapes \(x.shape) and \(y.shape) do not broadcast; expected equal "
                    + "sizes or 1 in every dimension (aligned at the right)")
        }
        let result = TensorMath.broadcast(x, y, to: shape, f)
        let backwardName = name.prefix(1).uppercased() + name.dropFirst() + "Backward"
        return Autograd.record(backwardName, output: result, inputs: [a, b]) { dy in
            let (ga, gb) = gradients(dy, x, y)
            return [a.requiresGrad ? TensorMath.sum(ga, toShape: x.shape) : nil,
                    b.requiresGrad ? TensorMath.sum(gb, toShape: y.shape) : nil]
        }
    }

    /// Concatenates tensors along `dimension` (negative counts from the end); the other dimensions must agree.
    /// The gradient of each input is its slice of `dy`.
    ///
    /// PyTorch: `torch.cat(tensors, dim)` (and `FloatFunctional.cat`).
    /// - Throws: `QuantizationError.invalidOperand` for an empty list, quantized payloads, different ranks or
    ///   sizes outside `dimension`, or a dimension out of range.
    public static func cat(_ inputs: [Variable], dimension: Int = 0) throws -> Variable {
        let operation = "cat"
        func fail(_ reason: String) -> QuantizationError { .invalidOperand(operation: operation, reason: reason) }
        guard let firstInput = inputs.first else { throw fail("expected a non-empty list of tensors") }
        let tensors = try inputs.map { try $0.floatTensor(for: operation) }
        let rank = try firstInput.floatTensor(for: operation).rank
        guard rank >= 1 else { throw fail("zero-dimensional tensor cannot be concatenated") }
        guard (-rank..<rank).contains(dimension) else { throw QuantizationError.axisOutOfRange(dimension, rank: rank) }
        let dim = dimension < 0 ? dimension + rank : dimension
        for (i, t) in tensors.enumerated() {
            guard t.rank == rank, t.shape.enumerated().allSatisfy({ $0.offset == dim || $0.element == tensors[0].shape[$0.offset] }) else {
                throw fail("sizes of tensors must match except in dimension \(dim): tensor 0 has shape "
                           + "\(tensors[0].shape), tensor \(i) has shape \(t.shape)")
            }
        }
        let outer = tensors[0].shape[..<dim].reduce(1, *)
        let inner = tensors[0].shape[(dim + 1)...].reduce(1, *)
        let sizes = tensors.map { $0.shape[dim] }
        let total = sizes.reduce(0, +)
        var outShape = tensors[0].shape
        outShape[dim] = total
        let y = TensorMath.make(outShape) { py, _ in
            var offset = 0
            for (t, size) in zip(tensors, sizes) {
                t.withUnsafeBufferPointer { pt in
                    for o in 0..<outer {
                        (py + (o * total + offset) * inner).update(from: pt.baseAddress! + o * size * inner,
                                                                   count: size * inner)
                    }
                }
                offset += size
            }
        }
        return Autograd.record("CatBackward", output: y, inputs: inputs) { dy in
            dy.withUnsafeBufferPointer { g in
                var offset = 0
                var result: [Tensor<Float>?] = []
                for (input, (t, size)) in zip(inputs, zip(tensors, sizes)) {
                    defer { offset += size }
                    guard input.requiresGrad else { result.append(nil); continue }
                    let start = offset
                    result.append(TensorMath.make(t.shape) { pd, _ in
                        for o in 0..<outer {
                            (pd + o * size * inner).update(from: g.baseAddress! + (o * total + start) * inner,
                                                           count: size * inner)
                        }
                    })
                }
                return result
            }
        }
    }

    /// The same elements with another shape (one `-1` may be inferred). PyTorch: `x.reshape(shape)`.
    /// - Throws: `QuantizationError.invalidShape` / `.shapeMismatch` as `Tensor.reshaped(to:)`, or
    ///   `.invalidOperand` for a quantized payload.
    public static func reshape(_ input: Variable, _ shape: [Int]) throws -> Variable {
        let x = try input.floatTensor(for: "reshape")
        let y = try x.reshaped(to: shape)
        return Autograd.record("ReshapeBackward", output: y, inputs: [input]) { dy in
            [try dy.reshaped(to: x.shape)]
        }
    }

    /// Merges dimensions `startDimension...endDimension` (negative counts from the end) into one, keeping the
    /// row-major order, so `[N, C, H, W]` flattens to `[N, C * H * W]` in PyTorch's order.
    ///
    /// PyTorch: `torch.flatten(x, start_dim, end_dim)`.
    /// - Throws: `QuantizationError.axisOutOfRange` for a dimension out of range, `.invalidOperand` when the start
    ///   comes after the end.
    public static func flatten(_ input: Variable, startDimension: Int = 0, endDimension: Int = -1) throws -> Variable {
        let shape = try flattenedShape(input.shape, startDimension, endDimension)
        if case .quantized(let q) = input.value {
            return Variable(try q.reshaped(to: shape))
        }
        return try reshape(input, shape)
    }

    static func flattenedShape(_ shape: [Int], _ start: Int, _ end: Int) throws -> [Int] {
        let rank = max(shape.count, 1)
        guard (-rank..<rank).contains(start) else { throw QuantizationError.axisOutOfRange(start, rank: rank) }
        guard (-rank..<rank).contains(end) else { throw QuantizationError.axisOutOfRange(end, rank: rank) }
        let s = start < 0 ? start + rank : start, e = end < 0 ? end + rank : end
        guard s <= e else {
            throw QuantizationError.invalidOperand(
                operation: "flatten", reason: "flatten() has invalid args: start_dim (\(start)) cannot come after "
                    + "end_dim (\(end))")
        }
        guard shape.count > 0 else { return [1] }
        return Array(shape[..<s]) + [shape[s...e].reduce(1, *)] + Array(shape[(e + 1)...])
    }

    /// The sum of all elements as a one-element tensor of shape `[]`. PyTorch: `x.sum()`.
    public static func sum(_ input: Variable) throws -> Variable {
        let x = try input.floatTensor(for: "sum")
        let y = TensorMath.filled(Float(TensorMath.sum(x)), [])
        return Autograd.record("SumBackward", output: y, inputs: [input]) { dy in
            [TensorMath.filled(dy.scalars[0], x.shape)]
        }
    }

    /// The mean of all elements as a one-element tensor of shape `[]` (NaN for an empty tensor).
    /// PyTorch: `x.mean()`.
    public static func mean(_ input: Variable) throws -> Variable {
        let x = try input.floatTensor(for: "mean")
        let y = TensorMath.filled(Float(TensorMath.sum(x) / Double(x.count)), [])
        return Autograd.record("MeanBackward", output: y, inputs: [input]) { dy in
            [TensorMath.filled(dy.scalars[0] / Float(x.count), x.shape)]
        }
    }

    /// Zeroes each element with probability `p` and scales the others by `1 / (1 - p)` during training; the identity
    /// otherwise (or for `p == 0`). The mask comes from `generator` (`RandomGenerator.dropoutMask`), so a seeded
    /// generator reproduces it; the gradient is masked and scaled the same way.
    ///
    /// PyTorch: `F.dropout(x, p, training)` (whose mask comes from the global generator).
    /// - Throws: `QuantizationError.invalidOperand` for `p` outside [0, 1] or a quantized payload in training.
    public static func dropout(
        _ input: Variable, p: Float = 0.5, training: Bool = true, using generator: inout RandomGenerator
    ) throws -> Variable {
        guard p >= 0, p <= 1 else {
            throw QuantizationError.invalidOperand(
                operation: "dropout", reason: "dropout probability has to be between 0 and 1, but got \(p)")
        }
        guard training, p > 0 else { return input }
        let x = try input.floatTensor(for: "dropout")
        let mask = try generator.dropoutMask(shape: x.shape, p: p)
        return try dropout(input, x, mask: mask)
    }

    /// Dropout with a given mask (0 or `1 / (1 - p)` per element).
    static func dropout(_ input: Variable, _ x: Tensor<Float>, mask: Tensor<Float>) throws -> Variable {
        let y = TensorMath.zip(x, mask, *)
        return Autograd.record("DropoutBackward", output: y, inputs: [input]) { dy in
            [TensorMath.zip(dy, mask, *)]
        }
    }
}

extension Variable {
    /// `a + b` with broadcasting. PyTorch: `a + b`.
    public static func + (lhs: Variable, rhs: Variable) throws -> Variable { try Functional.add(lhs, rhs) }
    /// `a - b` with broadcasting. PyTorch: `a - b`.
    public static func - (lhs: Variable, rhs: Variable) throws -> Variable { try Functional.sub(lhs, rhs) }
    /// `a * b` element-wise with broadcasting. PyTorch: `a * b`.
    public static func * (lhs: Variable, rhs: Variable) throws -> Variable { try Functional.mul(lhs, rhs) }
    /// `x * scalar`. PyTorch: `x * scalar`.
    public static func * (lhs: Variable, rhs: Float) throws -> Variable { try Functional.mul(lhs, scalar: rhs) }
    /// `x + scalar`. PyTorch: `x + scalar`.
    public static func + (lhs: Variable, rhs: Float) throws -> Variable { try Functional.add(lhs, scalar: rhs) }
}

extension QuantizedTensor {
    /// The same values and quantization parameters with another shape (per-tensor only, or a per-channel tensor
    /// whose axis keeps its position and size).
    func reshaped(to shape: [Int]) throws -> QuantizedTensor {
        let newValues: Values
        switch values {
        case .quint8(let t): newValues = .quint8(try t.reshaped(to: shape))
        case .qint8(let t): newValues = .qint8(try t.reshaped(to: shape))
        case .qint32(let t): newValues = .qint32(try t.reshaped(to: shape))
        }
        if let axis {
            guard axis < shape.count, shape[..<(axis + 1)] == self.shape[..<(axis + 1)] else {
                throw QuantizationError.invalidOperand(
                    operation: "reshape", reason: "a per-channel quantized tensor (axis \(axis)) can only be reshaped "
                        + "when the dimensions up to its axis stay the same; \(self.shape) -> \(shape)")
            }
        }
        return QuantizedTensor(values: newValues, qscheme: qscheme, scales: scales, zeroPoints: zeroPoints, axis: axis)
    }
}
