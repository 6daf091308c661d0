import Foundation
import QuantKit
import XCTest

/// safetensors reading and writing: byte-exact canonical output, round trips for every dtype, typed access and
/// state_dict helpers, and malformed input (hand-made cases and fuzzing) that must throw, never trap.
final class SafeTensorsTests: XCTestCase {
    /// A file from a header string and a data buffer.
    static func file(_ json: String, _ data: [UInt8] = []) -> [UInt8] {
        file(Array(json.utf8), data)
    }

    static func file(_ header: [UInt8], _ data: [UInt8] = []) -> [UInt8] {
        DataFixtures.littleEndian64(UInt64(header.count)) + header + data
    }

    static func floats(_ values: [Float]) -> [UInt8] {
        values.flatMap { DataFixtures.littleEndian32($0.bitPattern) }
    }

    // MARK: Byte-exact output

    func testMatchesTheReferenceImplementationsOwnTestVectors() throws {
        // safetensors/src/tensor.rs, test_serialization: "attn.0", F32 [1, 2, 3] holding 0...5.
        var attention = SafeTensors()
        try attention.setTensor(Tensor<Float>(shape: [1, 2, 3], scalars: [0, 1, 2, 3, 4, 5]), for: "attn.0")
        XCTAssertEqual(attention.serialized(), [
            64, 0, 0, 0, 0, 0, 0, 0, 123, 34, 97, 116, 116, 110, 46, 48, 34, 58, 123, 34, 100,
            116, 121, 112, 101, 34, 58, 34, 70, 51, 50, 34, 44, 34, 115, 104, 97, 112, 101, 34,
            58, 91, 49, 44, 50, 44, 51, 93, 44, 34, 100, 97, 116, 97, 95, 111, 102, 102, 115,
            101, 116, 115, 34, 58, 91, 48, 44, 50, 52, 93, 125, 125, 0, 0, 0, 0, 0, 0, 128, 63,
            0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0, 160, 64,
        ])
        // test_serialization_forced_alignement: "attn0", [1, 1, 2, 3]: 7 spaces pad the header to 72 bytes.
        var aligned = SafeTensors()
        try aligned.setTensor(Tensor<Float>(shape: [1, 1, 2, 3], scalars: [0, 1, 2, 3, 4, 5]), for: "attn0")
        XCTAssertEqual(aligned.serialized(), [
            72, 0, 0, 0, 0, 0, 0, 0, 123, 34, 97, 116, 116, 110, 48, 34, 58, 123, 34, 100, 116,
            121, 112, 101, 34, 58, 34, 70, 51, 50, 34, 44, 34, 115, 104, 97, 112, 101, 34, 58,
            91, 49, 44, 49, 44, 50, 44, 51, 93, 44, 34, 100, 97, 116, 97, 95, 111, 102, 102,
            115, 101, 116, 115, 34, 58, 91, 48, 44, 50, 52, 93, 125, 125, 32, 32, 32, 32, 32,
            32, 32, 0, 0, 0, 0, 0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0,
            160, 64,
        ])
        // test_empty: no tensors, with and without metadata.
        XCTAssertEqual(SafeTensors().serialized(), [8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32])
        XCTAssertEqual(SafeTensors(metadata: ["framework": "pt"]).serialized(), [
            40, 0, 0, 0, 0, 0, 0, 0, 123, 34, 95, 95, 109, 101, 116, 97, 100, 97, 116, 97, 95,
            95, 34, 58, 123, 34, 102, 114, 97, 109, 101, 119, 111, 114, 107, 34, 58, 34, 112,
            116, 34, 125, 125, 32, 32, 32, 32, 32,
        ])
        for bytes in [attention.serialized(), aligned.serialized()] {
            XCTAssertEqual(try SafeTensors(bytes: bytes).serialized(), bytes)
        }
    }

