import NIOPosix

/// Runs blocking work (file syncs, database calls, reads of whole files) on NIO's shared thread
/// pool, never on Swift's cooperative pool, whose few threads every task of the process shares: a
/// write waiting out SQLite's `busy_timeout` there would stall unrelated work for as long.
package enum BlockingWork {
    package static func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await NIOThreadPool.singleton.runIfActive(body)
    }
}
