/// Watches the tensors that flow through a point of a model and chooses quantization parameters from their
/// statistics. Observers are classes: a prepared model holds them and calibration mutates them in place.
///
/// PyTorch: `torch.ao.quantization.observer.ObserverBase` (an `nn.Module` whose `forward(x)` records statistics and
/// returns `x` unchanged).
public protocol Observer: AnyObject {
    /// The integer type the parameters are for. PyTorch: `observer.dtype`.
    var dtype: QuantizedDType { get }
    /// Per tensor or per channel, affine or symmetric. PyTorch: `observer.qscheme`.
    var qscheme: QScheme { get }
    /// Records the statistics of `x`. PyTorch: `observer(x)` (`forward`), whose return value is `x`.
    func observe(_ x: Tensor<Float>) throws
    /// The parameters chosen from everything observed since the last `reset()`.
    /// PyTorch: `observer.calculate_qparams()`.
    func calculateQParams() throws -> QuantizationParameters
    /// Forgets everything observed. PyTorch: `observer.reset_min_max_vals()` (`reset_histogram` for histograms).
    func reset()
}
