import QuantKit
import XCTest

final class TensorTests: XCTestCase {
    func testInitializersAndProperties() throws {
        let t = try Tensor<Float>(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(t.shape, [2, 3])
        XCTAssertEqual(t.rank, 2)
        XCTAssertEqual(t.count, 6)
        XCTAssertEqual(t.scalars, [1, 2, 3, 4, 5, 6])

        let v = Tensor<Int8>([1, -2, 3])
        XCTAssertEqual(v.shape, [3])
        XCTAssertEqual(v.scalars, [1, -2, 3])
        let literal: Tensor<UInt8> = [7, 8]
        XCTAssertEqual(literal, Tensor([7, 8]))

        let zeros = try Tensor<Int32>(zeros: [2, 0, 4])
        XCTAssertEqual(zeros.count, 0)
        XCTAssertEqual(zeros.shape, [2, 0, 4])
        XCTAssertEqual(try Tensor<Int32>(zeros: [3]).scalars, [0, 0, 0])
        XCTAssertEqual(try Tensor<Float>(repeating: 2.5, shape: [2, 2]).scalars, [2.5, 2.5, 2.5, 2.5])

        let scalar = try Tensor<Float>(shape: [], scalars: [42])
        XCTAssertEqual(scalar.rank, 0)
        XCTAssertEqual(scalar.count, 1)
        XCTAssertEqual(scalar[], 42)

        let written = try Tensor<Float>(unsafeUninitializedShape: [2, 2]) { buffer in
            for i in buffer.indices { buffer[i] = Float(i) * 10 }
        }
        XCTAssertEqual(written.scalars, [0, 10, 20, 30])

        let empty = Tensor<Float>([])
        XCTAssertEqual(empty.shape, [0])
        XCTAssertEqual(empty.scalars, [])
    }

    func testInitializerErrors() {
        if let error = quantizationError({ try Tensor<Float>(shape: [2, 3], scalars: [1, 2, 3, 4, 5]) }) {
            XCTAssertEqual(error, .shapeMismatch(shape: [2, 3], count: 5))
            error.assertInformative(mentions: ["[2, 3]", "6", "5", "expected"])
        }
        if let error = quantizationError({ try Tensor<Float>(shape: [2, -3], scalars: []) }) {
            guard case .invalidShape(let shape, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(shape, [2, -3])
            error.assertInformative(mentions: ["-3", "negative", ">= 0"])
        }
        XCTAssertNotNil(quantizationError({ try Tensor<Float>(zeros: [-1]) }))
        XCTAssertNotNil(quantizationError({ try Tensor<UInt8>(repeating: 1, shape: [4, -2]) }))
        if let error = quantizationError({ try Tensor<Float>(zeros: [Int.max, 2]) }) {
            guard case .invalidShape = error else { return XCTFail("\(error)") }
            error.assertInformative(mentions: ["overflow"])
        }
        // Count fits in Int but the byte size would not.
        XCTAssertNotNil(quantizationError({ try Tensor<Float>(zeros: [Int.max / 2]) }))
        XCTAssertNotNil(quantizationError({ try Tensor<Float>(unsafeUninitializedShape: [-1]) { _ in } }))
    }

    func testCopyOnWrite() throws {
        let original = try Tensor<Float>(shape: [2, 2], scalars: [1, 2, 3, 4])
        var copy = original
        copy[0, 1] = 20
        XCTAssertEqual(original.scalars, [1, 2, 3, 4])
        XCTAssertEqual(copy.scalars, [1, 20, 3, 4])

        var copy2 = original
        copy2.withUnsafeMutableBufferPointer { buffer in buffer[3] = 40 }
        XCTAssertEqual(original.scalars, [1, 2, 3, 4])
        XCTAssertEqual(copy2.scalars, [1, 2, 3, 40])

        // A reshaped tensor shares storage until one side is written.
        var reshaped = try original.reshaped(to: [4])
        reshaped[2] = 30
        XCTAssertEqual(original.scalars, [1, 2, 3, 4])
        XCTAssertEqual(reshaped.scalars, [1, 2, 30, 4])

        // Unique tensors are mutated in place (no copy): the address stays the same.
        var unique = try Tensor<Int32>(zeros: [16])
        let before = unique.withUnsafeBufferPointer { UInt(bitPattern: $0.baseAddress) }
        unique[3] = 7
        let after = unique.withUnsafeBufferPointer { UInt(bitPattern: $0.baseAddress) }
        XCTAssertEqual(before, after)
        XCTAssertEqual(unique[3], 7)

        // A quantized tensor's integer view is a value too.
        let q = try Tensor<Float>([0, 1, 2]).quantized(scale: 1, zeroPoint: 0, dtype: .quint8)
        var ints = try q.intRepr(as: UInt8.self)
        ints[0] = 99
        XCTAssertEqual(q.intRepr(), [0, 1, 2])
    }

    func testSubscripts() throws {
        var t = try Tensor<Int32>(shape: [2, 3, 4], scalars: (0..<24).map(Int32.init))
        XCTAssertEqual(t[0, 0, 0], 0)
        XCTAssertEqual(t[0, 0, 3], 3)
        XCTAssertEqual(t[0, 2, 1], 9)
        XCTAssertEqual(t[1, 0, 0], 12)
        XCTAssertEqual(t[1, 2, 3], 23)
        t[1, 1, 1] = -1
        XCTAssertEqual(t.scalars[12 + 4 + 1], -1)
        for i in 0..<2 { for j in 0..<3 { for k in 0..<4 where (i, j, k) != (1, 1, 1) {
            XCTAssertEqual(t[i, j, k], Int32(i * 12 + j * 4 + k))
        } } }
    }

    func testReshape() throws {
        let t = try Tensor<Float>(shape: [2, 3, 4], scalars: (0..<24).map(Float.init))
        XCTAssertEqual(try t.reshaped(to: [6, 4]).shape, [6, 4])
        XCTAssertEqual(try t.reshaped(to: [-1]).shape, [24])
        XCTAssertEqual(try t.reshaped(to: [4, -1]).shape, [4, 6])
        XCTAssertEqual(try t.reshaped(to: [2, -1, 3]).shape, [2, 4, 3])
        XCTAssertEqual(try t.reshaped(to: [24, 1, 1]).shape, [24, 1, 1])
        XCTAssertEqual(try t.reshaped(to: [4, -1]).scalars, t.scalars)
        XCTAssertEqual(try Tensor<Float>([5]).reshaped(to: []).shape, [])
        XCTAssertEqual(try Tensor<Float>(zeros: [0, 3]).reshaped(to: [-1, 3]).shape, [0, 3])

        if let error = quantizationError({ try t.reshaped(to: [5, 5]) }) {
            XCTAssertEqual(error, .shapeMismatch(shape: [5, 5], count: 24))
            error.assertInformative(mentions: ["[5, 5]", "25", "24"])
        }
        if let error = quantizationError({ try t.reshaped(to: [5, -1]) }) {
            XCTAssertEqual(error, .shapeMismatch(shape: [5, -1], count: 24))
        }
        if let error = quantizationError({ try t.reshaped(to: [-1, -1]) }) {
            guard case .invalidShape(let shape, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(shape, [-1, -1])
            error.assertInformative(mentions: ["only one", "-1"])
        }
        if let error = quantizationError({ try t.reshaped(to: [-2, -12]) }) {
            guard case .invalidShape = error else { return XCTFail("\(error)") }
        }
        if let error = quantizationError({ try Tensor<Float>(zeros: [0, 3]).reshaped(to: [3, 0, -1]) }) {
            guard case .invalidShape = error else { return XCTFail("\(error)") }
            error.assertInformative(mentions: ["cannot be inferred"])
        }
    }

    func testStorageIsAligned() throws {
        func assertAligned<T>(_ t: Tensor<T>, file: StaticString = #filePath, line: UInt = #line) {
            let address = t.withUnsafeBufferPointer { UInt(bitPattern: $0.baseAddress) }
            XCTAssertNotEqual(address, 0, file: file, line: line)
            XCTAssertEqual(address % 64, 0, "\(T.self) x\(t.count) at 0x\(String(address, radix: 16))",
                           file: file, line: line)
        }
        for count in [0, 1, 3, 15, 16, 17, 63, 64, 65, 1000, 4097] {
            let x = TestData.uniform(count: count, magnitude: 4, seed: UInt64(count))
            assertAligned(Tensor(x))
            assertAligned(try Tensor<UInt8>(zeros: [count]))
            assertAligned(try Tensor<Int8>(repeating: 1, shape: [count]))
            assertAligned(try Tensor<Int32>(zeros: [count, 1]))
            var copy = Tensor(x)
            let shared = copy
            if count > 0 { copy[0] = 1 }   // forces a copy of the storage
            assertAligned(copy)
            assertAligned(shared)
            let q = try Tensor(x).quantized(scale: 0.1, zeroPoint: 3, dtype: .qint8)
            assertAligned(try q.intRepr(as: Int8.self))
            assertAligned(q.dequantized())
            #if !(os(macOS) && arch(x86_64))
            assertAligned(Tensor(x).converted(to: Float16.self))
            #endif
        }
    }

    func testEquatableAndDescription() throws {
        let a = try Tensor<Float>(shape: [2, 2], scalars: [1, 2, 3, 4])
        XCTAssertEqual(a, try Tensor(shape: [2, 2], scalars: [1, 2, 3, 4]))
        XCTAssertNotEqual(a, try Tensor(shape: [4], scalars: [1, 2, 3, 4]))
        XCTAssertNotEqual(a, try Tensor(shape: [2, 2], scalars: [1, 2, 3, 5]))
        XCTAssertEqual(a.description, "tensor([[1.0, 2.0], [3.0, 4.0]], shape: [2, 2], dtype: float32)")
        XCTAssertEqual(Tensor<Int8>([-1, 2]).description, "tensor([-1, 2], shape: [2], dtype: int8)")
        let big = try Tensor<Int32>(shape: [2000], scalars: (0..<2000).map(Int32.init))
        XCTAssertEqual(big.description, "tensor([0, 1, 2, ..., 1997, 1998, 1999], shape: [2000], dtype: int32)")
        let q = try Tensor<Float>([0, 1]).quantized(scale: 0.5, zeroPoint: 10, dtype: .quint8)
        XCTAssertEqual(q.description, "QuantizedTensor(intRepr: [10, 12], shape: [2], dtype: quint8, "
                       + "qscheme: per_tensor_affine, scale: 0.5, zeroPoint: 10)")
    }
}
