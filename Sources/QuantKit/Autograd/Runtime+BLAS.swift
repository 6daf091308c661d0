extension Runtime {
    /// The CBLAS library behind the float modules' matrix products, e.g. `"OpenBLAS (Zen)"` or `"Accelerate"`.
    ///
    /// PyTorch: the BLAS line of `torch.__config__.show()`.
    public static var blasName: String { BLAS.name }

    /// The thread count of the BLAS's own pool (separate from `numberOfThreads`, which the quantized kernels use),
    /// or nil where the BLAS does not report it (Accelerate).
    ///
    /// PyTorch: `torch.get_num_threads()` (PyTorch's GEMMs share its intra-op pool).
    public static var blasThreads: Int? { BLAS.numberOfThreads }

    /// Sets the thread count of the BLAS's own pool (OpenBLAS: `openblas_set_num_threads`; no-op on Accelerate).
    /// On a machine shared with other work, 1 avoids oversubscription.
    ///
    /// PyTorch: `torch.set_num_threads(count)`.
    public static func setBLASThreads(_ count: Int) { BLAS.setNumberOfThreads(count) }
}
