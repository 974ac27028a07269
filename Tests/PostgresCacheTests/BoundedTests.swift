import ManagedIdentity
import Synchronization
import Testing

@testable import ManagedIdentityPostgresCache

struct BoundedTests {
    /// A value that arrives after the caller stopped waiting (a connection whose handshake finished
    /// late) must reach `disposeOfLate`: dropped, a PostgreSQL connection traps in postgres-nio.
    @Test func aValueThatArrivesLateIsDisposedOf() async throws {
        let (released, release) = AsyncStream.makeStream(of: Void.self)
        let (disposed, disposal) = AsyncStream.makeStream(of: Int.self)
        await #expect(throws: TokenCacheBackendError.self) {
            try await bounded(.milliseconds(20)) {
                // Ignores cancellation, as a query to a frozen server does.
                for await _ in released { break }
                return 7
            } disposeOfLate: { value in
                disposal.yield(value)
                disposal.finish()
            }
        }
        release.yield()
        var late: [Int] = []
        for await value in disposed { late.append(value) }
        #expect(late == [7])
    }

    @Test func aValueInTimeIsReturnedAndNotDisposedOf() async throws {
        let disposals = Atomic<Int>(0)
        let value = try await bounded(.seconds(30)) { 42 } disposeOfLate: { _ in disposals.add(1, ordering: .relaxed) }
        #expect(value == 42)
        #expect(disposals.load(ordering: .relaxed) == 0)
    }
}
