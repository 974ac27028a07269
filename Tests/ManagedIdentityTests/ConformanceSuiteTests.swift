import Foundation
import ManagedIdentityCacheConformance
import Synchronization
import Testing

@testable import ManagedIdentity

/// The conformance suite fails backends that break the contract, with a message that says what to do.
struct ConformanceSuiteTests {
    /// One blob per partition, shared by every backend instance made over it (one store, many processes).
    final class BlobStore: Sendable {
        let blobs = Mutex<[TokenCachePartitionKey: [UInt8]]>([:])
    }

    /// The obvious MSAL-style backend: import the stored blob before each access, export the
    /// in-memory partition after each write. It loses the writes other processes made meanwhile.
    struct NaiveBlobBackend: TokenCacheBackend {
        let store: BlobStore
        func beforeAccess(_ notification: TokenCacheNotification) async throws {
            if let blob = store.blobs.withLock({ $0[notification.partitionKey] }) {
                try notification.partition.importDocument(blob)
            }
        }
        func afterAccess(_ notification: TokenCacheNotification) async throws {
            guard notification.hasStateChanged else { return }
            let blob = notification.partition.exportDocument()
            store.blobs.withLock { $0[notification.partitionKey] = blob }
        }
    }

    /// Rows by key, with a mistake in how a write is applied.
    final class FlawedStorage: TokenCacheStorage {
        enum Flaw { case lastWriterWins, evictsByExpiryIncludingTheWrittenToken }
        let flaw: Flaw
        let rows = Mutex<(generation: UInt64, partitions: [TokenCachePartitionKey: [TokenCacheEntry]])>((0, [:]))

        init(_ flaw: Flaw) { self.flaw = flaw }

        func read(_ partition: TokenCachePartitionKey, version: inout UInt64?) async throws -> [TokenCacheEntry]? {
            let (generation, entries) = rows.withLock { ($0.generation, $0.partitions[partition] ?? []) }
            defer { version = generation }
            return version == generation ? nil : entries
        }

        func write(
            _ entry: TokenCacheEntry, in partition: TokenCachePartitionDescriptor, retention: TokenCacheRetention
        ) async throws -> (entries: [TokenCacheEntry], version: UInt64) {
            rows.withLock { rows in
                var entries = (rows.partitions[partition.key] ?? []).filter { $0.key != entry.key }
                switch flaw {
                case .lastWriterWins:
                    entries.append(entry)
                    entries = retention.apply(to: entries, writing: nil, in: partition.key)
                case .evictsByExpiryIncludingTheWrittenToken:
                    entries.append(entry)
                    entries = entries.filter { $0.expiresOn > retention.now }.sorted { $0.expiresOn > $1.expiresOn }
                    entries = Array(entries.prefix(retention.maximumEntriesPerPartition))
                }
                rows.generation += 1
                rows.partitions[partition.key] = entries
                return (entries, rows.generation)
            }
        }

        func remove(_ keys: [TokenCacheEntryKey], from partition: TokenCachePartitionKey) async throws {}
    }

    @Test func theNaiveBlobBackendFailsTheConcurrentWritersCheckWithAnExplanation() async throws {
        let store = BlobStore()
        await #expect {
            try await TokenCacheConformance { NaiveBlobBackend(store: store) }.checkConcurrentWriters()
        } throws: { error in
            let text = "\(error)"
            return text.contains("lost") && text.contains("merge the written entry") && text.contains("TokenCacheStorage")
        }
    }

    @Test func aStorageWhereTheLastWriterWinsFailsTheNewerWinsCheck() async throws {
        let storage = FlawedStorage(.lastWriterWins)
        await #expect {
            try await TokenCacheConformance { storage }.checkConcurrentWriters()
        } throws: { "\($0)".contains("an older token of a resource, stored after a newer one, replaced it") }
    }

    @Test func aStorageThatEvictsTheTokenJustWrittenFailsTheRetentionCheck() async throws {
        let storage = FlawedStorage(.evictsByExpiryIncludingTheWrittenToken)
        await #expect {
            try await TokenCacheConformance { storage }.checkRetention()
        } throws: { "\($0)".contains("evicted") || "\($0)".contains("TokenCacheRetention.apply") }
    }

    @Test func theShippedInMemoryStoragePassesEveryNewCheck() async throws {
        let storage = InMemoryTokenCacheBackend()
        let suite = TokenCacheConformance { storage }
        try await suite.checkConcurrentWriters()
        try await suite.checkRetention()
        try await suite.checkForeignEntriesAreDropped()
        try await suite.checkFailingHooksAreReported()
    }
}
