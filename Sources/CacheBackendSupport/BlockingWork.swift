import NIOCore
import NIOPosix

/// Runs blocking work (file syncs, database calls, reads of whole files) on a thread pool of the
/// cache backends' own, never on Swift's cooperative pool, whose few threads every task of the
/// process shares: a write waiting out SQLite's `busy_timeout` there would stall unrelated work for
/// as long.
///
/// The pool is not `NIOThreadPool.singleton`: other libraries in the process (NIO's own file I/O,
/// a database driver) use that one, and a burst of writers waiting on a lock must not hold their
/// work up, nor theirs ours.
package enum BlockingWork {
    /// Started on first use and kept for the life of the process, as NIO's singleton is.
    private static let pool: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: max(4, System.coreCount))
        pool.start()
        return pool
    }()

    package static func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await pool.runIfActive(body)
    }
}
