/// Process-wide settings of the kernel runtime: which SIMD instruction set the kernels use and how many threads
/// they run on.
///
/// PyTorch: `torch.backends.quantized.engine`, `torch.backends.cpu.get_cpu_capability()`, `torch.get_num_threads()` /
/// `torch.set_num_threads()`, and the `ATEN_CPU_CAPABILITY` environment variable (here `QUANTKIT_ISA`).
///
/// Results are bit-identical for every ISA level and every thread count, except `halfPrecisionLinear`, whose fp32
/// summation order belongs to each ISA level's kernel (levels agree to rounding there; thread counts still give
/// identical results). The settings are global; changing them while other threads run kernels is safe (calls in
/// flight finish with the settings they started with) but affects those threads' next calls.
public enum Runtime {
    /// Every ISA level QuantKit knows, lowest first. PyTorch: the values of `ATEN_CPU_CAPABILITY`.
    public static let knownISAs: [String] = [
        "scalar", "avx2", "avxvnni", "avx512", "avx512vnni", "neon", "neondot", "neoni8mm",
    ]

    /// The largest thread count `setNumberOfThreads(_:)` accepts (256).
    /// PyTorch: no limit below `INT_MAX` in `torch.set_num_threads`.
    public static var maxNumberOfThreads: Int { Kernels.maxThreads }

    /// The QuantKit version, e.g. `"0.1.0"`. PyTorch: `torch.__version__`.
    public static var version: String { Kernels.versionString }

    /// The ISA level the kernels use: one of `knownISAs`, or `"none"` when `QUANTKIT_ISA` asked for an unknown or
    /// unsupported level (see `initialize()`). The best supported level is chosen unless `QUANTKIT_ISA` or
    /// `setISA(_:)` says otherwise.
    ///
    /// PyTorch: `torch.backends.cpu.get_cpu_capability()`.
    public static var isa: String { Kernels.isaName }

    /// The ISA levels this CPU and build can run, lowest first. PyTorch: no direct equivalent.
    public static var supportedISAs: [String] { knownISAs.filter { isSupported(isa: $0) } }

    /// The CPU features QuantKit detected, as the kernels name them, e.g. `["avx2+fma+f16c"]` or
    /// `["neon", "dotprod", "fp16"]`.
    ///
    /// PyTorch: `torch.backends.cpu.get_cpu_capability()` / `torch.__config__.show()`.
    public static var cpuFeatures: [String] { Kernels.cpuFeatureNames }

    /// The CPU's name as the system reports it (the cpuid brand string on x86, sysctl on Apple platforms,
    /// /proc/cpuinfo on other Linux systems), or `"unknown"`.
    ///
    /// PyTorch: no direct equivalent; `platform.processor()` in Python.
    public static var cpuName: String { Kernels.cpuName }

    /// `"openmp"` when the kernels were compiled with OpenMP, else `"pthread"` (QuantKit's own thread pool).
    ///
    /// PyTorch: `torch.__config__.parallel_info()` ("ATen parallel backend").
    public static var threadBackend: String { Kernels.threadBackend }

    /// The number of threads kernels use: the last `setNumberOfThreads(_:)` value, else `QUANTKIT_NUM_THREADS`,
    /// else (OpenMP) `omp_get_max_threads()`, else the number of online CPUs.
    ///
    /// PyTorch: `torch.get_num_threads()`.
    public static var numberOfThreads: Int { Kernels.numberOfThreads }

    /// Sets the number of threads kernels use; `nil` restores the default (see `numberOfThreads`).
    ///
    /// PyTorch: `torch.set_num_threads(count)`.
    /// - Throws: `QuantizationError.invalidThreadCount` unless `count` is in `1...maxNumberOfThreads`.
    public static func setNumberOfThreads(_ count: Int?) throws {
        guard let count else { return try Kernels.setNumberOfThreads(0) }
        guard (1...maxNumberOfThreads).contains(count) else {
            throw QuantizationError.invalidThreadCount(count, maximum: maxNumberOfThreads)
        }
        try Kernels.setNumberOfThreads(count)
    }

    /// Selects the ISA level by name (one of `knownISAs`); `nil`, `""` or `"auto"` selects the best supported one.
    /// On failure the current level is kept. This also recovers from an invalid `QUANTKIT_ISA`.
    ///
    /// PyTorch: `ATEN_CPU_CAPABILITY` (read once at start-up there; switchable at run time here).
    /// - Throws: `QuantizationError.unknownISA` for a name not in `knownISAs`, `.unsupportedISA` for a level this
    ///   CPU or build cannot run.
    public static func setISA(_ name: String?) throws {
        if let name, !name.isEmpty, name != "auto" {
            guard knownISAs.contains(name) else { throw QuantizationError.unknownISA(name, known: knownISAs) }
            guard isSupported(isa: name) else {
                throw QuantizationError.unsupportedISA(name, supported: supportedISAs)
            }
        }
        try Kernels.setISA(name)
    }

    /// Whether this CPU and build can run the named ISA level (false for unknown names).
    ///
    /// PyTorch: comparing against `torch.backends.cpu.get_cpu_capability()`.
    public static func isSupported(isa name: String) -> Bool { Kernels.isSupported(isa: name) }

    /// Initialises the kernel runtime now (otherwise the first kernel call does), honouring `QUANTKIT_ISA`.
    /// Idempotent and thread-safe. Call it at start-up to turn a bad `QUANTKIT_ISA` into an error: after such a
    /// failure, throwing operations throw `.runtime` and non-throwing ones (e.g. `dequantized()`) fall back to a
    /// portable implementation with identical results, until `setISA(_:)` succeeds.
    ///
    /// PyTorch: happens implicitly at import.
    /// - Throws: `QuantizationError.runtime` naming the problem when `QUANTKIT_ISA` is unknown or unsupported.
    public static func initialize() throws {
        try Kernels.initialize()
    }
}
