import Foundation
import QuantKit
import XCTest

/// Runs the PyTorch golden cases (Tests/QuantKitTests/Fixtures/golden, or the folder in QUANTKIT_GOLDEN_DIR).
///
/// Each case's kind is its `op` or `observer` field. Kinds with a runner in `runners` are checked; every other kind
/// is counted and reported as skipped (`testNotYetImplementedKinds`), never passed silently. Later issues implement
/// a kind by adding its runner to the table.
final class GoldenConformanceTests: XCTestCase {
    struct GoldenCase: Sendable {
        var file: String
        var index: Int
        var kind: String
        var fields: JSONValue

        var name: String { "\(file)#\(index) (\(kind))" }

        func field(_ key: String) throws -> JSONValue {
            guard let value = fields[key] else { throw JSONError(description: "\(name): missing field \(key)") }
            return value
        }
    }

    typealias Runner = @Sendable (GoldenCase) throws -> Void

    /// Kind -> runner. Extend this table as operators land.
    static let runners: [String: Runner] = [
        "quantize_per_tensor": runQuantizePerTensor,
        "quantize_per_channel": runQuantizePerChannel,
        "quantized_linear": runQuantizedLinear,
        "dynamic_quantized_linear": runDynamicQuantizedLinear,
        "fp16_linear": runFP16Linear,
        "fake_quantize_per_tensor_affine": runFakeQuantizePerTensor,
        "fake_quantize_per_channel_affine": runFakeQuantizePerChannel,
        "fake_quantize_learnable_per_tensor_affine": runFakeQuantizeLearnablePerTensor,
        "quantized_conv2d": runQuantizedConv2d,
        "MinMaxObserver": runObserver,
        "MovingAverageMinMaxObserver": runObserver,
        "PerChannelMinMaxObserver": runObserver,
        "MovingAveragePerChannelMinMaxObserver": runObserver,
        "HistogramObserver": runObserver,
    ]

    // MARK: Loading

    static var goldenDirectory: URL {
        if let path = ProcessInfo.processInfo.environment["QUANTKIT_GOLDEN_DIR"], !path.isEmpty {
            return URL(fileURLWithPath: path, isDirectory: true)
        }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Fixtures/golden", isDirectory: true)
    }

    /// Parsed once per process (linear.json alone is 2.5 MB).
    static let loaded: Result<[GoldenCase], JSONError> = {
        do {
            let directory = goldenDirectory
            let files = try FileManager.default.contentsOfDirectory(atPath: directory.path)
                .filter { $0.hasSuffix(".json") }.sorted()
            guard !files.isEmpty else {
                return .failure(JSONError(description: "no *.json case files in \(directory.path)"))
            }
            var cases: [GoldenCase] = []
            for file in files {
                let data = try Data(contentsOf: directory.appendingPathComponent(file))
                let root = try JSONReader.parse([UInt8](data))
                guard let list = root["cases"]?.arrayValue else {
                    throw JSONError(description: "\(file): no \"cases\" array")
                }
                for (index, fields) in list.enumerated() {
                    guard let kind = fields["op"]?.stringValue ?? fields["observer"]?.stringValue else {
                        throw JSONError(description: "\(file)#\(index): neither \"op\" nor \"observer\" is set")
                    }
                    cases.append(GoldenCase(file: file, index: index, kind: kind, fields: fields))
                }
            }
            return .success(cases)
        } catch let error as JSONError {
            return .failure(error)
        } catch {
            return .failure(JSONError(description: "cannot read golden cases: \(error)"))
        }
    }()

    static func cases() throws -> [GoldenCase] { try loaded.get() }

    static func counts(_ cases: [GoldenCase]) -> [(kind: String, count: Int)] {
        Dictionary(grouping: cases, by: \.kind).map { ($0.key, $0.value.count) }.sorted { $0.kind < $1.kind }
    }

    // MARK: Tests

    func testGoldenFolderHasCases() throws {
        let cases = try Self.cases()
        XCTAssertFalse(cases.isEmpty, "no golden cases in \(Self.goldenDirectory.path)")
        let summary = Self.counts(cases).map { "\($0.kind) x\($0.count)" }.joined(separator: ", ")
        print("golden: \(cases.count) cases in \(Self.goldenDirectory.path): \(summary)")
    }

