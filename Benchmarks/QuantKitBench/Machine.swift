import CKernels
import COpenBLAS
import Foundation

/// The "machine" object of the JSON output: what a reader needs to compare runs from different hosts.
struct MachineInfo {
    let cpu: String
    let isa: String
    let cpuFeatures: [String]
    let threadBackend: String
    let maxThreads: Int
    let openblasCore: String
    let openblasCoretypeEnv: String?
    let openblasL2SizeEnv: String?
    let quantkitVersion: String
    let date: String

    /// Call after qk_runtime_init() succeeded and before any qk_set_num_threads, so max_threads is the default.
    static func current() -> MachineInfo {
        let needed = qk_cpu_feature_names(nil, 0)
        var buf = [CChar](repeating: 0, count: needed + 1)
        _ = qk_cpu_feature_names(&buf, buf.count)
        let env = ProcessInfo.processInfo.environment
        return MachineInfo(
            cpu: cpuModel(),
            isa: String(cString: qk_isa_name()),
            cpuFeatures: buf.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }.split(separator: " ").map(String.init),
            threadBackend: String(cString: qk_thread_backend()),
            maxThreads: Int(qk_get_num_threads()),
            openblasCore: openblas_get_corename().map { String(cString: $0) } ?? "unknown",
            openblasCoretypeEnv: env["OPENBLAS_CORETYPE"],
            openblasL2SizeEnv: env["OPENBLAS_L2_SIZE"],
            quantkitVersion: String(cString: qk_version_string()),
            date: ISO8601DateFormatter().string(from: Date()))
    }

    /// First "model name" of /proc/cpuinfo on Linux; sysctl on Apple platforms.
    static func cpuModel() -> String {
        #if os(Linux)
        if let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) {
            for key in ["model name", "Hardware", "Processor"] {
                for line in text.split(separator: "\n") {
                    let parts = line.split(separator: ":", maxSplits: 1)
                    if parts.count == 2, parts[0].trimmingCharacters(in: .whitespaces) == key {
                        let value = parts[1].trimmingCharacters(in: .whitespaces)
                        if !value.isEmpty { return value }
                    }
                }
            }
        }
        return "unknown"
        #elseif canImport(Darwin)
        for name in ["machdep.cpu.brand_string", "hw.model"] {
            var size = 0
            guard sysctlbyname(name, nil, &size, nil, 0) == 0, size > 0 else { continue }
            var buffer = [CChar](repeating: 0, count: size)
            if sysctlbyname(name, &buffer, &size, nil, 0) == 0 { return buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) } }
        }
        return "unknown"
        #else
        return "unknown"
        #endif
    }
}
