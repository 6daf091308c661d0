// Uses only QuantKit's public API: quantize to quint8, check the integers, dequantize, check the values.
import QuantKit

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

let scale: Float = 0.5
let zeroPoint = 10
// Ties round half to even (0.25 / 0.5 = 0.5 -> 0, 1.75 / 0.5 = 3.5 -> 4); out-of-range values saturate.
let input: [Float] = [-1.0, 0.0, 0.25, 1.75, 3.0, 100.0, 200.0, -10.0]
let expectedInts: [Int32] = [8, 10, 10, 14, 16, 210, 255, 0]
let expectedValues: [Float] = [-1.0, 0.0, 0.0, 2.0, 3.0, 100.0, 122.5, -5.0]

func fail(_ message: String) -> Never {
    print("downstream round trip FAILED: \(message)")
    exit(1)
}

do {
    try Runtime.initialize()
    let x = try Tensor<Float>(shape: [2, 4], scalars: input)
    let q = try x.quantized(scale: scale, zeroPoint: zeroPoint, dtype: .quint8)
    let ints = q.intRepr()
    guard ints == expectedInts else { fail("intRepr() = \(ints), expected \(expectedInts)") }
    let y = q.dequantized()
    guard y.shape == [2, 4] else { fail("dequantized shape \(y.shape), expected [2, 4]") }
    guard y.scalars == expectedValues else { fail("dequantized() = \(y.scalars), expected \(expectedValues)") }
    print("QuantKit \(Runtime.version), ISA \(Runtime.isa), \(Runtime.numberOfThreads) threads (\(Runtime.threadBackend))")
    print("downstream round trip OK")
} catch {
    fail("\(error)")
}
