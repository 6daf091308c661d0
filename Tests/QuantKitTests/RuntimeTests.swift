import Foundation
@testable import QuantKit
import XCTest

final class RuntimeTests: XCTestCase {
    override func setUp() {
        super.setUp()
        addTeardownBlock { try ISAState.restore() }
    }

    func testInitializeAndReportedISA() throws {
        try Runtime.initialize()
        XCTAssertTrue(Runtime.knownISAs.contains(Runtime.isa), Runtime.isa)
        XCTAssertTrue(Runtime.isSupported(isa: Runtime.isa))
        if let requested = ISAState.environmentISA {
            XCTAssertEqual(Runtime.isa, requested, "QUANTKIT_ISA")
        } else {
            XCTAssertEqual(Runtime.isa, Runtime.supportedISAs.last, "the automatic choice is the best level")
        }
        XCTAssertTrue(Runtime.isSupported(isa: "scalar"))
        XCTAssertFalse(Runtime.isSupported(isa: "nonsense"))
        XCTAssertFalse(Runtime.isSupported(isa: ""))
        XCTAssertEqual(Runtime.supportedISAs.first, "scalar")
        print("runtime: version \(Runtime.version), isa \(Runtime.isa), supported \(Runtime.supportedISAs), "
              + "features \(Runtime.cpuFeatures), \(Runtime.threadBackend) x\(Runtime.numberOfThreads)")
    }

    func testVersionAndFeatures() {
        let parts = Runtime.version.split(separator: ".")
        XCTAssertEqual(parts.count, 3, Runtime.version)
        XCTAssertTrue(parts.allSatisfy { Int($0) != nil }, Runtime.version)
        let features = Runtime.cpuFeatures
        XCTAssertEqual(Set(features).count, features.count)
        XCTAssertTrue(features.allSatisfy { !$0.isEmpty && !$0.contains(" ") })
        #if arch(x86_64)
        XCTAssertEqual(features.contains { $0.hasPrefix("avx2") }, Runtime.isSupported(isa: "avx2"), "\(features)")
        XCTAssertFalse(Runtime.isSupported(isa: "neon"))
        #elseif arch(arm64)
        XCTAssertTrue(Runtime.isSupported(isa: "neon"))
        XCTAssertFalse(Runtime.isSupported(isa: "avx2"))
        #endif
    }

    func testSetISAErrorsLeaveTheLevelUnchanged() throws {
        let before = Runtime.isa
        if let error = quantizationError({ try Runtime.setISA("nonsense") }) {
            XCTAssertEqual(error, .unknownISA("nonsense", known: Runtime.knownISAs))
        }
        XCTAssertEqual(Runtime.isa, before)
        XCTAssertNotNil(quantizationError({ try Runtime.setISA("AVX2") }), "names are case-sensitive")
        XCTAssertEqual(Runtime.isa, before)

        #if arch(x86_64)
        let foreign = "neon"
        #else
        let foreign = "avx2"
        #endif
        let unsupported = Runtime.knownISAs.filter { !Runtime.isSupported(isa: $0) }
        XCTAssertTrue(unsupported.contains(foreign))
        for name in unsupported {
            if let error = quantizationError({ try Runtime.setISA(name) }) {
                XCTAssertEqual(error, .unsupportedISA(name, supported: Runtime.supportedISAs))
                error.assertInformative(mentions: [name, "not supported", "scalar"])
            }
            XCTAssertEqual(Runtime.isa, before)
        }

        for name in Runtime.supportedISAs {
            try Runtime.setISA(name)
            XCTAssertEqual(Runtime.isa, name)
        }
        try Runtime.setISA(nil)
        XCTAssertEqual(Runtime.isa, Runtime.supportedISAs.last)
        try Runtime.setISA("scalar")
        try Runtime.setISA("auto")
        XCTAssertEqual(Runtime.isa, Runtime.supportedISAs.last)
    }

    // MARK: Every ISA level against the scalar reference

