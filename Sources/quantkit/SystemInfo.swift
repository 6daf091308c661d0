import QuantKit

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Facts about the host that the library does not report itself.
enum SystemInfo {
    /// ISA levels as dispatch orders them, lowest first (quantkit.h, qk_set_isa): the best available is the last
    /// one the CPU supports.
    static let isaLevels = ["scalar", "avx2", "avxvnni", "avx512", "avx512vnni", "neon", "neondot", "neoni8mm"]

    static var supportedISALevels: [String] { isaLevels.filter { Runtime.isSupported(isa: $0) } }
    static var bestISALevel: String { supportedISALevels.last ?? "scalar" }

    static var architecture: String {
        #if arch(x86_64)
        return "x86_64"
        #elseif arch(arm64)
        return "arm64"
        #else
        return "unknown"
        #endif
    }

    /// The marketing name of the CPU: /proc/cpuinfo on Linux, sysctl on Apple platforms.
    static var cpuModel: String {
        #if os(Linux)
        if let text = readTextFile("/proc/cpuinfo") {
            // x86 has "model name"; many arm64 kernels only give "CPU implementer"/"CPU part" or "Hardware".
            for key in ["model name", "Hardware", "Processor"] {
                if let value = firstValue(of: key, in: text) { return value }
            }
            if let implementer = firstValue(of: "CPU implementer", in: text),
               let part = firstValue(of: "CPU part", in: text) {
                return "implementer \(implementer), part \(part)"
            }
        }
        return "unknown"
        #elseif canImport(Darwin)
        return sysctlString("machdep.cpu.brand_string") ?? sysctlString("hw.model") ?? "unknown"
        #else
        return "unknown"
        #endif
    }

    static func firstValue(of key: String, in cpuinfo: String) -> String? {
        for line in cpuinfo.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            if line[..<colon].trimmingCharacters(in: " \t") == key {
                let value = line[line.index(after: colon)...].trimmingCharacters(in: " \t")
                if !value.isEmpty { return value }
            }
        }
        return nil
    }

    static func readTextFile(_ path: String) -> String? {
        guard let file = fopen(path, "r") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = fread(&chunk, 1, chunk.count, file)
            if n <= 0 { break }
            bytes.append(contentsOf: chunk[0..<n])
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    #if canImport(Darwin)
    static func sysctlString(_ name: String) -> String? {
        var size = 0
        guard sysctlbyname(name, nil, &size, nil, 0) == 0, size > 0 else { return nil }
        var buffer = [CChar](repeating: 0, count: size)
        guard sysctlbyname(name, &buffer, &size, nil, 0) == 0 else { return nil }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
    #endif
}

extension Substring {
    func trimmingCharacters(in set: String) -> String {
        var s = self[...]
        while let c = s.first, set.contains(c) { s = s.dropFirst() }
        while let c = s.last, set.contains(c) { s = s.dropLast() }
        return String(s)
    }
}
