import QuantKit

/// Facts about the host that the library does not report itself.
enum SystemInfo {
    /// Runtime.knownISAs is ordered lowest first, as dispatch orders the levels: the best available is the last one
    /// the CPU supports.
    static var bestISALevel: String { Runtime.supportedISAs.last ?? "scalar" }

    static var architecture: String {
        #if arch(x86_64)
        return "x86_64"
        #elseif arch(arm64)
        return "arm64"
        #else
        return "unknown"
        #endif
    }
}

