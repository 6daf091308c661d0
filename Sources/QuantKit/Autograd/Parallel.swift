import Dispatch

/// A parallel-for for the float operations' loops (im2col, batch norm, pooling, element-wise maps), on Dispatch's
/// worker threads. The range is cut into one contiguous part per worker; each part must write disjoint outputs, so
/// results do not depend on the thread count. Small jobs run inline.
enum Parallel {
    /// Workers per job: QuantKit's thread setting (`Runtime.numberOfThreads`, `QUANTKIT_NUM_THREADS`).
    static var workers: Int { max(1, Kernels.numberOfThreads) }

    /// Below this many elements of work a job runs on the calling thread (a dispatch costs a few microseconds).
    static let minimumWork = 1 << 15

    /// Calls `body` on parts of `0..<count` covering it exactly, in parallel when `count * workPerItem` is large
    /// enough.
    static func forEach(_ count: Int, workPerItem: Int, _ body: (Range<Int>) -> Void) {
        let parts = min(workers, count)
        guard parts > 1, count.multipliedReportingOverflow(by: max(1, workPerItem)).partialValue >= minimumWork else {
            if count > 0 { body(0..<count) }
            return
        }
        withoutActuallyEscaping(body) { body in
            let task = UncheckedSendable(body)
            DispatchQueue.concurrentPerform(iterations: parts) { part in
                task.value(count * part / parts..<count * (part + 1) / parts)
            }
        }
    }
}

/// Carries a value the caller guarantees is used safely across threads (the closures of `Parallel.forEach`, which
/// capture raw pointers to disjoint outputs).
struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
