import Dispatch
import Foundation
import QuantKit
import XCTest

final class ThreadingTests: XCTestCase {
    /// 2,000,005 = 7 x 285,715 elements: many kernel tiles, and an odd length for the tails.
    static let shape = [7, 285_715]
    static let input: Tensor<Float> = {
        var x = TestData.tricky(count: 7 * 285_715, scale: 0.0173, zeroPoint: 3, dtype: .qint8, seed: 2024)
        var generator = SplitMix64(seed: 1)
        for _ in 0..<20_000 {   // fp16 overflow and subnormal territory too
            let i = Int(generator.next() % UInt64(x.count))
            x[i] = [70_000, -1e6, 6e-8, 65_519, -65_520][Int(generator.next() % 5)]
        }
        return try! Tensor(shape: shape, scalars: x)
    }()

    override func setUp() {
        super.setUp()
        addTeardownBlock { try Runtime.setNumberOfThreads(nil) }
    }

    static func bytes<T>(_ t: Tensor<T>) -> [UInt8] {
        t.withUnsafeBufferPointer { Array(UnsafeRawBufferPointer($0)) }
    }

    /// Every multi-threaded operation, as raw result bytes.
    static func runAll(_ x: Tensor<Float>) throws -> [(String, [UInt8])] {
        var results: [(String, [UInt8])] = []
        for (dtype, scale, zeroPoint) in [(QuantizedDType.quint8, Float(0.0173), 128), (.qint8, 0.0173, -3),
                                          (.qint32, 1e-4, 17)] {
            let q = try x.quantized(scale: scale, zeroPoint: zeroPoint, dtype: dtype)
            results.append(("quantize \(dtype)", try intReprBytes(q)))
            results.append(("dequantize \(dtype)", bytes(q.dequantized())))
        }
        // Per channel: strided slices (axis 0) and contiguous channels (the last axis of the transposed view).
        let rows = try x.quantized(scales: [0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07], zeroPoints: [0, 1, 2, 3, 4, 5, -6],
                                   axis: 0, dtype: .qint8)
        results.append(("quantize per channel axis 0", bytes(try rows.intRepr(as: Int8.self))))
        results.append(("dequantize per channel axis 0", bytes(rows.dequantized())))
        let columns = try x.reshaped(to: [-1, 5]).quantized(scales: [0.1, 0.01, 0.001, 1, 10],
                                                            zeroPoints: [128, 0, 255, 7, 100], axis: -1, dtype: .quint8)
        results.append(("quantize per channel axis -1", bytes(try columns.intRepr(as: UInt8.self))))
        results.append(("dequantize per channel axis -1", bytes(columns.dequantized())))
        #if !(os(macOS) && arch(x86_64))
        let half = x.converted(to: Float16.self)
        results.append(("f32 -> f16", bytes(half)))
        results.append(("f16 -> f32", bytes(half.converted(to: Float.self))))
        let (saturated, count) = x.convertedToFloat16Saturating()
        results.append(("f32 -> f16 saturating", bytes(saturated) + withUnsafeBytes(of: count) { Array($0) }))
        #endif
        for finiteOnly in [false, true] {
            let (low, high) = x.minMax(finiteOnly: finiteOnly)
            results.append(("minmax finiteOnly=\(finiteOnly)", withUnsafeBytes(of: (low, high)) { Array($0) }))
        }
        return results
    }

    func testResultsAreIdenticalForEveryThreadCount() throws {
        let x = Self.input
        try Runtime.setNumberOfThreads(1)
        XCTAssertEqual(Runtime.numberOfThreads, 1)
        let reference = try Self.runAll(x)

        // Spot-check the single-threaded results against the plain-Swift rule.
        let q = try x.quantized(scale: 0.0173, zeroPoint: -3, dtype: .qint8).intRepr()
        let scalars = x.scalars
        for i in stride(from: 0, to: scalars.count, by: 97) {
            let expected = Reference.quantize(scalars[i], scale: 0.0173, zeroPoint: -3, dtype: .qint8)
            if Int(q[i]) != expected { XCTFail("element \(i): \(q[i]) != \(expected)"); break }
        }
        let (low, high) = x.minMax()
        XCTAssertEqual(low, -.infinity)
        XCTAssertEqual(high, .infinity)
        XCTAssertEqual(x.minMax(finiteOnly: true).max, .greatestFiniteMagnitude)

        for threads in [2, 3, 5] {
            try Runtime.setNumberOfThreads(threads)
            XCTAssertEqual(Runtime.numberOfThreads, threads)
            let results = try Self.runAll(x)
            XCTAssertEqual(results.count, reference.count)
            for ((name, bytes), (_, expected)) in zip(results, reference) {
                XCTAssertTrue(sameBytes(bytes, expected), "\(name) differs with \(threads) threads")
            }
        }
    }

