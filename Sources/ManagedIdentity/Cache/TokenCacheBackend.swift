/// A cache backend: the hooks the cache calls around every access, shaped like MSAL's
/// serialization callbacks (`BeforeAccess`, `BeforeWrite`, `AfterAccess`), plus
/// ``coordinateRefresh(_:_:)``, which lets processes that share storage send one request per token.
///
/// The cache keeps tokens in memory, one ``TokenCachePartition`` per identity. A backend persists
/// them: ``beforeAccess(_:)`` loads the stored partition into memory when it changed, and
/// ``afterAccess(_:)`` of a write stores ``TokenCacheNotification/writtenEntry``.
///
/// Stores that hold rows by key (a database, Redis, a directory of files) are easier to write as a
/// ``TokenCacheStorage``, which implements these hooks for them.
///
/// ## Sequences
/// Each flow calls the hooks in exactly this order (the conformance suite checks it):
///
/// | flow | hooks |
/// | --- | --- |
/// | hit | `beforeAccess`, `afterAccess` |
/// | miss | `beforeAccess`, `afterAccess`, then inside `coordinateRefresh`: `beforeAccess`, `afterAccess` (another process may have stored the token meanwhile), the request, `beforeAccess`, `beforeWrite`, `afterAccess` |
/// | miss whose request fails | the same up to the request; no write |
/// | force refresh | the request, then `beforeAccess`, `beforeWrite`, `afterAccess` |
/// | claims | `beforeAccess`, `afterAccess`, the request, `beforeAccess`, `beforeWrite`, `afterAccess` |
/// | background refresh (past `refresh_on`) | after the hit's pair, as a miss does from `coordinateRefresh` on |
///
/// Reads have `hasStateChanged == false`; the three hooks of a write have it `true`. Every
/// `beforeAccess` is followed by exactly one `afterAccess`, even when a hook or the work between them
/// throws, so a backend may lock in one and unlock in the other.
///
/// ## Implementation requirements
/// - **Merge, never overwrite.** Other processes (or other backend instances over the same store)
///   write the same partition concurrently. Under the store's own lock or transaction, apply
///   ``TokenCacheNotification/retention`` to the stored partition with the written entry
///   (``TokenCacheRetention/apply(to:writing:in:)``), store the result, and hand it back to memory
///   with ``TokenCachePartition/replaceEntries(_:version:)``. Exporting the in-memory partition in
///   `afterAccess` and storing it whole loses the tokens other writers stored since `beforeAccess`;
///   the conformance suite fails such a backend.
/// - **Be safe for concurrent calls.** Hooks of different requests run concurrently.
/// - **Do not block the calling thread.** Hooks run on Swift's cooperative thread pool; move file
///   syncs, database calls and lock waits to a thread pool (NIO's `NIOThreadPool`, for example).
/// - **Throw rather than guess.** A hook that throws is reported to ``TokenCache``'s failure handler
///   and logged, and the request goes on as a cache miss (for reads) or an unsaved write: it never
///   fails a token request. Never put a token in an error's text.
public protocol TokenCacheBackend: Sendable {
    /// Called before the cache reads the notification's partition: load what changed.
    func beforeAccess(_ notification: TokenCacheNotification) async throws
    /// Called after `beforeAccess`, before the cache stores a new token in the partition. The place
    /// to take a lock that `afterAccess` releases; does nothing by default.
    func beforeWrite(_ notification: TokenCacheNotification) async throws
    /// Called after the cache read or wrote the partition: on a write, store the written entry.
    func afterAccess(_ notification: TokenCacheNotification) async throws
    /// Runs `body`, which re-reads the cache and fetches a token from the endpoint if still needed,
    /// while no other process does so for the same partition and resource. Backends shared across
    /// processes implement it so that N processes starting at once send one request: the others wait
    /// (bounded by a timeout), then find the token in the cache. The default runs `body` at once.
    func coordinateRefresh<Result: Sendable>(
        _ notification: TokenCacheNotification, _ body: () async throws -> Result
    ) async throws -> Result
}

extension TokenCacheBackend {
    /// Does nothing.
    public func beforeWrite(_ notification: TokenCacheNotification) async throws {}

    /// Runs `body` at once.
    public func coordinateRefresh<Result: Sendable>(
        _ notification: TokenCacheNotification, _ body: () async throws -> Result
    ) async throws -> Result {
        try await body()
    }
}