    func testImplementedKinds() throws {
        let cases = try Self.cases().filter { Self.runners[$0.kind] != nil }
        guard !cases.isEmpty else {
            throw XCTSkip("no case in \(Self.goldenDirectory.path) has an implemented kind "
                          + "(\(Self.runners.keys.sorted().joined(separator: ", ")))")
        }
        var failed: [String: Int] = [:]
        for goldenCase in cases {
            do {
                try Self.runners[goldenCase.kind]!(goldenCase)
            } catch {
                failed[goldenCase.kind, default: 0] += 1
                XCTFail("\(goldenCase.name): \(error)")
            }
        }
        for (kind, count) in Self.counts(cases) {
            print("golden: \(kind) x\(count): \(count - failed[kind, default: 0]) passed, "
                  + "\(failed[kind, default: 0]) failed")
        }
    }

    func testNotYetImplementedKinds() throws {
        let pending = Self.counts(try Self.cases().filter { Self.runners[$0.kind] == nil })
        guard !pending.isEmpty else { return }
        let summary = pending.map { "\($0.kind) x\($0.count)" }.joined(separator: ", ")
        print("golden: skipped, not implemented yet: \(summary)")
        throw XCTSkip("not implemented yet: \(summary)")
    }

    /// The reader keeps number literals as text, so a float is rounded once (by Float(_:)), never via Double.
    func testJSONReaderKeepsNumberLiterals() throws {
        let text = #"{"a": [1, -0.0, 1.5e-7, 0.01730000041425228, NaN, -Infinity, Infinity], "s": "x\"\u00e9\ud83d\ude00", "#
            + #""n": null, "t": true, "o": {"k": []}}"#
        let value = try JSONReader.parse(Array(text.utf8))
        let numbers = try XCTUnwrap(value["a"]?.arrayValue)
        XCTAssertEqual(numbers.map(\.numberLiteral), ["1", "-0.0", "1.5e-7", "0.01730000041425228", "NaN", "-Infinity",
                                                       "Infinity"])
        let floats = try value["a"]!.floats()
        XCTAssertEqual(floats[1].bitPattern, (-0.0 as Float).bitPattern)
        XCTAssertEqual(floats[3], Float("0.01730000041425228"))
        XCTAssertEqual(floats[3].bitPattern, 0x3C8D_B8BB)   // the float32 nearest 0.0173
        XCTAssertTrue(floats[4].isNaN)
        XCTAssertEqual(floats[5], -.infinity)
        XCTAssertEqual(value["s"]?.stringValue, "x\"é😀")
        XCTAssertEqual(value["n"], .null)
        XCTAssertEqual(value["t"], .bool(true))
        XCTAssertEqual(value["o"]?["k"], .array([]))
        XCTAssertEqual(try value["a"]!.arrayValue![0].int(), 1)
        XCTAssertThrowsError(try value["a"]!.arrayValue![2].int())
        for bad in ["[1,]", "{\"a\" 1}", "[01x]", "\"open", "[1] 2", "-", "1.", "1e"] {
            XCTAssertThrowsError(try JSONReader.parse(Array(bad.utf8)), bad)
        }
    }

    // MARK: Runners

    /// A failure inside a runner, naming the case and the first differing elements.
    struct Mismatch: Error, CustomStringConvertible {
        var description: String
    }

    static func checkQuantized(_ actual: QuantizedTensor, q expected: [Int], dq expectedDQ: [Float],
                               scheme: String) throws {
        let q = actual.intRepr().map(Int.init)
        if q != expected {
            let bad = q.indices.filter { q[$0] != expected[$0] }
            throw Mismatch(description: "\(scheme): q differs at \(bad.count) of \(q.count) elements, first at "
                           + "\(bad[0]): got \(q[bad[0]]), PyTorch \(expected[bad[0]])")
        }
        let dq = actual.dequantized().scalars
        if let i = firstBitDifference(dq, expectedDQ) {
            throw Mismatch(description: "\(scheme): dq differs at element \(i): got \(dq[i]) "
                           + "(0x\(String(dq[i].bitPattern, radix: 16))), PyTorch \(expectedDQ[i]) "
                           + "(0x\(String(expectedDQ[i].bitPattern, radix: 16)))")
        }
    }