    /// Runs the operations on tricky data of many lengths through the public API and through the internal kernel
    /// layer at every element misalignment (the Swift API always hands over 64-byte aligned storage, arrays are only
    /// 16-byte aligned), checking that nothing is written past the end. Returns all result bytes.
    static func battery() throws -> [(String, [UInt8])] {
        var results: [(String, [UInt8])] = []
        let lengths = Array(0...67) + [127, 128, 129, 1000, 4099]
        let settings: [(QuantizedDType, Float, Int)] = [(.quint8, 0.25, 100), (.quint8, 0.0173, 0), (.qint8, 0.5, -3),
                                                        (.qint8, 3.7e-3, 127), (.qint32, 0.25, -9), (.qint32, 1e-7, 0)]
        for (s, (dtype, scale, zeroPoint)) in settings.enumerated() {
            for n in lengths {
                let x = Tensor(TestData.tricky(count: n, scale: scale, zeroPoint: zeroPoint, dtype: dtype,
                                               seed: UInt64(s * 10_000 + n)))
                let q = try x.quantized(scale: scale, zeroPoint: zeroPoint, dtype: dtype)
                results.append(("quantize \(dtype) n=\(n)", try intReprBytes(q)))
                results.append(("dequantize \(dtype) n=\(n)", ThreadingTests.bytes(q.dequantized())))
            }
            // Per channel, both kernel paths.
            let x = try Tensor(shape: [3, 37], scalars: TestData.tricky(count: 111, scale: scale, zeroPoint: zeroPoint,
                                                                          dtype: dtype, seed: UInt64(s)))
            for axis in [0, 1] {
                let channels = x.shape[axis]
                let scales = (0..<channels).map { scale * Float(1 + $0 % 3) }
                let zeroPoints = (0..<channels).map { _ in zeroPoint }
                let q = try x.quantized(scales: scales, zeroPoints: zeroPoints, axis: axis, dtype: dtype)
                results.append(("quantize per channel \(dtype) axis \(axis)", try intReprBytes(q)))
                results.append(("dequantize per channel \(dtype) axis \(axis)", ThreadingTests.bytes(q.dequantized())))
            }
        }
        for n in lengths {
            var x = TestData.tricky(count: n, scale: 1024, zeroPoint: 0, dtype: .qint8, seed: UInt64(n))
            for i in stride(from: 0, to: n, by: 5) { x[i] = Float(bitPattern: UInt32(truncatingIfNeeded: n &* 2_654_435_761 &+ i)) }
            let t = Tensor(x)
            #if !(os(macOS) && arch(x86_64))
            let half = t.converted(to: Float16.self)
            results.append(("f16 n=\(n)", ThreadingTests.bytes(half)))
            results.append(("f16 -> f32 n=\(n)", ThreadingTests.bytes(half.converted(to: Float.self))))
            let (saturated, count) = t.convertedToFloat16Saturating()
            results.append(("f16 saturating n=\(n)", ThreadingTests.bytes(saturated) + [UInt8(truncatingIfNeeded: count)]))
            #endif
            for finiteOnly in [false, true] {
                let (low, high) = t.minMax(finiteOnly: finiteOnly)
                let expected = Reference.minMax(x, finiteOnly: finiteOnly)
                // Either zero may come back when both are extremes, so compare with == and record the values only.
                precondition(low == expected.min && high == expected.max || low.isNaN,
                             "minmax n=\(n): (\(low), \(high)) != \(expected)")
                results.append(("minmax n=\(n) \(finiteOnly)", withUnsafeBytes(of: (low == 0 ? 0 : low, high == 0 ? 0 : high)) { Array($0) }))
            }
        }
        results += try misalignedBattery()
        return results
    }

