import Foundation
import ManagedIdentity

/// What this backend needs of a store: values by key, an atomic compare-and-set on a version
/// (Redis `WATCH`/`MULTI`, etcd's mod revision, a version column in a database row), and a lock
/// with a lease (Redis `SET key owner NX PX lease`).
public protocol VersionedKeyValueStore: Sendable {
    /// The value of a key and its version, or `nil` when the key holds nothing. Versions are 1 or
    /// more and never repeat for a key, even after it is deleted and written again.
    func get(_ key: String) async throws -> (value: [UInt8], version: UInt64)?
    /// Stores `value` if the key's version is still `expected` (`nil`: the key must hold nothing).
    /// - Returns: the new version, or `nil` when another writer changed the key first.
    func set(_ key: String, _ value: [UInt8], ifVersion expected: UInt64?) async throws -> UInt64?
    /// Takes `key` for `owner` unless another owner holds it; the store frees it when `lease` ends
    /// by its own clock, so a process that dies holding it holds it no longer.
    func acquire(_ key: String, owner: String, lease: Duration) async throws -> Bool
    /// Frees `key` if `owner` still holds it.
    func release(_ key: String, owner: String) async throws
}

/// A token cache backend over any versioned key-value store: one value per partition, holding its
/// tokens as JSON. Writes merge one token into what is stored and retry when another writer got
/// there first, so concurrent processes lose nothing.
public struct KeyValueTokenCacheStorage<Store: VersionedKeyValueStore>: TokenCacheStorage {
    public let store: Store
    public let prefix: String

    public init(store: Store, prefix: String = "managed-identity/") {
        self.store = store
        self.prefix = prefix
    }

    /// Partition keys are hashes: safe in any key space, and never user text.
    private func key(_ partition: TokenCachePartitionKey) -> String { prefix + partition.rawValue }

    /// The store's version tells whether anything changed; 0 stands for "nothing stored".
    public func read(_ partition: TokenCachePartitionKey, version: inout UInt64?) async throws -> [TokenCacheEntry]? {
        guard let stored = try await store.get(key(partition)) else {
            defer { version = 0 }
            return version == 0 ? nil : []
        }
        if stored.version == version { return nil }
        version = stored.version
        return try decode(stored.value)
    }

    /// Merges one token into the stored partition under the cache's retention rule.
    public func write(
        _ entry: TokenCacheEntry, in partition: TokenCachePartitionDescriptor, retention: TokenCacheRetention
    ) async throws -> (entries: [TokenCacheEntry], version: UInt64) {
        while true {
            let stored = try await store.get(key(partition.key))
            let merged = retention.apply(to: try stored.map { try decode($0.value) } ?? [], writing: entry, in: partition.key)
            if let version = try await store.set(key(partition.key), try encode(merged), ifVersion: stored?.version) {
                return (merged, version)
            }
            // Another process wrote the partition since the read: merge into its version instead.
        }
    }

    /// Removes tokens, with the same compare-and-set.
    public func remove(_ keys: [TokenCacheEntryKey], from partition: TokenCachePartitionKey) async throws {
        let removed = Set(keys)
        while true {
            guard let stored = try await store.get(key(partition)) else { return }
            let kept = try decode(stored.value).filter { !removed.contains($0.key) }
            if try await store.set(key(partition), try encode(kept), ifVersion: stored.version) != nil { return }
        }
    }

    /// Processes take turns on one token: the first fetches, the others wait (10 s at most, by this
    /// process's clock) and then find its token. The lease (30 s) outlasts a fetch with its retries.
    public func withRefreshLock<Result: Sendable>(
        partition: TokenCachePartitionKey, resource: String, _ body: () async throws -> Result
    ) async throws -> Result {
        // The resource is user text: encoded, it is safe in any key space.
        let lock = prefix + "lock/" + partition.rawValue + "/" + Data(resource.utf8).base64EncodedString()
        let owner = UUID().uuidString
        let deadline = ContinuousClock.now + .seconds(10)
        var held = try await store.acquire(lock, owner: owner, lease: .seconds(30))
        while !held, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
            held = try await store.acquire(lock, owner: owner, lease: .seconds(30))
        }
        do {
            let result = try await body()
            if held { try? await store.release(lock, owner: owner) }
            return result
        } catch {
            if held { try? await store.release(lock, owner: owner) }
            throw error
        }
    }

    private func decode(_ bytes: [UInt8]) throws -> [TokenCacheEntry] {
        try JSONDecoder().decode([TokenCacheEntry].self, from: Data(bytes))
    }

    private func encode(_ entries: [TokenCacheEntry]) throws -> [UInt8] {
        Array(try JSONEncoder().encode(entries))
    }
}
