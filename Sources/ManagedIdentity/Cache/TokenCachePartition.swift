import Foundation
import Synchronization

/// The in-memory tokens of one partition of a ``TokenCache``: what a backend's hooks load stored
/// tokens into, and read written ones from.
///
/// A backend gets the partition of each access in ``TokenCacheNotification/partition``. It replaces
/// the partition's entries with what it stored (``replaceEntries(_:version:)``), recording an opaque
/// ``loadedVersion`` of its own (a file's identity and modification time, a database generation) so
/// that the next access can skip reloading what has not changed. Entries of another partition, or
/// without a resource or token, are dropped when they are handed in: a backend cannot make the cache
/// serve another identity's token.
///
/// Backends that store one blob per partition (MSAL's pattern) can use ``exportDocument()`` and
/// ``importDocument(_:version:)``: a versioned JSON document in MSAL's cache schema.
public final class TokenCachePartition: Sendable {
    /// What the partition belongs to.
    public let descriptor: TokenCachePartitionDescriptor
    private let state: Mutex<State>
    /// Concurrent misses for one resource share one request.
    let inflight = SingleFlight<TokenCacheEntryKey, AccessToken>()

    private struct State {
        var entries: [TokenCacheEntryKey: TokenCacheEntry] = [:]
        var loadedVersion: (any Hashable & Sendable)?
    }

    init(descriptor: TokenCachePartitionDescriptor) {
        self.descriptor = descriptor
        self.state = Mutex(State())
    }

    /// The partition's key.
    public var key: TokenCachePartitionKey { descriptor.key }

    /// The partition's tokens.
    public var entries: [TokenCacheEntry] {
        state.withLock { Array($0.entries.values) }
    }

    /// The version the backend recorded when it last loaded or stored the partition, or `nil`.
    public var loadedVersion: (any Hashable & Sendable)? {
        state.withLock { $0.loadedVersion }
    }

    /// The recorded version, when it is of type `V`.
    @inlinable
    public func loadedVersion<V: Hashable & Sendable>(as type: V.Type) -> V? {
        loadedVersion as? V
    }

    /// Replaces the partition's tokens with what the backend stored, and records its version.
    /// - Returns: how many entries were dropped because they belong to another partition or are empty.
    @discardableResult
    public func replaceEntries(_ entries: [TokenCacheEntry], version: (any Hashable & Sendable)?) -> Int {
        var kept: [TokenCacheEntryKey: TokenCacheEntry] = [:]
        kept.reserveCapacity(entries.count)
        var dropped = 0
        for entry in entries {
            guard entry.partitionKey == descriptor.key, !entry.resource.isEmpty, !entry.accessToken.isEmpty else {
                dropped += 1
                continue
            }
            if let existing = kept[entry.key], TokenCacheRetention.storedWins(existing, over: entry) { continue }
            kept[entry.key] = entry
        }
        state.withLock { state in
            state.entries = kept
            state.loadedVersion = version
        }
        return dropped
    }

    /// Records that the stored copy, now at `version`, holds what memory holds.
    public func markLoaded(version: (any Hashable & Sendable)?) {
        state.withLock { $0.loadedVersion = version }
    }

    /// The partition as a versioned JSON document in MSAL's cache schema.
    public func exportDocument() -> [UInt8] {
        PartitionDocument.encode(descriptor: descriptor, entries: entries)
    }

    /// Replaces the partition with a document made by ``exportDocument()``.
    /// - Throws: ``TokenCacheSerializationError`` for a malformed document, one of an unknown format
    ///   version, or one of another partition; the partition is then unchanged.
    public func importDocument(_ bytes: [UInt8], version: (any Hashable & Sendable)? = nil) throws(TokenCacheSerializationError) {
        let decoded = try PartitionDocument.decode(bytes)
        guard decoded.partitionKey == descriptor.key else {
            throw TokenCacheSerializationError(
                kind: .partitionMismatch,
                message: "The document holds partition \(decoded.partitionKey), not \(descriptor.key).")
        }
        replaceEntries(decoded.entries, version: version)
    }

    // MARK: - For the accessor

    /// The entry for `entryKey`, re-checked against the partition and resource so that nothing a
    /// backend loaded can answer for another request.
    func lookup(_ entryKey: TokenCacheEntryKey) -> TokenCacheEntry? {
        let entry = state.withLock { $0.entries[entryKey] }
        guard let entry, entry.partitionKey == descriptor.key, entry.resource == entryKey.resource,
            entry.tokenType == entryKey.tokenType
        else { return nil }
        return entry
    }

    /// Stores a token under the retention rule.
    func store(_ entry: TokenCacheEntry, retention: TokenCacheRetention) {
        state.withLock { state in retention.apply(to: &state.entries, writing: entry) }
    }
}