    /// Kernel calls on buffers offset by 0...15 elements from a 64-byte boundary, with guard bytes after the output.
    static func misalignedBattery() throws -> [(String, [UInt8])] {
        var results: [(String, [UInt8])] = []
        let guardByte: UInt8 = 0xA5
        for n in [1, 7, 8, 9, 15, 16, 17, 31, 33, 63, 64, 65, 100] {
            for offset in 0..<16 {
                let x = TestData.tricky(count: n, scale: 0.5, zeroPoint: 3, dtype: .qint8, seed: UInt64(n * 16 + offset))
                let input = UnsafeMutableRawPointer.allocate(byteCount: (n + 16) * 4, alignment: 64)
                let output = UnsafeMutableRawPointer.allocate(byteCount: (n + 32) * 4, alignment: 64)
                defer { input.deallocate(); output.deallocate() }
                let xp = (input + offset * 4).bindMemory(to: Float.self, capacity: n)
                xp.initialize(from: x, count: n)
                func check(_ name: String, elementSize: Int, outOffset: Int,
                           _ body: (UnsafeMutableRawPointer) throws -> Void) rethrows {
                    output.initializeMemory(as: UInt8.self, repeating: guardByte, count: (n + 32) * 4)
                    let out = output + outOffset
                    try body(out)
                    let end = outOffset + n * elementSize
                    let tail = UnsafeRawBufferPointer(start: output + end, count: (n + 32) * 4 - end)
                    let head = UnsafeRawBufferPointer(start: output, count: outOffset)
                    precondition(tail.allSatisfy { $0 == guardByte } && head.allSatisfy { $0 == guardByte },
                                 "\(name) n=\(n) offset=\(offset) wrote outside its output")
                    results.append(("\(name) n=\(n) offset=\(offset)",
                                    Array(UnsafeRawBufferPointer(start: out, count: n * elementSize))))
                }
                for dtype in QuantizedDType.allCases {
                    let size = dtype == .qint32 ? 4 : 1
                    try check("quantize \(dtype)", elementSize: size, outOffset: (offset * 3 % 16) * size) { y in
                        try Kernels.quantizePerTensor(dtype, count: n, input: xp, output: y, scale: 0.5, zeroPoint: 3)
                        let got = (0..<n).map { i -> Int in
                            switch dtype {
                            case .quint8: return Int(y.load(fromByteOffset: i, as: UInt8.self))
                            case .qint8: return Int(y.load(fromByteOffset: i, as: Int8.self))
                            case .qint32: return Int(y.load(fromByteOffset: i * 4, as: Int32.self))
                            }
                        }
                        let expected = x.map { Reference.quantize($0, scale: 0.5, zeroPoint: 3, dtype: dtype) }
                        precondition(got == expected, "misaligned quantize \(dtype) n=\(n) offset=\(offset)")
                    }
                    // Dequantize the integers that quantize just wrote (they sit at the start of `results`' last entry).
                    let ints = results.last!.1
                    let qbuf = UnsafeMutableRawPointer.allocate(byteCount: ints.count + 64, alignment: 64)
                    defer { qbuf.deallocate() }
                    let qp = qbuf + offset * size
                    qp.copyMemory(from: ints, byteCount: ints.count)
                    try check("dequantize \(dtype)", elementSize: 4, outOffset: ((offset + 5) % 16) * 4) { y in
                        try Kernels.dequantizePerTensor(dtype, count: n, input: qp, output: y.assumingMemoryBound(to: Float.self),
                                                        scale: 0.5, zeroPoint: 3)
                    }
                }
                try check("f16", elementSize: 2, outOffset: ((offset + 7) % 16) * 2) { y in
                    try Kernels.convertToFloat16(count: n, input: xp, output: y)
                }
                try check("f16 saturating", elementSize: 2, outOffset: (offset % 16) * 2) { y in
                    _ = try Kernels.convertToFloat16Saturating(count: n, input: xp, output: y)
                }
                let halves = results.last!.1
                let hbuf = UnsafeMutableRawPointer.allocate(byteCount: halves.count + 64, alignment: 64)
                defer { hbuf.deallocate() }
                (hbuf + offset * 2).copyMemory(from: halves, byteCount: halves.count)
                try check("f16 -> f32", elementSize: 4, outOffset: ((offset + 9) % 16) * 4) { y in
                    try Kernels.convertToFloat(count: n, input: hbuf + offset * 2, output: y.assumingMemoryBound(to: Float.self))
                }
                let (low, high) = try Kernels.minMax(count: n, input: xp, finiteOnly: false)
                let expected = Reference.minMax(x, finiteOnly: false)
                precondition(low == expected.min && high == expected.max, "misaligned minmax n=\(n) offset=\(offset)")
            }
        }
        return results
    }