    /// A PyTorch-style state_dict of several dtypes, written by hand (and checked against safetensors 0.8's
    /// `serialize`): `__metadata__` first, then descending dtype alignment (I64, F32, BF16, F16, I8, U8), names in
    /// byte order within a dtype, compact JSON, spaces up to a multiple of 8 bytes.
    static let referenceHeader = #"{"__metadata__":{"format":"pt"},"#
        + #""bn.num_batches_tracked":{"dtype":"I64","shape":[],"data_offsets":[0,8]},"#
        + #""fc1.bias":{"dtype":"F32","shape":[2],"data_offsets":[8,16]},"#
        + #""fc1.weight":{"dtype":"F32","shape":[2,2],"data_offsets":[16,32]},"#
        + #""bf":{"dtype":"BF16","shape":[1],"data_offsets":[32,34]},"#
        + #""emb":{"dtype":"F16","shape":[2],"data_offsets":[34,38]},"#
        + #""q":{"dtype":"I8","shape":[3],"data_offsets":[38,41]},"#
        + #""mask":{"dtype":"U8","shape":[2],"data_offsets":[41,43]}}"# + "       "
    static let referenceData: [UInt8] = [7, 0, 0, 0, 0, 0, 0, 0,  // I64 7
                                         0, 0, 128, 62, 0, 0, 128, 190,  // 0.25, -0.25
                                         0, 0, 128, 63, 0, 0, 0, 192, 0, 0, 0, 63, 0, 0, 64, 64,  // 1, -2, 0.5, 3
                                         128, 63,  // bf16 1.0
                                         0, 60, 0, 192,  // fp16 1.0, -2.0
                                         255, 0, 127,  // int8 -1, 0, 127
                                         1, 0]  // uint8

    static func referenceStateDict() throws -> SafeTensors {
        var state = SafeTensors(metadata: ["format": "pt"])
        try state.setTensor(Tensor<Float>(shape: [2, 2], scalars: [1, -2, 0.5, 3]), for: "fc1.weight")
        try state.setTensor(Tensor<Float>([0.25, -0.25]), for: "fc1.bias")
        try state.setScalars([Int64(7)], shape: [], for: "bn.num_batches_tracked")
        try state.setRawTensor(dtype: .float16, shape: [2], bytes: [0, 60, 0, 192], for: "emb")
        try state.setTensor(Tensor<Int8>([-1, 0, 127]), for: "q")
        try state.setTensor(Tensor<UInt8>([1, 0]), for: "mask")
        try state.setBFloat16Tensor(Tensor<Float>([1]), for: "bf")
        return state
    }

    func testHandWrittenReferenceFileIsByteExact() throws {
        XCTAssertEqual(Self.referenceHeader.utf8.count, 464)
        let expected = Self.file(Self.referenceHeader, Self.referenceData)
        XCTAssertEqual(expected.count, 515)
        let state = try Self.referenceStateDict()
        XCTAssertEqual(state.serialized(), expected)
        XCTAssertEqual([UInt8](state.serializedData()), expected)

        let loaded = try SafeTensors(bytes: expected)
        XCTAssertEqual(loaded, state)
        XCTAssertEqual(loaded.names, ["bn.num_batches_tracked", "fc1.bias", "fc1.weight", "bf", "emb", "q", "mask"])
        XCTAssertEqual(loaded.metadata, ["format": "pt"])
        XCTAssertEqual(try loaded.tensor("fc1.weight", as: Float.self, shape: [2, 2]).scalars, [1, -2, 0.5, 3])
        XCTAssertEqual(try loaded.scalars("bn.num_batches_tracked", as: Int64.self, shape: []), [7])
        XCTAssertEqual(try loaded.floatTensor("emb").scalars, [1, -2])
        XCTAssertEqual(try loaded.floatTensor("bf").scalars, [1])
        XCTAssertEqual(try loaded.tensor("q", as: Int8.self).scalars, [-1, 0, 127])
        XCTAssertEqual(loaded["mask"]?.dtype, .uint8)
        XCTAssertEqual(loaded["mask"]?.bytes, [1, 0])
    }

    func testEveryDTypeSortsInReferenceOrder() throws {
        // The order safetensors 0.8 writes one tensor of each dtype in.
        let expectedOrder: [SafeTensors.DType] = [.uint64, .int64, .float64, .complex64, .float32, .uint32, .int32,
                                                   .bfloat16, .float16, .uint16, .int16, .float8E8M0, .float8E4M3,
                                                   .float8E5M2, .int8, .uint8, .bool]
        var state = SafeTensors()
        for dtype in SafeTensors.DType.allCases {
            try state.setRawTensor(dtype: dtype, shape: [1], bytes: Array(repeating: 0, count: dtype.byteCount),
                                   for: "t_" + dtype.rawValue)
        }
        let loaded = try SafeTensors(bytes: state.serialized())
        XCTAssertEqual(loaded.names.compactMap { loaded[$0]?.dtype }, expectedOrder)
    }