    static func dtype(of goldenCase: GoldenCase) throws -> QuantizedDType {
        let name = try goldenCase.field("dtype").stringValue ?? ""
        guard let dtype = QuantizedDType(rawValue: name) else {
            throw Mismatch(description: "unknown dtype \(name)")
        }
        return dtype
    }

    @Sendable static func runQuantizePerTensor(_ goldenCase: GoldenCase) throws {
        let dtype = try dtype(of: goldenCase)
        let scale = try goldenCase.field("scale").float()
        let zeroPoint = try goldenCase.field("zero_point").int()
        let x = try Tensor(shape: try goldenCase.field("shape").ints(), scalars: try goldenCase.field("x").floats())
        let q = try goldenCase.field("q").ints()
        let dq = try goldenCase.field("dq").floats()

        let quantized = try x.quantized(scale: scale, zeroPoint: zeroPoint, dtype: dtype)
        guard quantized.qscheme == .perTensorAffine, quantized.shape == x.shape, quantized.dtype == dtype else {
            throw Mismatch(description: "unexpected metadata \(quantized.qscheme) \(quantized.shape)")
        }
        try checkQuantized(quantized, q: q, dq: dq, scheme: "quantize_per_tensor")

        // The same values wrapped from their integer representation (torch._make_per_tensor_quantized_tensor).
        let made: QuantizedTensor
        switch dtype {
        case .quint8: made = try QuantizedTensor(intRepr: try quantized.intRepr(as: UInt8.self), scale: scale,
                                                 zeroPoint: zeroPoint)
        case .qint8: made = try QuantizedTensor(intRepr: try quantized.intRepr(as: Int8.self), scale: scale,
                                                zeroPoint: zeroPoint)
        case .qint32: made = try QuantizedTensor(intRepr: try quantized.intRepr(as: Int32.self), scale: scale,
                                                 zeroPoint: zeroPoint)
        }
        guard made == quantized else { throw Mismatch(description: "intRepr round trip differs") }
    }

    @Sendable static func runQuantizePerChannel(_ goldenCase: GoldenCase) throws {
        let dtype = try dtype(of: goldenCase)
        let scales = try goldenCase.field("scales").floats()
        let zeroPoints = try goldenCase.field("zero_points").ints()
        let axis = try goldenCase.field("axis").int()
        let x = try Tensor(shape: try goldenCase.field("shape").ints(), scalars: try goldenCase.field("x").floats())
        let q = try goldenCase.field("q").ints()
        let dq = try goldenCase.field("dq").floats()

        let quantized = try x.quantized(scales: scales, zeroPoints: zeroPoints, axis: axis, dtype: dtype)
        guard quantized.qscheme == .perChannelAffine, quantized.axis == axis, quantized.shape == x.shape else {
            throw Mismatch(description: "unexpected metadata \(quantized.qscheme) axis \(String(describing: quantized.axis))")
        }
        try checkQuantized(quantized, q: q, dq: dq, scheme: "quantize_per_channel")

        // Negative axes address the same dimension.
        let negative = try x.quantized(scales: scales, zeroPoints: zeroPoints, axis: axis - x.rank, dtype: dtype)
        guard negative == quantized else { throw Mismatch(description: "axis \(axis - x.rank) differs from \(axis)") }

        // torch._make_per_channel_quantized_tensor from the expected integers dequantizes to the expected floats.
        let made: QuantizedTensor
        switch dtype {
        case .quint8:
            made = try QuantizedTensor(intRepr: try Tensor(shape: x.shape, scalars: q.map { UInt8($0) }),
                                       scales: scales, zeroPoints: zeroPoints, axis: axis)
        case .qint8:
            made = try QuantizedTensor(intRepr: try Tensor(shape: x.shape, scalars: q.map { Int8($0) }),
                                       scales: scales, zeroPoints: zeroPoints, axis: axis)
        case .qint32:
            made = try QuantizedTensor(intRepr: try Tensor(shape: x.shape, scalars: q.map { Int32($0) }),
                                       scales: scales, zeroPoints: zeroPoints, axis: axis)
        }
        try checkQuantized(made, q: q, dq: dq, scheme: "_make_per_channel_quantized_tensor")
    }
}