    func testThreadCountSettings() throws {
        try Runtime.setNumberOfThreads(nil)
        let defaultCount = Runtime.numberOfThreads
        XCTAssertGreaterThanOrEqual(defaultCount, 1)
        XCTAssertLessThanOrEqual(defaultCount, Runtime.maxNumberOfThreads)
        if let value = ProcessInfo.processInfo.environment["QUANTKIT_NUM_THREADS"], let n = Int(value), n >= 1 {
            XCTAssertEqual(defaultCount, min(n, Runtime.maxNumberOfThreads))
        }
        try Runtime.setNumberOfThreads(3)
        XCTAssertEqual(Runtime.numberOfThreads, 3)
        try Runtime.setNumberOfThreads(Runtime.maxNumberOfThreads)
        XCTAssertEqual(Runtime.numberOfThreads, Runtime.maxNumberOfThreads)
        XCTAssertThrowsError(try Runtime.setNumberOfThreads(0))
        XCTAssertEqual(Runtime.numberOfThreads, Runtime.maxNumberOfThreads, "a rejected count must not change it")
        try Runtime.setNumberOfThreads(nil)
        XCTAssertEqual(Runtime.numberOfThreads, defaultCount)
    }

    func testThreadBackend() {
        XCTAssertTrue(["pthread", "openmp"].contains(Runtime.threadBackend), Runtime.threadBackend)
        if let expected = ProcessInfo.processInfo.environment["QUANTKIT_EXPECT_BACKEND"], !expected.isEmpty {
            XCTAssertEqual(Runtime.threadBackend, expected, "QUANTKIT_EXPECT_BACKEND")
        }
    }

    /// Several Swift threads quantizing, dequantizing and converting at once, with the kernels' own threads on.
    func testConcurrentCallersGetCorrectResults() throws {
        final class Failures: @unchecked Sendable {   // guarded by `lock`
            private let lock = NSLock()
            private var messages: [String] = []
            func add(_ message: String) { lock.lock(); messages.append(message); lock.unlock() }
            var all: [String] { lock.lock(); defer { lock.unlock() }; return messages }
        }
        struct Job: Sendable {
            var input: Tensor<Float>
            var expected: [Int32]
            var expectedDQ: Tensor<Float>
            var scale: Float
            var zeroPoint: Int
            var dtype: QuantizedDType
        }
        let dtypes = QuantizedDType.allCases
        var jobs: [Job] = []
        for i in 0..<6 {
            let dtype = dtypes[i % 3]
            let scale: Float = [0.01, 0.05, 0.002][i % 3]
            let zeroPoint = dtype == .quint8 ? 100 : -5
            let x = TestData.tricky(count: 150_000 + i * 7, scale: scale, zeroPoint: zeroPoint, dtype: dtype,
                                    seed: UInt64(500 + i))
            let expected = x.map { Int32(Reference.quantize($0, scale: scale, zeroPoint: zeroPoint, dtype: dtype)) }
            let expectedDQ = Tensor(expected.map { Reference.dequantize(Int($0), scale: scale, zeroPoint: zeroPoint) })
            jobs.append(Job(input: Tensor(x), expected: expected, expectedDQ: expectedDQ, scale: scale,
                            zeroPoint: zeroPoint, dtype: dtype))
        }
        let failures = Failures()
        let allJobs = jobs
        for threads in [1, 2] {
            try Runtime.setNumberOfThreads(threads)
            DispatchQueue.concurrentPerform(iterations: allJobs.count * 2) { iteration in
                let job = allJobs[iteration % allJobs.count]
                do {
                    for _ in 0..<2 {
                        let q = try job.input.quantized(scale: job.scale, zeroPoint: job.zeroPoint, dtype: job.dtype)
                        if q.intRepr() != job.expected { failures.add("job \(iteration): quantize differs") }
                        if !bitwiseEqual(q.dequantized(), job.expectedDQ) {
                            failures.add("job \(iteration): dequantize differs")
                        }
                        let (low, high) = job.input.minMax()
                        if low != -.infinity || high != .infinity { failures.add("job \(iteration): minmax") }
                    }
                } catch {
                    failures.add("job \(iteration): \(error)")
                }
            }
        }
        XCTAssertEqual(failures.all, [])
    }
}
