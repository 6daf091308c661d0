/// A seeded pseudo-random number generator (xoshiro256**, seeded through SplitMix64) for weight initialisation,
/// shuffling and dropout, so that runs reproduce.
///
/// PyTorch: `torch.Generator().manual_seed(seed)` passed as `generator=` to `torch.rand`, `torch.randn`,
/// `torch.randperm`, `torch.bernoulli` and `DataLoader`. Only reproducibility is promised: the values differ from
/// PyTorch's (which uses a Mersenne Twister and Philox). Every helper here uses integer arithmetic and IEEE basic
/// operations only (its logarithm is a polynomial, not the C library's), so a seed gives the same values on every
/// platform and Swift version. The generator is a value: copying it forks the stream (both copies then produce the
/// same values), like `torch.Generator.get_state()` / `set_state()`.
public struct RandomGenerator: RandomNumberGenerator, Sendable, Equatable {
    private var s0: UInt64
    private var s1: UInt64
    private var s2: UInt64
    private var s3: UInt64

    /// A generator whose whole state derives from `seed` (SplitMix64 expands it to the 256-bit state, which is
    /// never all zero).
    ///
    /// PyTorch: `torch.Generator().manual_seed(seed)` / `torch.manual_seed(seed)`.
    public init(seed: UInt64) {
        var x = seed
        func splitMix() -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        // SplitMix64's output is a bijection of distinct counters, so at most one of the four words is zero.
        s0 = splitMix()
        s1 = splitMix()
        s2 = splitMix()
        s3 = splitMix()
    }

    /// The next 64 random bits (xoshiro256**).
    ///
    /// PyTorch: `torch.randint(0, 2**63, (), generator=g)` draws from the generator the same way (other values).
    public mutating func next() -> UInt64 {
        let result = ((s1 &* 5) << 7 | (s1 &* 5) >> 57) &* 9
        let t = s1 << 17
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = s3 << 45 | s3 >> 19
        return result
    }

    /// Advances the state by 2^128 steps: a stream that does not overlap this one for 2^128 draws. Use it to derive
    /// independent generators (e.g. one per worker) from one seed.
    ///
    /// PyTorch: no direct equivalent (PyTorch seeds workers with `base_seed + worker_id`).
    public mutating func jump() {
        let table: [UInt64] = [0x180E_C6D3_3CFD_0ABA, 0xD5A6_1266_F0C9_392C,
                               0xA958_2618_E03F_C9AA, 0x39AB_DC45_29B1_661C]
        var t0: UInt64 = 0, t1: UInt64 = 0, t2: UInt64 = 0, t3: UInt64 = 0
        for word in table {
            for bit in 0..<64 {
                if word & (1 << UInt64(bit)) != 0 {
                    t0 ^= s0
                    t1 ^= s1
                    t2 ^= s2
                    t3 ^= s3
                }
                _ = next()
            }
        }
        (s0, s1, s2, s3) = (t0, t1, t2, t3)
    }

    // MARK: Scalars

    /// A uniform `Float` in `[0, 1)`: one of the 2^24 multiples of 2^-24.
    ///
    /// PyTorch: `torch.rand((), generator=g)`.
    public mutating func nextFloat() -> Float {
        Float(next() >> 40) * 0x1p-24
    }

    /// A uniform `Double` in `[0, 1)`: one of the 2^53 multiples of 2^-53.
    ///
    /// PyTorch: `torch.rand((), dtype=torch.float64, generator=g)`.
    public mutating func nextDouble() -> Double {
        Double(next() >> 11) * 0x1p-53
    }

    /// A uniform `Float` in `range` (`lowerBound + (upperBound - lowerBound) * u`, kept below `upperBound` when
    /// rounding would reach it).
    ///
    /// PyTorch: `torch.empty(()).uniform_(a, b, generator=g)`.
    /// - Throws: `DataError.invalidArgument` for an empty range or non-finite bounds (or a width that overflows).
    public mutating func nextFloat(in range: Range<Float>) throws(DataError) -> Float {
        let width = try Self.checkedWidth(range, function: "RandomGenerator.nextFloat(in:)")
        return Self.scale(nextFloat(), range: range, width: width)
    }