    func testEverySupportedISAMatchesScalar() throws {
        try Runtime.setISA("scalar")
        let reference = try Self.battery()
        XCTAssertGreaterThan(reference.count, 1000)
        for name in Runtime.supportedISAs where name != "scalar" {
            try Runtime.setISA(name)
            XCTAssertEqual(Runtime.isa, name)
            let results = try Self.battery()
            XCTAssertEqual(results.count, reference.count)
            var failures = 0
            for ((label, bytes), (_, expected)) in zip(results, reference) where !sameBytes(bytes, expected) {
                failures += 1
                if failures <= 10 { XCTFail("\(name): \(label) differs from scalar") }
            }
            print("runtime: \(name) matches scalar on \(results.count - failures) of \(results.count) result sets")
        }
    }

    // MARK: An invalid QUANTKIT_ISA (checked in a child process, since the runtime reads it once)

    func testInvalidEnvironmentISAIsReported() throws {
        #if os(Linux)
        let executable = URL(fileURLWithPath: CommandLine.arguments[0])
        guard executable.lastPathComponent.hasSuffix(".xctest") else {
            throw XCTSkip("cannot re-launch the test bundle from \(executable.path)")
        }
        // The other architecture's level is unsupported wherever the child runs (even when this process is emulated
        // by qemu-user, whose children run natively).
        #if arch(x86_64)
        let foreign = "neon"
        #else
        let foreign = "avx2"
        #endif
        for (value, kind) in [("nonsense", "unknown ISA"), (foreign, "not supported")] {
            let process = Process()
            process.executableURL = executable
            process.arguments = ["QuantKitTests.RuntimeTests/testInvalidEnvironmentISAChild"]
            var environment = ProcessInfo.processInfo.environment
            environment["QUANTKIT_ISA"] = value
            environment["QUANTKIT_TEST_CHILD_EXPECT"] = kind
            process.environment = environment
            let pipe = Pipe()
            process.standardOutput = pipe
            process.standardError = pipe
            try process.run()
            let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            XCTAssertEqual(process.terminationStatus, 0, "child with QUANTKIT_ISA=\(value) failed:\n\(output)")
            XCTAssertTrue(output.contains("Executed 1 test, with 0 failures"), output)
            XCTAssertFalse(output.contains("skipped"), output)
        }
        #else
        throw XCTSkip("the child-process check runs on Linux only")
        #endif
    }

    /// Runs only inside the child process started by `testInvalidEnvironmentISAIsReported`.
    func testInvalidEnvironmentISAChild() throws {
        guard let kind = ProcessInfo.processInfo.environment["QUANTKIT_TEST_CHILD_EXPECT"] else {
            throw XCTSkip("runs as a child process of testInvalidEnvironmentISAIsReported")
        }
        let requested = ProcessInfo.processInfo.environment["QUANTKIT_ISA"] ?? ""
        guard let error = quantizationError({ try Runtime.initialize() }) else { return }
        guard case .runtime(let message) = error else { return XCTFail("\(error)") }
        XCTAssertTrue(message.contains("QUANTKIT_ISA") && message.contains(requested) && message.contains(kind), message)
        XCTAssertEqual(Runtime.isa, "none")
        // Throwing operations report the same problem instead of running on an unintended ISA.
        if let error = quantizationError({ try Tensor<Float>([1]).quantized(scale: 1, zeroPoint: 0, dtype: .qint8) }) {
            guard case .runtime(let message) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(message.contains("QUANTKIT_ISA"), message)
        }
        // Non-throwing operations fall back to portable Swift code instead of stopping, with the kernels' results.
        XCTAssertTrue(Kernels.runtimeIsUnusable)
        let fallback = try ScalarFallbackTests.nonThrowingResults()
        XCTAssertEqual(Runtime.isa, "none", "the fallback must not repair the runtime")
        // Choosing a level explicitly recovers.
        try Runtime.setISA(nil)
        XCTAssertEqual(Runtime.isa, Runtime.supportedISAs.last)
        XCTAssertNoThrow(try Runtime.initialize())
        XCTAssertEqual(try Tensor<Float>([1.5]).quantized(scale: 1, zeroPoint: 0, dtype: .qint8).intRepr(), [2])
        let kernels = try ScalarFallbackTests.nonThrowingResults()
        XCTAssertEqual(fallback.count, kernels.count)
        for ((label, got), (_, expected)) in zip(fallback, kernels) {
            XCTAssertTrue(sameBytes(got, expected), "\(label): the fallback differs from the kernels")
        }
        print("invalid QUANTKIT_ISA: \(fallback.count) non-throwing result sets match the kernels")
    }
}
