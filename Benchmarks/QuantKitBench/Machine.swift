import CKernels
import COpenBLAS
import Foundation
import QuantKit

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
        let env = ProcessInfo.processInfo.environment
        return MachineInfo(
            cpu: Runtime.cpuName,
            isa: String(cString: qk_isa_name()),
            cpuFeatures: Runtime.cpuFeatures,
            threadBackend: String(cString: qk_thread_backend()),
            maxThreads: Int(qk_get_num_threads()),
            openblasCore: openblas_get_corename().map { String(cString: $0) } ?? "unknown",
            openblasCoretypeEnv: env["OPENBLAS_CORETYPE"],
            openblasL2SizeEnv: env["OPENBLAS_L2_SIZE"],
            quantkitVersion: String(cString: qk_version_string()),
            date: ISO8601DateFormatter().string(from: Date()))
    }
}