    /// A uniform integer in `0..<upperBound`, without modulo bias (Lemire's multiply-and-reject).
    ///
    /// PyTorch: `torch.randint(upperBound, (), generator=g)`.
    /// - Throws: `DataError.invalidArgument` when `upperBound < 1`.
    public mutating func nextInt(below upperBound: Int) throws(DataError) -> Int {
        guard upperBound > 0 else {
            throw .invalidArgument(function: "RandomGenerator.nextInt(below:)",
                                   reason: "upper bound must be >= 1, got \(upperBound)")
        }
        return bounded(UInt64(upperBound))
    }

    /// A standard normal `Double` (Marsaglia's polar method).
    ///
    /// PyTorch: `torch.randn((), dtype=torch.float64, generator=g)`.
    public mutating func nextNormal() -> Double {
        while true {
            // u, v uniform in (-1, 1) on a 2^-52 grid; s in (0, 1) is never subnormal.
            let u = Double(Int64(bitPattern: next()) >> 11) * 0x1p-52
            let v = Double(Int64(bitPattern: next()) >> 11) * 0x1p-52
            let s = u * u + v * v
            if s > 0 && s < 1 {
                return u * (-2 * Self.logarithm(s) / s).squareRoot()
            }
        }
    }

    // MARK: Tensors

    /// A tensor of uniform values in `range`.
    ///
    /// PyTorch: `torch.empty(shape).uniform_(a, b, generator=g)` (with `range = a..<b`), the initialiser behind
    /// `nn.Linear` / `nn.Conv2d`'s default `kaiming_uniform_` (`a = -bound`, `b = bound`).
    /// - Throws: `DataError.invalidArgument` for a negative dimension, an empty range or non-finite bounds.
    public mutating func uniform(shape: [Int], in range: Range<Float>) throws(DataError) -> Tensor<Float> {
        let function = "RandomGenerator.uniform(shape:in:)"
        let width = try Self.checkedWidth(range, function: function)
        return try Self.fill(shape: shape, function: function) { Self.scale(nextFloat(), range: range, width: width) }
    }

    /// A tensor of normal values `mean + std * z` (`z` standard normal, rounded to `Float`).
    ///
    /// PyTorch: `torch.randn(shape, generator=g) * std + mean` / `torch.empty(shape).normal_(mean, std, generator=g)`.
    /// - Throws: `DataError.invalidArgument` for a negative dimension, a non-finite mean or a negative or non-finite
    ///   standard deviation.
    public mutating func normal(shape: [Int], mean: Float = 0, std: Float = 1) throws(DataError) -> Tensor<Float> {
        let function = "RandomGenerator.normal(shape:mean:std:)"
        guard mean.isFinite, std.isFinite, std >= 0 else {
            throw .invalidArgument(function: function, reason: "expected a finite mean and a finite std >= 0, got "
                                   + "mean \(mean), std \(std)")
        }
        return try Self.fill(shape: shape, function: function) { Float(nextNormal()) * std + mean }
    }

    /// A tensor of 1s (each with probability `probability`) and 0s.
    ///
    /// PyTorch: `torch.bernoulli(torch.full(shape, p), generator=g)`.
    /// - Throws: `DataError.invalidArgument` for a negative dimension or `probability` outside `0...1`.
    public mutating func bernoulli(shape: [Int], probability: Float) throws(DataError) -> Tensor<Float> {
        let function = "RandomGenerator.bernoulli(shape:probability:)"
        try Self.checkProbability(probability, function: function)
        return try Self.fill(shape: shape, function: function) { nextFloat() < probability ? 1 : 0 }
    }

    /// The mask dropout multiplies by: each element is 0 with probability `p`, else `1 / (1 - p)` (all 0 when
    /// `p == 1`), so that the expected value of `x * mask` is `x`.
    ///
    /// PyTorch: the mask inside `torch.nn.functional.dropout(x, p, training=True)`
    /// (`bernoulli(1 - p) / (1 - p)`).
    /// - Throws: `DataError.invalidArgument` for a negative dimension or `p` outside `0...1`.
    public mutating func dropoutMask(shape: [Int], p: Float) throws(DataError) -> Tensor<Float> {
        let function = "RandomGenerator.dropoutMask(shape:p:)"
        try Self.checkProbability(p, function: function)
        let keep = 1 - p
        let scale: Float = keep > 0 ? 1 / keep : 0
        return try Self.fill(shape: shape, function: function) { nextFloat() < keep ? scale : 0 }
    }

