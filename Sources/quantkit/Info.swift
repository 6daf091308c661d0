import ArgumentParser
import QuantKit

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// `quantkit info`: version, CPU, the ISA in use (and whether QUANTKIT_ISA forced it), threading.
struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the version, CPU, selected ISA and threading of QuantKit on this machine.",
        discussion: """
            Environment: QUANTKIT_ISA forces an ISA level (scalar, avx2, avxvnni, avx512, avx512vnni, neon, neondot, \
            neoni8mm, auto); QUANTKIT_NUM_THREADS sets the default thread count.
            """)

    func run() throws {
        let forced = environment("QUANTKIT_ISA")
        do {
            try Runtime.initialize()
        } catch {
            // An impossible QUANTKIT_ISA is a user error, not a crash: say what is wrong and what would work.
            var message = "\(error)"
            if !message.contains("QUANTKIT_ISA") { message = "QUANTKIT_ISA=\(forced ?? "(unset)"): " + message }
            printError("quantkit: error: " + message)
            printError("quantkit: supported ISA levels on this CPU: \(Runtime.supportedISAs.joined(separator: ", ")); "
                       + "unset QUANTKIT_ISA to pick the best one")
            throw ExitCode(2)
        }

        let best = SystemInfo.bestISALevel
        let isa = Runtime.isa
        let isaLine: String
        if let forced, !forced.isEmpty, forced != "auto" {
            isaLine = "\(isa) (forced by QUANTKIT_ISA=\(forced); best available: \(best))"
        } else {
            isaLine = "\(isa) (auto-selected\(forced == nil ? "" : " with QUANTKIT_ISA=\(forced!)"); best available: \(best))"
        }

        var threadsLine = "\(Runtime.numberOfThreads)"
        if let n = environment("QUANTKIT_NUM_THREADS") {
            threadsLine += " (QUANTKIT_NUM_THREADS=\(n))"
        } else if Runtime.threadBackend == "openmp", let n = environment("OMP_NUM_THREADS") {
            threadsLine += " (OMP_NUM_THREADS=\(n))"
        } else {
            threadsLine += " (default: the CPUs this process may use)"
        }

        let features = Runtime.cpuFeatures
        let rows: [(String, String)] = [
            ("QuantKit", Runtime.version),
            ("CPU", Runtime.cpuName),
            ("Architecture", SystemInfo.architecture),
            ("CPU features", features.isEmpty ? "(none)" : features.joined(separator: " ")),
            ("ISA", isaLine),
            ("Thread backend", Runtime.threadBackend),
            ("Threads", threadsLine),
        ]
        let width = rows.map(\.0.count).max()! + 1
        for (key, value) in rows {
            let label = "\(key):"
            print(label + String(repeating: " ", count: width - label.count), value)
        }
    }
}

func environment(_ name: String) -> String? {
    guard let value = getenv(name) else { return nil }
    return String(cString: value)
}

func printError(_ message: String) {
    var bytes = Array((message + "\n").utf8)
    var offset = 0
    while offset < bytes.count {
        let n = bytes[offset...].withUnsafeMutableBytes { write(2, $0.baseAddress, $0.count) }
        if n <= 0 { break }
        offset += n
    }
}
