// fp32 matrix products for the float modules and their gradients: CBLAS from the system (OpenBLAS on Linux,
// Accelerate on Apple platforms). QuantKit writes no sgemm of its own; this file is the only caller of CBLAS.
#if canImport(Accelerate)
internal import Accelerate
#elseif canImport(COpenBLAS)
internal import COpenBLAS
#endif

/// Row-major single-precision GEMM and friends over raw pointers. Dimensions are validated by the callers; every
/// size must fit in `Int32` (CBLAS's `int`), which the callers' shapes do for any tensor that fits in memory per
/// row/column, and is checked here.
enum BLAS {
    /// Whether an operand is used as stored or transposed.
    enum Transpose {
        case none
        case transposed
    }

    /// `C[m, n] = alpha * op(A)[m, k] * op(B)[k, n] + beta * C` with row-major storage and leading dimensions
    /// `lda`, `ldb`, `ldc` (elements between consecutive rows as stored). PyTorch: `torch.addmm` (its CPU kernel is
    /// the same BLAS call).
    static func sgemm(
        _ transA: Transpose, _ transB: Transpose, m: Int, n: Int, k: Int, alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int, beta: Float = 0,
        c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        guard m > 0, n > 0 else { return }
        if k == 0 {
            // BLAS leaves C untouched only for beta == 1; make "sum over nothing" explicit.
            for row in 0..<m {
                let cRow = c + row * ldc
                for column in 0..<n { cRow[column] = beta == 0 ? 0 : beta * cRow[column] }
            }
            return
        }
        precondition([m, n, k, lda, ldb, ldc].allSatisfy { $0 <= Int(Int32.max) },
                     "BLAS.sgemm: a dimension exceeds Int32.max")
        cblas_sgemm(CblasRowMajor, cblasTranspose(transA), cblasTranspose(transB), Int32(m), Int32(n), Int32(k),
                    alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    private static func cblasTranspose(_ t: Transpose) -> CBLAS_TRANSPOSE {
        switch t {
        case .none: return CblasNoTrans
        case .transposed: return CblasTrans
        }
    }

    /// The thread count OpenBLAS uses for one call (its own pool, separate from QuantKit's kernels); nil where the
    /// BLAS does not say (Accelerate).
    static var numberOfThreads: Int? {
        #if canImport(Accelerate)
        return nil
        #else
        return Int(openblas_get_num_threads())
        #endif
    }

    /// Sets OpenBLAS's thread count (no-op on Accelerate, which manages its own threads).
    static func setNumberOfThreads(_ count: Int) {
        #if !canImport(Accelerate)
        openblas_set_num_threads(Int32(clamping: max(1, count)))
        #endif
    }

    /// The BLAS in use, e.g. "OpenBLAS (Zen)" or "Accelerate".
    static var name: String {
        #if canImport(Accelerate)
        return "Accelerate"
        #else
        return "OpenBLAS (\(String(cString: openblas_get_corename())))"
        #endif
    }
}
