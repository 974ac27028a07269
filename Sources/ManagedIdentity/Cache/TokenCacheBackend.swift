import Foundation

/// A cache backend: the hooks the client calls around every cache access, shaped like MSAL's
/// serialization callbacks (`BeforeAccess`, `BeforeWrite`, `AfterAccess`).
///
/// The client keeps tokens in a ``TokenCache`` in memory. A backend persists it: in
/// ``beforeAccess(_:)`` it loads the notification's partition when its stored copy changed (through
/// ``TokenCacheNotification/serializer``), and in ``afterAccess(_:)``, when
/// ``TokenCacheNotification/hasStateChanged`` is true, it stores the partition (or just
/// ``TokenCacheNotification/writtenEntry``).
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
/// Hooks of different requests may run concurrently; a backend must be safe for that. A hook that
/// throws is logged as a warning and treated as a cache miss (for reads) or an unsaved write: it
/// never fails the token request.
public protocol TokenCacheBackend: Sendable {
    /// Called before the client reads the notification's partition.
    func beforeAccess(_ notification: TokenCacheNotification) async throws
    /// Called after `beforeAccess`, before the client stores a new token in the partition.
    func beforeWrite(_ notification: TokenCacheNotification) async throws
    /// Called after the client read or wrote the partition.
    func afterAccess(_ notification: TokenCacheNotification) async throws
    /// Runs `body`, which fetches a token from the endpoint, while no other process does so for the
    /// same partition and resource. Backends shared across processes implement it so that N processes
    /// starting at once send one request: the others wait (bounded), then find the token in the cache.
    /// The default runs `body` at once.
    func coordinateRefresh<Result: Sendable>(
        _ notification: TokenCacheNotification, _ body: () async throws -> Result
    ) async throws -> Result
}

extension TokenCacheBackend {
    /// Does nothing by default.
    public func beforeWrite(_ notification: TokenCacheNotification) async throws {}

    /// Runs `body` at once by default.
    public func coordinateRefresh<Result: Sendable>(
        _ notification: TokenCacheNotification, _ body: () async throws -> Result
    ) async throws -> Result {
        try await body()
    }
}

/// What a backend is told about one cache access.
public struct TokenCacheNotification: Sendable {
    /// The partition accessed. Never empty.
    public let partitionKey: TokenCachePartitionKey
    /// The managed identity source of the partition.
    public let source: ManagedIdentitySource
    /// The identity whose partition it is.
    public let identity: ManagedIdentityID
    /// The resource the request is for.
    public let resource: String
    /// True on the hooks of a write.
    public let hasStateChanged: Bool
    /// Whether the in-memory partition holds a token valid beyond the expiry margin; a backend may
    /// delete its stored copy when this is false after a write.
    public let hasTokens: Bool
    /// When the last token of the partition expires: a good expiry for the stored copy.
    public let suggestedCacheExpiry: Date?
    /// The request's correlation id.
    public var correlationID: String { correlation.string }
    let correlation: CorrelationID
    /// The token this write stored (on the hooks of a write).
    public let writtenEntry: TokenCacheEntry?
    /// The entries this write removed because they expired or exceeded the partition cap.
    public let removedEntries: [TokenCacheEntryKey]
    /// Exports and imports the in-memory copy of this one partition.
    public let serializer: TokenCachePartitionSerializer
}

/// An opaque version a backend attaches to the partition it loaded (a file's identity and
/// modification time, a database generation), so it can skip reloading what has not changed.
public struct TokenCacheVersion: Hashable, Sendable {
    /// The version's four components; their meaning is the backend's.
    public var values: (UInt64, UInt64, UInt64, UInt64)

    /// Creates a version from up to four numbers.
    public init(_ a: UInt64, _ b: UInt64 = 0, _ c: UInt64 = 0, _ d: UInt64 = 0) {
        values = (a, b, c, d)
    }

    public static func == (lhs: TokenCacheVersion, rhs: TokenCacheVersion) -> Bool {
        lhs.values == rhs.values
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(values.0)
        hasher.combine(values.1)
        hasher.combine(values.2)
        hasher.combine(values.3)
    }
}
