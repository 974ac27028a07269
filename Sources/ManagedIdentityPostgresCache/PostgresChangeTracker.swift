import ManagedIdentity

/// What this host knows of changes to the database, as a value: whether the listener is up, its
/// epoch (a new one each time it starts or stops, since what changed while nobody listened is
/// unknown), and per partition how many changes other writers announced. Its transitions are tested
/// without a socket (`PostgresChangeTrackerTests`); the backend holds it under a lock and feeds it
/// what the listener hears.
struct PostgresChangeTracker: Sendable, Equatable {
    typealias Version = PostgresTokenCacheBackend.Version

    private(set) var listening = false
    private(set) var epoch: UInt64 = 1
    private var generations: [TokenCachePartitionKey: UInt64] = [:]

    /// LISTEN is in place: what changed while nobody listened is unknown, so everything counts as changed.
    mutating func listenerStarted() {
        listening = true
        epoch &+= 1
    }

    /// The listener is gone: reads go to the database until it is back.
    mutating func listenerLost() {
        listening = false
        epoch &+= 1
    }

    /// Another writer announced a change of `partition`.
    mutating func received(_ partition: TokenCachePartitionKey) {
        generations[partition, default: 0] &+= 1
    }

    /// Forces the next read of `partition` to the database (a lock holder before us may have
    /// committed, its notification still on the way).
    mutating func invalidate(_ partition: TokenCachePartitionKey) {
        generations[partition, default: 0] &+= 1
    }

    /// The partition's version now.
    func version(of partition: TokenCachePartitionKey) -> Version {
        Version(epoch: epoch, generation: generations[partition] ?? 0)
    }

    /// Whether a reader holding `held` can skip the database: the listener is up and nothing was
    /// announced since.
    func isUnchanged(_ partition: TokenCachePartitionKey, since held: Version?) -> Bool {
        Self.isUnchanged(version(of: partition), listening: listening, since: held)
    }

    /// The same, from a version already looked up: the hit path hashes the partition key once.
    static func isUnchanged(_ current: Version, listening: Bool, since held: Version?) -> Bool {
        listening && held == current
    }

    /// The version a writer records after its own write (which the listener will also announce): one
    /// more change, unless another writer's change or a listener restart came since `before`, whose
    /// rows the write may not have seen; then `before`, so the next read looks again.
    mutating func ownWrite(_ partition: TokenCachePartitionKey, since before: Version) -> Version {
        let generation = (generations[partition] ?? 0) &+ 1
        generations[partition] = generation
        guard epoch == before.epoch, generation == before.generation &+ 1 else { return before }
        return Version(epoch: epoch, generation: generation)
    }
}