    /// A random permutation of `0..<count` (Fisher-Yates).
    ///
    /// PyTorch: `torch.randperm(count, generator=g).tolist()`.
    /// - Throws: `DataError.invalidArgument` when `count < 0`.
    public mutating func permutation(_ count: Int) throws(DataError) -> [Int] {
        guard count >= 0 else {
            throw .invalidArgument(function: "RandomGenerator.permutation(_:)",
                                   reason: "count must be >= 0, got \(count)")
        }
        var indices = Array(0..<count)
        shuffle(&indices)
        return indices
    }

    /// Shuffles a collection in place (Fisher-Yates, unbiased). Unlike the standard library's `shuffle(using:)`,
    /// whose algorithm may change between Swift versions, the order depends on the seed only.
    ///
    /// Python: `random.shuffle(x)` with a seeded `random.Random`.
    public mutating func shuffle<C: MutableCollection & RandomAccessCollection>(_ collection: inout C) {
        let count = collection.count
        guard count > 1 else { return }
        for i in stride(from: count - 1, to: 0, by: -1) {
            let j = bounded(UInt64(i + 1))
            if i != j {
                collection.swapAt(collection.index(collection.startIndex, offsetBy: i),
                                  collection.index(collection.startIndex, offsetBy: j))
            }
        }
    }

    // MARK: Internals

    /// Uniform in `0..<bound` (`bound >= 1`), Lemire's nearly divisionless method.
    private mutating func bounded(_ bound: UInt64) -> Int {
        var product = bound.multipliedFullWidth(by: next())
        if product.low < bound {
            let threshold = (0 &- bound) % bound
            while product.low < threshold {
                product = bound.multipliedFullWidth(by: next())
            }
        }
        return Int(product.high)
    }

    private static func checkedWidth(_ range: Range<Float>, function: String) throws(DataError) -> Float {
        let width = range.upperBound - range.lowerBound
        guard range.lowerBound.isFinite, range.upperBound.isFinite, width.isFinite, !range.isEmpty else {
            throw .invalidArgument(function: function, reason: "expected a non-empty range with finite bounds, got "
                                   + "\(range.lowerBound)..<\(range.upperBound)")
        }
        return width
    }

    private static func scale(_ u: Float, range: Range<Float>, width: Float) -> Float {
        let value = range.lowerBound + width * u
        return value < range.upperBound ? value : range.upperBound.nextDown
    }

    private static func checkProbability(_ p: Float, function: String) throws(DataError) {
        guard p >= 0 && p <= 1 else {
            throw .invalidArgument(function: function, reason: "probability must be in 0...1, got \(p)")
        }
    }

    private static func fill(shape: [Int], function: String, _ value: () -> Float) throws(DataError) -> Tensor<Float> {
        let tensor: Tensor<Float>
        do {
            tensor = try Tensor<Float>(unsafeUninitializedShape: shape) { buffer in
                for i in buffer.indices { buffer[i] = value() }
            }
        } catch {
            throw .invalidArgument(function: function, reason: "\(error)")
        }
        return tensor
    }

    /// Natural logarithm of a positive normal `x` from IEEE basic operations only, so it gives the same bits on
    /// every platform (libm's `log` may differ in the last place). Accurate to a few ulp.
    static func logarithm(_ x: Double) -> Double {
        var exponent = Int(x.exponent)
        var m = x.significand  // [1, 2)
        if m > 1.4142135623730951 {
            m *= 0.5
            exponent += 1
        }
        // ln(m) = 2 atanh(t), t = (m - 1) / (m + 1), |t| <= 0.1716: the odd series to t^23 is below 1 ulp.
        let t = (m - 1) / (m + 1)
        let t2 = t * t
        var series = 1.0 / 23
        for k in stride(from: 21, through: 1, by: -2) {
            series = series * t2 + 1.0 / Double(k)
        }
        return Double(exponent) * 0.693_147_180_559_945_3 + 2 * t * series
    }
}
