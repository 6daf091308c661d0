import QuantKit
import XCTest

/// Finite-difference checks of reverse-mode gradients.
enum GradientCheck {
    /// Random tensor with values in `range` from a seeded generator.
    static func random(_ shape: [Int], in range: Range<Float> = -1..<1, seed: UInt64) -> Tensor<Float> {
        var generator = RandomGenerator(seed: seed)
        return try! generator.uniform(shape: shape, in: range)
    }

    /// Values at least `gap` apart (a shuffled ramp plus small noise), so that max pooling has a unique winner that
    /// a perturbation of `step` cannot change.
    static func distinct(_ shape: [Int], gap: Float = 0.1, seed: UInt64) -> Tensor<Float> {
        var generator = RandomGenerator(seed: seed)
        let count = shape.reduce(1, *)
        let order = try! generator.permutation(count)
        let values = order.map { Float($0) * gap - Float(count) * gap / 2 + generator.nextFloat() * gap * 0.1 }
        return try! Tensor(shape: shape, scalars: values)
    }

    /// Moves every element at least `margin` away from each of `kinks` (where the function is not differentiable).
    static func avoiding(_ kinks: [Float], margin: Float = 0.05, _ t: Tensor<Float>) -> Tensor<Float> {
        let values = t.scalars.map { v -> Float in
            var v = v
            for k in kinks where abs(v - k) < margin { v = v < k ? k - margin : k + margin }
            return v
        }
        return try! Tensor(shape: t.shape, scalars: values)
    }

    /// Compares the gradients of `L = sum(f(x) * r)` (r a fixed random tensor) with respect to every input that
    /// `differentiable` marks, computed by backward, against central differences `(L(x + h) - L(x - h)) / 2h` with `L`
    /// summed in double precision, at up to `samples` elements per input.
    /// Returns the number of mismatches, each also reported as a test failure when `report`.
    @discardableResult
    static func check(
        _ inputs: [Tensor<Float>], differentiable: [Bool]? = nil, step: Float = 1e-2, relativeTolerance: Float = 1e-2,
        absoluteTolerance: Float = 1e-3, samples: Int = 48, report: Bool = true, file: StaticString = #filePath,
        line: UInt = #line, _ f: ([Variable]) throws -> Variable
    ) throws -> Int {
        let marks = differentiable ?? Array(repeating: true, count: inputs.count)
        let leaves = zip(inputs, marks).map { Variable($0, requiresGrad: $1) }
        let output = try f(leaves)
        let shape = output.shape
        let weights = random(shape, in: -1..<1, seed: 99)
        let loss = try Functional.sum(output * Variable(weights))
        try loss.backward()

        func objective(_ values: [Tensor<Float>]) throws -> Double {
            try Autograd.withNoGrad {
                let y = try f(values.map { Variable($0) })
                guard let t = y.tensor else { throw QuantizationError.invalidArgument("quantized output") }
                return zip(t.scalars, weights.scalars).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
            }
        }

        var failures = 0
        for (index, input) in inputs.enumerated() where marks[index] {
            guard let analytic = leaves[index].grad else {
                if report { XCTFail("input \(index) received no gradient", file: file, line: line) }
                failures += 1
                continue
            }
            XCTAssertEqual(analytic.shape, input.shape, "gradient shape of input \(index)", file: file, line: line)
            let count = input.count
            let stride = max(1, count / samples)
            for element in Swift.stride(from: 0, to: count, by: stride) {
                var plus = inputs, minus = inputs
                plus[index] = perturbed(input, element, step)
                minus[index] = perturbed(input, element, -step)
                let numeric = Float((try objective(plus) - objective(minus)) / Double(2 * step))
                let exact = analytic.scalars[element]
                let tolerance = absoluteTolerance + relativeTolerance * max(abs(numeric), abs(exact))
                if abs(numeric - exact) > tolerance {
                    failures += 1
                    if report, failures <= 3 {
                        XCTFail("input \(index) element \(element): backward \(exact), finite difference \(numeric)",
                                file: file, line: line)
                    }
                }
            }
        }
        return failures
    }

    static func perturbed(_ t: Tensor<Float>, _ element: Int, _ delta: Float) -> Tensor<Float> {
        var copy = t
        copy.withUnsafeMutableBufferPointer { $0[element] += delta }
        return copy
    }
}

/// Asserts that two float arrays agree element-wise within `tolerance` (absolute plus relative).
func assertElementsClose(_ actual: [Float], _ expected: [Float], tolerance: Float = 1e-5, _ message: String = "",
                 file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(actual.count, expected.count, "element count \(message)", file: file, line: line)
    var shown = 0
    for (i, (a, e)) in zip(actual, expected).enumerated() where !(abs(a - e) <= tolerance * (1 + abs(e))) {
        shown += 1
        if shown <= 3 { XCTFail("element \(i): \(a) vs expected \(e) \(message)", file: file, line: line) }
    }
}
