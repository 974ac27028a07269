import Foundation
import ManagedIdentityCacheConformance
import Synchronization
import Testing

@testable import ManagedIdentity

/// The conformance suite is itself tested: a correct storage over a shared store passes it, and the
/// same storage with any one mistake is refused with a message naming the broken property. When a
/// new mistake is found in the wild, add it here.
struct BrokenBackendTests {
    /// One mistake a backend author can make in a line or two.
    enum Mistake: String, CaseIterable, Sendable {
        case readReturnsNilAfterTheFirstLoad
        case removeDoesNothing
        case noRefreshLockOverASharedStore
        case tieOrderOfTheCapReversed
        case writeReturnsOnlyTheWrittenEntry
        case storedTokenWinsATie
        case versionIsTheNumberOfEntries
        case dropsRefreshOn
        case lowercasesTheResource
        case swallowsAWriteError
        case lockNotReleasedOnAThrow
        case versionsRestartAfterARemoval
        case newVersionOnEveryRead
        case lastWriterWins
        case ignoresTheRetentionRule
        case wrongPartitionKey

        /// The property whose refusal must name it.
        var property: String {
            switch self {
            case .readReturnsNilAfterTheFirstLoad, .versionIsTheNumberOfEntries: "writes reach other instances"
            case .removeDoesNothing, .versionsRestartAfterARemoval: "removal"
            case .noRefreshLockOverASharedStore: "one request per token across processes"
            case .tieOrderOfTheCapReversed: "retention on ties"
            case .writeReturnsOnlyTheWrittenEntry: "write returns the stored partition"
            case .storedTokenWinsATie: "newer write wins, ties to the write"
            case .dropsRefreshOn, .lowercasesTheResource, .swallowsAWriteError: "persistence across a restart"
            case .wrongPartitionKey: "isolation"
            case .lockNotReleasedOnAThrow: "refresh lock released when its body throws"
            case .newVersionOnEveryRead: "hits read nothing when nothing changed"
            case .lastWriterWins: "concurrent writers"
            case .ignoresTheRetentionRule: "retention"
            }
        }
    }

    /// Partitions by key with a store-wide generation, and a lock per token: what several processes share.
    final class SharedStore: Sendable {
        struct Stored {
            var generation: UInt64
            var entries: [TokenCacheEntry]
        }
        let partitions = Mutex<[String: Stored]>([:])
        let generation = Atomic<UInt64>(0)
        let locks = Mutex<Set<String>>([])
        /// How long each call takes, as a networked store's round trip.
        let latency: Duration

        init(latency: Duration = .zero) { self.latency = latency }

        func pause() async throws { if latency > .zero { try await Task.sleep(for: latency) } }
        func nextGeneration() -> UInt64 { generation.add(1, ordering: .relaxed).newValue }
    }

    /// A correct storage over ``SharedStore``, or the same with one mistake.
    final class Storage: TokenCacheStorage {
        let store: SharedStore
        let mistake: Mistake?
        /// Per instance, for the mistake of a read that answers only once.
        let loadedOnce = Mutex<Set<String>>([])

        init(store: SharedStore, mistake: Mistake?) {
            self.store = store
            self.mistake = mistake
        }

        func key(_ partition: TokenCachePartitionKey) -> String {
            // Two identities' partitions share a bucket when the key is cut short.
            mistake == .wrongPartitionKey ? String(partition.rawValue.prefix(4)) : partition.rawValue
        }

        func read(_ partition: TokenCachePartitionKey, version: inout UInt64?) async throws -> [TokenCacheEntry]? {
            try await store.pause()
            let stored = store.partitions.withLock { $0[key(partition)] }
            if mistake == .readReturnsNilAfterTheFirstLoad {
                let first = loadedOnce.withLock { $0.insert(partition.rawValue).inserted }
                if !first { return nil }
            }
            if mistake == .newVersionOnEveryRead {
                version = store.nextGeneration()
                return stored?.entries ?? []
            }
            let current: UInt64 =
                mistake == .versionIsTheNumberOfEntries ? UInt64(stored?.entries.count ?? 0) : stored?.generation ?? 0
            defer { version = current }
            return current == version ? nil : (stored?.entries ?? [])
        }