    func testNamesAreEscapedAsSerdeJSONDoes() throws {
        let name = "a\"b\\c\n\u{01}\u{7F}/é\u{08}\u{0C}\t\r"
        var state = SafeTensors()
        try state.setRawTensor(dtype: .uint8, shape: [0], bytes: [], for: name)
        // safetensors 0.8: {"a\"b\\c\n\u0001<7f>/é\b\f\t\r":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}} + 1 space
        let header = Array(#"{"a\"b\\c\n\u0001"#.utf8) + [0x7F] + Array(#"/é\b\f\t\r":{"dtype":"U8","shape":[0],"#.utf8)
            + Array(#""data_offsets":[0,0]}} "#.utf8)
        XCTAssertEqual(state.serialized(), Self.file(header))
        XCTAssertEqual(try SafeTensors(bytes: state.serialized()).names, [name])
    }

    // MARK: Round trips

    func testRoundTripEveryDType() throws {
        var generator = RandomGenerator(seed: 21)
        var state = SafeTensors(metadata: ["format": "pt", "note": "ünïcode \"quoted\""])
        for dtype in SafeTensors.DType.allCases {
            for shape in [[], [0], [3], [2, 3, 1]] {
                let count = shape.reduce(1, *)
                let bytes = (0..<(count * dtype.byteCount)).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
                try state.setRawTensor(dtype: dtype, shape: shape, bytes: bytes, for: "\(dtype.rawValue).\(shape)")
            }
        }
        let bytes = state.serialized()
        XCTAssertEqual((Int(bytes[0]) | Int(bytes[1]) << 8) % 8, 0, "the header is padded to a multiple of 8")
        let loaded = try SafeTensors(bytes: bytes)
        XCTAssertEqual(loaded, state)
        XCTAssertEqual(loaded.count, SafeTensors.DType.allCases.count * 4)
        XCTAssertEqual(loaded.serialized(), bytes, "canonical output is a fixed point")
        XCTAssertEqual(try SafeTensors(data: Data(bytes)), state)

        // Through a file.
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("qk-\(UUID().uuidString).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try state.write(to: url)
        XCTAssertEqual(try SafeTensors(contentsOf: url), state)
        XCTAssertEqual(try [UInt8](Data(contentsOf: url)), bytes)
        guard case .io? = thrown(SerializationError.self, {
            try SafeTensors(contentsOf: url.appendingPathExtension("missing"))
        }) else { return XCTFail("a missing file must be an io error") }
    }

    func testTypedRoundTrips() throws {
        var generator = RandomGenerator(seed: 8)
        let weights = try generator.normal(shape: [4, 3])
        var state = SafeTensors()
        try state.setTensor(weights, for: "w")
        try state.setTensor(Tensor<Int32>(shape: [2], scalars: [.min, .max]), for: "i32")
        try state.setTensor(Tensor<UInt8>([0, 255]), for: "u8")
        try state.setScalars([Double.pi, -0.0], shape: [2], for: "f64")
        try state.setScalars([Int16.min, 1, Int16.max], shape: [3], for: "i16")
        try state.setScalars([UInt16.max], shape: [1], for: "u16")
        try state.setScalars([UInt32.max, 0], shape: [1, 2], for: "u32")
        try state.setScalars([Int64.min, Int64.max], shape: [2], for: "i64")
        try state.setScalars([UInt64.max], shape: [], for: "u64")
        let loaded = try SafeTensors(bytes: state.serialized())
        XCTAssertEqual(try loaded.tensor("w", as: Float.self), weights)
        XCTAssertEqual(try loaded.tensor("i32", as: Int32.self).scalars, [.min, .max])
        XCTAssertEqual(try loaded.tensor("u8", as: UInt8.self).scalars, [0, 255])
        XCTAssertEqual(try loaded.scalars("f64", as: Double.self).map(\.bitPattern), [Double.pi, -0.0].map(\.bitPattern))
        XCTAssertEqual(try loaded.floatTensor("f64").scalars, [Float(Double.pi), -0.0])
        XCTAssertEqual(try loaded.scalars("i16", as: Int16.self), [.min, 1, .max])
        XCTAssertEqual(try loaded.scalars("u16", as: UInt16.self), [.max])
        XCTAssertEqual(try loaded.scalars("u32", as: UInt32.self, shape: [1, 2]), [.max, 0])
        XCTAssertEqual(try loaded.scalars("i64", as: Int64.self), [.min, .max])
        XCTAssertEqual(try loaded.scalars("u64", as: UInt64.self, shape: []), [.max])
        XCTAssertEqual(try loaded.floatTensor("w"), weights)
    }

    #if !(os(macOS) && arch(x86_64))
    func testHalfPrecisionMatchesTheTensorConversions() throws {
        // Every fp16 bit pattern: floatTensor's widening agrees with Tensor<Float16>.converted(to:) (NaN: quiet).
        let halves = (0...UInt16.max).map { Float16(bitPattern: $0) }
        var state = SafeTensors()
        try state.setTensor(Tensor<Float16>(halves), for: "h")
        let loaded = try SafeTensors(bytes: state.serialized())
        XCTAssertEqual(try loaded.tensor("h", as: Float16.self).scalars.map(\.bitPattern), halves.map(\.bitPattern))
        let widened = try loaded.floatTensor("h").scalars
        let reference = Tensor<Float16>(halves).converted(to: Float.self).scalars
        XCTAssertNil(firstBitDifference(widened, reference))
    }
    #endif

    func testBFloat16RoundsAsPyTorch() throws {
        // setBFloat16Tensor rounds to nearest even like Tensor.roundedToBFloat16() (x.bfloat16().float()).
        var generator = RandomGenerator(seed: 4)
        var values: [Float] = [0, -0.0, 1, -1, .infinity, -.infinity, .nan, .greatestFiniteMagnitude,
                               .leastNonzeroMagnitude, .leastNormalMagnitude, 1.00390625, 1.005859375, 1.0078125,
                               3.3961776e38, 3.3961778e38]
        values += (0..<5000).map { _ in Float(bitPattern: UInt32(truncatingIfNeeded: generator.next())) }
        let tensor = Tensor<Float>(values)
        var state = SafeTensors()
        try state.setBFloat16Tensor(tensor, for: "x")
        XCTAssertEqual(state["x"]?.dtype, .bfloat16)
        XCTAssertEqual(state["x"]?.bytes.count, values.count * 2)
        let loaded = try SafeTensors(bytes: state.serialized()).floatTensor("x").scalars
        let expected = tensor.roundedToBFloat16().scalars
        for (a, b) in zip(loaded, expected) {
            if a.isNaN { XCTAssertTrue(b.isNaN) } else { XCTAssertEqual(a.bitPattern, b.bitPattern, "\(a) vs \(b)") }
        }
    }

    // MARK: Typed access and state_dict helpers

    func testAccessorsCheckNameDTypeAndShape() throws {
        let state = try Self.referenceStateDict()
        XCTAssertEqual(thrown(SerializationError.self) { try state.tensor("fc2.weight", as: Float.self) },
                       .tensorNotFound(name: "fc2.weight", available: state.names))
        XCTAssertEqual(thrown(SerializationError.self) { try state.tensor("q", as: Float.self) },
                       .dtypeMismatch(tensor: "q", expected: "F32", actual: "I8"))
        XCTAssertEqual(thrown(SerializationError.self) { try state.floatTensor("q") },
                       .dtypeMismatch(tensor: "q", expected: "F32, F16, BF16 or F64", actual: "I8"))
        XCTAssertEqual(thrown(SerializationError.self) { try state.scalars("bn.num_batches_tracked", as: Int32.self) },
                       .dtypeMismatch(tensor: "bn.num_batches_tracked", expected: "I32", actual: "I64"))
        let shapeError = thrown(SerializationError.self) { try state.tensor("fc1.weight", as: Float.self, shape: [4]) }
        XCTAssertEqual(shapeError, .shapeMismatch(tensor: "fc1.weight", expected: [4], actual: [2, 2]))
        XCTAssertTrue(shapeError?.description.contains("fc1.weight") == true)
        XCTAssertTrue(state.contains("emb"))
        XCTAssertFalse(state.contains("__metadata__"))

        var editable = state
        XCTAssertEqual(thrown(SerializationError.self) {
            try editable.setRawTensor(dtype: .float32, shape: [3], bytes: [0, 0, 0, 0], for: "x")
        }, .invalidTensor(name: "x", reason: "shape [3] of F32 needs 12 bytes, got 4"))
        XCTAssertNotNil(thrown(SerializationError.self) {
            try editable.setRawTensor(dtype: .uint8, shape: [-1], bytes: [], for: "x")
        })
        XCTAssertNotNil(thrown(SerializationError.self) {
            try editable.setScalars([Int32(1)], shape: [2], for: "x")
        })
        XCTAssertNotNil(thrown(SerializationError.self) { try editable.setTensor(Tensor<Float>([1]), for: "__metadata__") })
        // Replacing keeps the position; removing drops the name.
        try editable.setTensor(Tensor<Float>([9, 9]), for: "fc1.bias")
        XCTAssertEqual(editable.names, state.names)
        XCTAssertEqual(editable.removeTensor(named: "q")?.dtype, .int8)
        XCTAssertNil(editable.removeTensor(named: "q"))
        XCTAssertEqual(editable.count, state.count - 1)
        XCTAssertNotEqual(editable, state)
    }

    func testStateDictPrefixesAndStrictNames() throws {
        var features = SafeTensors()
        try features.setTensor(Tensor<Float>([1, 2]), for: "weight")
        try features.setTensor(Tensor<Float>([3]), for: "bias")
        var model = SafeTensors()
        try model.merge(features, prefix: "features.0.")
        try model.merge(features, prefix: "features.3.")
        try model.setTensor(Tensor<Float>([0]), for: "bn.running_mean")
        XCTAssertEqual(model.names, ["features.0.weight", "features.0.bias", "features.3.weight", "features.3.bias",
                                     "bn.running_mean"])
        XCTAssertEqual(model.scoped(to: "features.3."), features)
        XCTAssertEqual(model.scoped(to: "features.3.").names, ["weight", "bias"])
        XCTAssertTrue(model.scoped(to: "classifier.").isEmpty)
        XCTAssertEqual(thrown(SerializationError.self) { try model.merge(features, prefix: "features.0.") },
                       .duplicateName("features.0.weight"))
        XCTAssertEqual(model.count, 5, "a failed merge adds nothing")

        XCTAssertNoThrow(try model.checkNames(expected: model.names.reversed()))
        let error = thrown(SerializationError.self) {
            try model.checkNames(expected: ["features.0.weight", "features.0.bias", "features.3.weight",
                                            "features.3.bias", "bn.running_var"])
        }
        XCTAssertEqual(error, .keyMismatch(missing: ["bn.running_var"], unexpected: ["bn.running_mean"]))
        XCTAssertTrue(error?.description.contains("missing key(s): bn.running_var") == true)
    }

    func testFlexibleButValidHeadersParse() throws {
        // Any key order, whitespace, metadata last, escapes, tensors not in offset order: all valid.
        let json = """
             { "b" : { "data_offsets" : [ 4 , 8 ] , "shape" : [ 1 ] , "dtype" : "F32" } ,
            "a\\u00e9\\ud83d\\ude00\\/" : {"shape":[],"dtype":"I32","data_offsets":[0,4]},
            "__metadata__" : { "k" : "v\\n" } }\t\r\n
            """
        let state = try SafeTensors(bytes: Self.file(json, Self.floats([2, 3])))
        XCTAssertEqual(state.names, ["b", "aé😀/"])
        XCTAssertEqual(try state.tensor("b", as: Float.self).scalars, [3])
        XCTAssertEqual(try state.tensor("aé😀/", as: Int32.self).scalars, [Int32(bitPattern: Float(2).bitPattern)])
        XCTAssertEqual(state.metadata, ["k": "v\n"])
        XCTAssertEqual(try SafeTensors(bytes: Self.file(#"{"__metadata__":null}"#)).metadata, [:])
        // Zero-size tensors may sit anywhere along the offsets, even between others.
        let empty = #"{"z":{"dtype":"F32","shape":[0,5],"data_offsets":[4,4]},"#
            + #""a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"c":{"dtype":"U8","shape":[1],"data_offsets":[4,5]}}"#
        XCTAssertEqual(try SafeTensors(bytes: Self.file(empty, Self.floats([1]) + [9])).count, 3)
    }

    // MARK: Malformed input

    func assertError(_ bytes: [UInt8], _ expected: SerializationError, file: StaticString = #filePath,
                     line: UInt = #line) {
        XCTAssertEqual(thrown(SerializationError.self, file: file, line: line) { try SafeTensors(bytes: bytes) },
                       expected, file: file, line: line)
    }

    func assertInvalidHeader(_ json: String, _ fragment: String, data: [UInt8] = [], file: StaticString = #filePath,
                             line: UInt = #line) {
        assertInvalidHeader(Array(json.utf8), fragment, data: data, file: file, line: line)
    }

    func assertInvalidHeader(_ header: [UInt8], _ fragment: String, data: [UInt8] = [],
                             file: StaticString = #filePath, line: UInt = #line) {
        let error = thrown(SerializationError.self, file: file, line: line) {
            try SafeTensors(bytes: Self.file(header, data))
        }
        guard case let .invalidHeader(_, reason)? = error else {
            return XCTFail("expected invalidHeader, got \(String(describing: error))", file: file, line: line)
        }
        XCTAssertTrue(reason.contains(fragment), "\"\(reason)\" should mention \"\(fragment)\"", file: file, line: line)
    }

    func testHeaderLengthProblems() {
        for length in 0..<8 { assertError(Array(repeating: 0, count: length), .fileTooSmall(byteCount: length)) }
        assertError(DataFixtures.littleEndian64(.max) + Array("{}".utf8),
                    .headerTooLarge(length: .max, limit: SafeTensors.defaultHeaderLimit))
        assertError(DataFixtures.littleEndian64(100_000_001), .headerTooLarge(length: 100_000_001, limit: 100_000_000))
        assertError(DataFixtures.littleEndian64(UInt64(Int.max) + 1), .headerTooLarge(length: UInt64(Int.max) + 1,
                                                                                        limit: 100_000_000))
        assertError(DataFixtures.littleEndian64(3) + Array("{}".utf8), .headerOutOfBounds(length: 3, fileSize: 10))
        XCTAssertEqual(thrown(SerializationError.self) { try SafeTensors(bytes: Self.file("{}  "), headerLimit: 3) },
                       .headerTooLarge(length: 4, limit: 3))
        assertInvalidHeader("", "starting with '{'")
        assertInvalidHeader("[]", "starting with '{'")
    }

    func testInvalidJSONAndStructure() {
        let tensor = #""a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}"#
        assertInvalidHeader("{" + tensor + ",}", "expected a string")
        assertInvalidHeader("{" + tensor, "',' or '}' in the header object")
        assertInvalidHeader("{" + tensor + "}\0", "only spaces may follow", data: [1])
        assertInvalidHeader("{" + tensor + "}}", "only spaces may follow", data: [1])
        assertInvalidHeader(#"{"a" {}}"#, "':' after a key")
        assertInvalidHeader(#"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]"#, "',' or '}' in tensor")
        assertInvalidHeader(#"{"a":[]}"#, "must be an object")
        assertInvalidHeader(#"{"a":{"dtype":"U8","shape":[1]}}"#, "lacks data_offsets")
        assertInvalidHeader(#"{"a":{}}"#, "lacks dtype, shape, data_offsets")
        assertInvalidHeader(#"{"a":{"dtype":"U8","dtype":"U8","shape":[],"data_offsets":[0,1]}}"#, "repeats \"dtype\"")
        assertInvalidHeader(#"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"extra":1}}"#, "unknown field")
        assertInvalidHeader(#"{"a":{"dtype":8,"shape":[1],"data_offsets":[0,1]}}"#, "must be a string")
        assertInvalidHeader(#"{"a":{"dtype":"U8","shape":1,"data_offsets":[0,1]}}"#, "array of integers")
        assertInvalidHeader(#"{"a":{"dtype":"U8","shape":[[1]],"data_offsets":[0,1]}}"#, "must hold integers")
        assertInvalidHeader(#"{"a":{"dtype":"U8","shape":[1.0],"data_offsets":[0,1]}}"#, "fraction or exponent")
        assertInvalidHeader(#"{"a":{"dtype":"U8","shape":[1e0],"data_offsets":[0,1]}}"#, "fraction or exponent")
        assertInvalidHeader(#"{"a":{"dtype":"U8","shape":[01],"data_offsets":[0,1]}}"#, "leading zero")
        assertInvalidHeader(#"{"a":{"dtype":"U8","shape":[1,],"data_offsets":[0,1]}}"#, "must hold integers")
        assertInvalidHeader(#"{"a":{"dtype":"U8","shape":[1],"data_offsets":[-1,1]}}"#, "negative")
        assertInvalidHeader(#"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,99999999999999999999]}}"#, "larger than")
        assertInvalidHeader(#"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1,2]}}"#, "[begin, end]")
        assertInvalidHeader(#"{"a":{"dtype":"U8","shape":[1],"data_offsets":[1]}}"#, "[begin, end]")
        assertInvalidHeader(#"{"__metadata__":{"k":1}}"#, "must be strings")
        assertInvalidHeader(#"{"__metadata__":{"k":"v","k":"w"}}"#, "duplicate __metadata__ key")
        assertInvalidHeader(#"{"__metadata__":[]}"#, "object of strings")
        // Strings: controls, escapes, UTF-8.
        assertInvalidHeader("{\"a\tb\":{}}", "raw control character")
        assertInvalidHeader(#"{"a\x":{}}"#, "invalid escape")
        assertInvalidHeader(#"{"a\u12":{}}"#, "4 hex digits")
        assertInvalidHeader(#"{"\udc00":{}}"#, "lone low surrogate")
        assertInvalidHeader(#"{"\ud800x":{}}"#, "not followed by a \\u low surrogate")
        assertInvalidHeader(#"{"\ud800\u0041":{}}"#, "not followed by a low surrogate")
        assertInvalidHeader(#"{"abc"#, "unterminated string")
        for bad: [UInt8] in [[0xFF], [0xC0, 0x80], [0xE0, 0x80, 0x80], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80],
                             [0xF5, 0x80, 0x80, 0x80], [0x80], [0xC3], [0xE2, 0x82]] {
            assertInvalidHeader(Array(#"{""#.utf8) + bad + Array(#"":{}}"#.utf8), "UTF-8")
        }
        assertInvalidHeader([0x7B, 0x22, 0xE2, 0x82], "UTF-8")  // truncated in the middle of a sequence
    }

    func testDuplicatesAndDTypes() {
        let a = #""a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}"#
        assertError(Self.file("{" + a + "," + a + "}", [1]), .duplicateName("a"))
        assertError(Self.file(#"{"__metadata__":{},"__metadata__":{}}"#), .duplicateName("__metadata__"))
        assertError(Self.file(#"{"a":{"dtype":"F4","shape":[2],"data_offsets":[0,1]}}"#, [0]),
                    .unsupportedDType(tensor: "a", dtype: "F4"))
        assertError(Self.file(#"{"a":{"dtype":"f32","shape":[1],"data_offsets":[0,4]}}"#, [0, 0, 0, 0]),
                    .unsupportedDType(tensor: "a", dtype: "f32"))
    }

    func testOffsetsAndSizes() {
        func header(_ entries: String) -> String { "{" + entries + "}" }
        // Wrong dtype size for the shape.
        assertError(Self.file(header(#""a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}"#), [0, 0, 0, 0]),
                    .invalidTensorInfo(tensor: "a", reason: "shape [2] of F32 needs 8 bytes, but data_offsets [0, 4] hold 4"))
        // Shape products that overflow.
        assertError(Self.file(header(#""a":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,0]}"#)),
                    .invalidTensorInfo(tensor: "a", reason: "the byte size of shape [4611686018427387904, 4] of F32 overflows"))
        assertError(Self.file(header(#""a":{"dtype":"U8","shape":[3037000500,3037000500],"data_offsets":[0,0]}"#)),
                    .invalidTensorInfo(tensor: "a", reason: "the byte size of shape [3037000500, 3037000500] of U8 overflows"))
        // Empty, but the other dimensions overflow: refused too (later size computations on the shape would trap).
        assertError(Self.file(header(#""a":{"dtype":"U8","shape":[0,4611686018427387904,4],"data_offsets":[0,0]}"#)),
                    .invalidTensorInfo(tensor: "a", reason: "the byte size of shape [0, 4611686018427387904, 4] of U8 overflows"))
        XCTAssertEqual(try SafeTensors(bytes: Self.file(header(#""a":{"dtype":"U8","shape":[4611686018427387904,0],"data_offsets":[0,0]}"#)))["a"]?.count, 0)
        // Reversed and out-of-buffer offsets (a huge end as well).
        assertError(Self.file(header(#""a":{"dtype":"U8","shape":[0],"data_offsets":[1,0]}"#), [0]),
                    .invalidOffsets(tensor: "a", reason: "begin 1 is after end 0"))
        assertError(Self.file(header(#""a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}"#), [1, 2, 3]),
                    .invalidOffsets(tensor: "a", reason: "[0, 4] reaches past the end of the 3-byte data buffer (truncated file?)"))
        assertError(Self.file(header(#""a":{"dtype":"U8","shape":[1],"data_offsets":[9223372036854775806,9223372036854775807]}"#), [1]),
                    .invalidOffsets(tensor: "a", reason: "[9223372036854775806, 9223372036854775807] reaches past the end of the 1-byte data buffer (truncated file?)"))
        // Overlap, gap, trailing bytes, and an empty tensor inside another one.
        assertError(Self.file(header(#""a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[1,3]}"#), [1, 2, 3]),
                    .invalidOffsets(tensor: "b", reason: "[1, 3] overlaps tensor \"a\", which ends at 2"))
        assertError(Self.file(header(#""a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}"#), [1, 2]),
                    .invalidOffsets(tensor: "b", reason: "[0, 2] overlaps tensor \"a\", which ends at 2"))
        assertError(Self.file(header(#""a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"b":{"dtype":"U8","shape":[1],"data_offsets":[2,3]}"#), [1, 2, 3]),
                    .invalidOffsets(tensor: "b", reason: "[2, 3] leaves a gap: tensor \"a\" ends at 1"))
        assertError(Self.file(header(#""a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}"#), [1, 2]),
                    .invalidOffsets(tensor: "a", reason: "[1, 2] leaves a gap: the buffer starts at 0"))
        assertError(Self.file(header(#""a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}"#), [1, 2]),
                    .incompleteBuffer(covered: 1, bufferSize: 2))
        assertError(Self.file("{}", [0]), .incompleteBuffer(covered: 0, bufferSize: 1))
        assertError(Self.file(header(#""a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"z":{"dtype":"U8","shape":[0],"data_offsets":[1,1]}"#), [1, 2]),
                    .invalidOffsets(tensor: "z", reason: "[1, 1] overlaps tensor \"a\", which ends at 2"))
    }

    func testEveryTruncationOfAValidFileThrows() throws {
        let good = try Self.referenceStateDict().serialized()
        for length in 0..<good.count {
            XCTAssertNotNil(thrown(SerializationError.self) { try SafeTensors(bytes: Array(good.prefix(length))) },
                            "prefix of \(length) bytes")
        }
        XCTAssertNoThrow(try SafeTensors(bytes: good))
        // Extending the buffer is an error too.
        assertError(good + [0], .incompleteBuffer(covered: 43, bufferSize: 44))
    }

    func testFuzzByteFlipsNeverTrap() throws {
        let good = try Self.referenceStateDict().serialized()
        var generator = RandomGenerator(seed: 1234)
        var accepted = 0
        for iteration in 0..<20_000 {
            var bytes = good
            let flips = 1 + (try generator.nextInt(below: 3))
            for _ in 0..<flips {
                // Half the flips land in the length prefix and header, where parsing happens.
                let position = iteration % 2 == 0 ? try generator.nextInt(below: bytes.count)
                    : try generator.nextInt(below: 8 + 464)
                bytes[position] ^= UInt8(try generator.nextInt(below: 255) + 1)
            }
            do {
                let state = try SafeTensors(bytes: bytes)
                accepted += 1
                // Whatever was accepted is consistent: it writes and reads back to the same value.
                XCTAssertEqual(try SafeTensors(bytes: state.serialized()), state)
            } catch {
                // Typed throws: the only other outcome is a SerializationError (a trap would end the test run).
            }
        }
        XCTAssertGreaterThan(accepted, 0, "some flips (data bytes, name characters) leave a valid file")
    }

    func testFuzzStructuredMutationsNeverTrap() throws {
        // Headers assembled from JSON fragments, and random bytes after a valid length prefix.
        let fragments = ["{", "}", "[", "]", ",", ":", "\"", "\"a\"", "\"__metadata__\"", "\"dtype\"", "\"shape\"",
                         "\"data_offsets\"", "\"F32\"", "\"U8\"", "\"BF16\"", "0", "1", "4", "-1", "1.5", "1e3",
                         "18446744073709551616", "9223372036854775807", "null", "true", " ", "\\u", "\\ud800", "\u{7F}",
                         "é", "\\", "\n"]
        var generator = RandomGenerator(seed: 99)
        for _ in 0..<20_000 {
            let count = try generator.nextInt(below: 24)
            var json = ""
            for _ in 0..<count { json += fragments[try generator.nextInt(below: fragments.count)] }
            let dataCount = try generator.nextInt(below: 16)
            let data = (0..<dataCount).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            _ = try? SafeTensors(bytes: Self.file(json, data))
        }
        for _ in 0..<5_000 {
            let length = try generator.nextInt(below: 64)
            let header = (0..<length).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            _ = try? SafeTensors(bytes: Self.file(header, [1, 2, 3]))
            // Random length prefixes over a short body.
            var prefix = DataFixtures.littleEndian64(generator.next() >> (try generator.nextInt(below: 64)))
            prefix += header
            _ = try? SafeTensors(bytes: prefix)
        }
        // Deep nesting is rejected at the first bracket, without recursion.
        let deep = "{\"a\":{\"shape\":" + String(repeating: "[", count: 100_000) + "}}"
        XCTAssertNotNil(thrown(SerializationError.self) { try SafeTensors(bytes: Self.file(deep)) })
    }
}
