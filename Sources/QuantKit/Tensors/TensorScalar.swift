/// A type that can be the element of a `Tensor`.
///
/// PyTorch: the `torch.dtype` of a dense CPU tensor (`torch.float32`, `torch.float16`, `torch.int32`, `torch.uint8`,
/// `torch.int8`). Conforming types are plain bit patterns (`BitwiseCopyable`) so tensors can hand their memory to the
/// C kernels directly.
public protocol TensorScalar: Numeric, Sendable, BitwiseCopyable, CustomStringConvertible {
    /// The PyTorch name of the dtype without the `torch.` prefix, e.g. `"float32"`.
    static var dtypeName: String { get }
}

/// An integer type that stores the values of a quantized tensor: `UInt8` (`quint8`), `Int8` (`qint8`) or
/// `Int32` (`qint32`).
///
/// PyTorch: the dtype of `t.int_repr()` (`torch.uint8`, `torch.int8`, `torch.int32`).
public protocol QuantizedScalar: TensorScalar, FixedWidthInteger {
    /// The quantized dtype whose values this type stores.
    static var quantizedDType: QuantizedDType { get }
}

extension Float: TensorScalar {
    /// PyTorch: `torch.float32`.
    public static var dtypeName: String { "float32" }
}

#if !(os(macOS) && arch(x86_64))
extension Float16: TensorScalar {
    /// PyTorch: `torch.float16`.
    public static var dtypeName: String { "float16" }
}
#endif

extension Int32: QuantizedScalar {
    /// PyTorch: `torch.int32`.
    public static var dtypeName: String { "int32" }
    /// PyTorch: `torch.qint32` stores `torch.int32`.
    public static var quantizedDType: QuantizedDType { .qint32 }
}

extension UInt8: QuantizedScalar {
    /// PyTorch: `torch.uint8`.
    public static var dtypeName: String { "uint8" }
    /// PyTorch: `torch.quint8` stores `torch.uint8`.
    public static var quantizedDType: QuantizedDType { .quint8 }
}

extension Int8: QuantizedScalar {
    /// PyTorch: `torch.int8`.
    public static var dtypeName: String { "int8" }
    /// PyTorch: `torch.qint8` stores `torch.int8`.
    public static var quantizedDType: QuantizedDType { .qint8 }
}