        func write(
            _ entry: TokenCacheEntry, in partition: TokenCachePartitionDescriptor, retention: TokenCacheRetention
        ) async throws -> (entries: [TokenCacheEntry], version: UInt64) {
            try await store.pause()
            var entry = entry
            switch mistake {
            case .dropsRefreshOn: entry.refreshOn = nil
            case .lowercasesTheResource: entry.resource = entry.resource.lowercased()
            default: break
            }
            if mistake == .swallowsAWriteError {
                // The store refused the write; the error was caught and the token reported as stored.
                return ([entry], store.generation.load(ordering: .relaxed))
            }
            let written = entry
            return store.partitions.withLock { partitions in
                let stored = partitions[key(partition.key)]?.entries ?? []
                var merged: [TokenCacheEntry]
                switch mistake {
                case .lastWriterWins:
                    merged = stored.filter { $0.key != written.key } + [written]
                case .storedTokenWinsATie:
                    if let existing = stored.first(where: { $0.key == written.key }), existing.cachedAt >= written.cachedAt {
                        merged = stored
                    } else {
                        merged = retention.apply(to: stored, writing: written, in: partition.key)
                    }
                case .ignoresTheRetentionRule:
                    merged = stored.filter { $0.key != written.key } + [written]
                    if stored.contains(where: { $0.key == written.key && $0.cachedAt > written.cachedAt }) { merged = stored }
                case .tieOrderOfTheCapReversed:
                    merged = Self.applyWithReversedTies(retention, stored, written)
                default:
                    merged = retention.apply(to: stored, writing: written, in: partition.key)
                }
                let generation = mistake == .versionsRestartAfterARemoval ? (partitions[key(partition.key)]?.generation ?? 0) + 1 : store.nextGeneration()
                partitions[key(partition.key)] = .init(generation: generation, entries: merged)
                let version = mistake == .versionIsTheNumberOfEntries ? UInt64(merged.count) : generation
                return (mistake == .writeReturnsOnlyTheWrittenEntry ? [written] : merged, version)
            }
        }

        func remove(_ keys: [TokenCacheEntryKey], from partition: TokenCachePartitionKey) async throws {
            try await store.pause()
            guard mistake != .removeDoesNothing else { return }
            let removed = Set(keys)
            store.partitions.withLock { partitions in
                guard var stored = partitions[key(partition)] else { return }
                stored.entries.removeAll { removed.contains($0.key) }
                if mistake == .versionsRestartAfterARemoval, stored.entries.isEmpty {
                    // The row goes, and with it the partition's counter.
                    partitions[key(partition)] = nil
                } else {
                    stored.generation = store.nextGeneration()
                    partitions[key(partition)] = stored
                }
            }
        }

