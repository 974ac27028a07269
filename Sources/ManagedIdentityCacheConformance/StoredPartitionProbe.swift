import ManagedIdentity

/// Looks into a backend's store from outside, for messages and for checks that need to see what is
/// stored: through ``TokenCacheStorage`` when the backend is one, else through
/// ``InspectableTokenCacheBackend``. Never returns a token.
enum StoredPartitionProbe {
    /// The stored entries of a partition (`nil` when the backend offers no way to read them).
    static func entries(_ backend: any TokenCacheBackend, partition: TokenCachePartitionKey) async -> [TokenCacheEntry]? {
        if let storage = backend as? any TokenCacheStorage {
            return await read(storage, partition)
        }
        return nil
    }

    /// "2 tokens: resource R (partition mi1-…), …", or `nil` when nothing can be seen.
    static func describe(_ backend: any TokenCacheBackend, partition: TokenCachePartitionKey) async -> String? {
        if let entries = await entries(backend, partition: partition) {
            guard !entries.isEmpty else { return "no token for this partition" }
            let described = entries.map { entry in
                entry.partitionKey == partition
                    ? "\(entry.resource) (\(entry.tokenType))"
                    : "\(entry.resource) (\(entry.tokenType)) under another partition key, \(entry.partitionKey.rawValue.prefix(12))…"
            }
            return "\(entries.count) token(s): " + described.joined(separator: ", ")
        }
        if let inspectable = backend as? any InspectableTokenCacheBackend,
            let listed = try? await inspectable.storedPartitions().first(where: { $0.descriptor.key == partition })
        {
            return "\(listed.entries.count) token(s): " + listed.entries.map { "\($0.resource) (\($0.tokenType))" }.joined(separator: ", ")
        }
        return nil
    }

    /// Two reads in a row with the version the first returned: whether the second returned entries
    /// although nothing changed in between.
    static func rereadsUnchanged(_ backend: any TokenCacheBackend, partition: TokenCachePartitionKey) async throws -> Bool? {
        guard let storage = backend as? any TokenCacheStorage else { return nil }
        return try await rereads(storage, partition)
    }

    private static func read<Storage: TokenCacheStorage>(_ storage: Storage, _ partition: TokenCachePartitionKey) async -> [TokenCacheEntry]? {
        var version: Storage.Version?
        return try? await storage.read(partition, version: &version)
    }

    private static func rereads<Storage: TokenCacheStorage>(_ storage: Storage, _ partition: TokenCachePartitionKey) async throws -> Bool {
        var version: Storage.Version?
        _ = try await storage.read(partition, version: &version)
        let held = version
        var again = held
        let second = try await storage.read(partition, version: &again)
        return second != nil
    }
}