        func withRefreshLock<Result: Sendable>(
            partition: TokenCachePartitionKey, resource: String, _ body: () async throws -> Result
        ) async throws -> Result {
            guard mistake != .noRefreshLockOverASharedStore else { return try await body() }
            let name = partition.rawValue + "\n" + resource
            let deadline = ContinuousClock.now + .seconds(10)
            while !store.locks.withLock({ $0.insert(name).inserted }), ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(1))
            }
            if mistake == .lockNotReleasedOnAThrow {
                let result = try await body()
                store.locks.withLock { _ = $0.remove(name) }
                return result
            }
            defer { store.locks.withLock { _ = $0.remove(name) } }
            return try await body()
        }

        /// The cap with ties broken the other way round.
        static func applyWithReversedTies(_ retention: TokenCacheRetention, _ stored: [TokenCacheEntry], _ written: TokenCacheEntry)
            -> [TokenCacheEntry]
        {
            var kept = retention.apply(
                to: stored, writing: written, in: written.partitionKey)
            let all = (stored.filter { $0.key != written.key && $0.expiresOn > retention.now } + [written])
            guard all.count > retention.maximumEntriesPerPartition else { return kept }
            let others = all.filter { $0.key != written.key }.sorted { lhs, rhs in
                lhs.expiresOn != rhs.expiresOn ? lhs.expiresOn > rhs.expiresOn : lhs.resource.utf8.lexicographicallyPrecedes(rhs.resource.utf8)
            }
            kept = [written] + others.prefix(max(retention.maximumEntriesPerPartition, 1) - 1)
            return kept
        }
    }

    /// A backend of hooks over a versioned blob store that loads each changed blob without
    /// recording its version: the mistake of forgetting `markLoaded` / the `version:` argument.
    struct ForgetfulHookBackend: TokenCacheBackend {
        let store: SharedStore

        func beforeAccess(_ notification: TokenCacheNotification) async throws {
            let stored = store.partitions.withLock { $0[notification.partitionKey.rawValue] }
            guard let stored, stored.generation != notification.partition.loadedVersion(as: UInt64.self) else { return }
            notification.partition.replaceEntries(stored.entries, version: nil)
        }

        func afterAccess(_ notification: TokenCacheNotification) async throws {
            guard notification.hasStateChanged, let written = notification.writtenEntry else { return }
            let merged = store.partitions.withLock { partitions -> [TokenCacheEntry] in
                let key = notification.partitionKey.rawValue
                let merged = notification.retention.apply(to: partitions[key]?.entries ?? [], writing: written, in: notification.partitionKey)
                partitions[key] = .init(generation: store.nextGeneration(), entries: merged)
                return merged
            }
            notification.partition.replaceEntries(merged, version: nil)
        }
    }

    @Test func theCorrectStoragePassesEveryCheck() async throws {
        let store = SharedStore()
        let verdict = try await TokenCacheConformance { Storage(store: store, mistake: nil) }.run(interleavings: 500)
        #expect(verdict.notChecked.isEmpty, "\(verdict)")
        #expect(verdict.checked.count == 18)
    }

    /// A slow store (100 µs a call, a networked store's round trip) raises no false failure.
    @Test func theCorrectStorageOverASlowStorePassesEveryCheck() async throws {
        let store = SharedStore(latency: .microseconds(100))
        try await TokenCacheConformance { Storage(store: store, mistake: nil) }.run(interleavings: 300)
    }

    @Test(arguments: Mistake.allCases)
    func aStorageWithOneMistakeIsRefusedNamingTheProperty(_ mistake: Mistake) async throws {
        let store = SharedStore()
        do {
            try await TokenCacheConformance { Storage(store: store, mistake: mistake) }.run(interleavings: 300)
            Issue.record("\(mistake) passed the conformance suite")
        } catch let failure as ConformanceFailure {
            let refusals = failure.message.split(separator: "\n")
            #expect(
                refusals.contains { $0.hasPrefix(mistake.property + ": ") && $0.contains("Fix: ") },
                "\(mistake) was not refused as \"\(mistake.property)\" with a fix: \(failure.message)")
            #expect(!failure.message.contains("eyJ"), "a refusal holds a token")
        }
    }

    @Test func aHookBackendThatForgetsToRecordItsVersionIsRefusedWithTheCostOfAHit() async throws {
        let store = SharedStore()
        do {
            try await TokenCacheConformance { ForgetfulHookBackend(store: store) }.run(interleavings: 300)
            Issue.record("a backend that reads the whole partition on every hit passed")
        } catch let failure as ConformanceFailure {
            let refusal = failure.message.split(separator: "\n").first { $0.hasPrefix("hits read nothing when nothing changed: ") }
            #expect(refusal?.contains("µs through this backend against") == true, "\(failure.message)")
            #expect(refusal?.contains("markLoaded(version:)") == true)
        }
    }

    /// A store used by one process only says so, and the verdict says what was not checked.
    @Test func aStorageForOneProcessIsNotAskedForALockAndTheVerdictSaysSo() async throws {
        let store = SharedStore()
        let verdict = try await TokenCacheConformance(sharing: .withinOneProcess) {
            Storage(store: store, mistake: .noRefreshLockOverASharedStore)
        }.run(interleavings: 300)
        #expect(verdict.notChecked.map(\.property) == ["one request per token across processes"])
        #expect(verdict.description.contains("not checked: one request per token across processes: the suite was created with sharing: .withinOneProcess"))
    }
}
