import ManagedIdentity
import Testing

@testable import ManagedIdentityPostgresCache

/// The change tracker's transitions, without a socket: when a reader may skip the database, and
/// which version a writer records after its own write.
struct PostgresChangeTrackerTests {
    let partition = TokenCachePartitionKey(source: .imds, endpoint: "http://e", identity: .systemAssigned, hostDiscriminator: "h")
    let other = TokenCachePartitionKey(source: .imds, endpoint: "http://e", identity: .clientID("c"), hostDiscriminator: "h")

    @Test func withoutAListenerEveryReadGoesToTheDatabase() {
        let tracker = PostgresChangeTracker()
        #expect(!tracker.isUnchanged(partition, since: tracker.version(of: partition)))
    }

    @Test func withTheListenerUpAReaderWithTheCurrentVersionSkipsTheDatabase() {
        var tracker = PostgresChangeTracker()
        tracker.listenerStarted()
        let held = tracker.version(of: partition)
        #expect(tracker.isUnchanged(partition, since: held))
        #expect(!tracker.isUnchanged(partition, since: nil), "a reader that never read must read")
    }

    @Test func anAnnouncedChangeMakesTheNextReadGoToTheDatabaseForThatPartitionOnly() {
        var tracker = PostgresChangeTracker()
        tracker.listenerStarted()
        let held = tracker.version(of: partition)
        let heldOther = tracker.version(of: other)
        tracker.received(partition)
        #expect(!tracker.isUnchanged(partition, since: held))
        #expect(tracker.isUnchanged(other, since: heldOther))
    }

    @Test func aListenerRestartInvalidatesEveryVersionHeld() {
        var tracker = PostgresChangeTracker()
        tracker.listenerStarted()
        let held = tracker.version(of: partition)
        tracker.listenerLost()
        #expect(!tracker.isUnchanged(partition, since: held), "nothing is known while nobody listens")
        tracker.listenerStarted()
        #expect(!tracker.isUnchanged(partition, since: held), "what changed while nobody listened is unknown")
        #expect(tracker.isUnchanged(partition, since: tracker.version(of: partition)))
    }

    @Test func anInvalidationForcesOneRead() {
        var tracker = PostgresChangeTracker()
        tracker.listenerStarted()
        let held = tracker.version(of: partition)
        tracker.invalidate(partition)
        #expect(!tracker.isUnchanged(partition, since: held))
    }

    @Test func anOwnWriteWithNothingElseInBetweenNeedsNoReadAfterItsNotificationArrives() {
        var tracker = PostgresChangeTracker()
        tracker.listenerStarted()
        let before = tracker.version(of: partition)
        let after = tracker.ownWrite(partition, since: before)
        #expect(after != before, "the version moves with the write")
        #expect(tracker.isUnchanged(partition, since: after))
    }

    @Test func anOwnWriteAfterAnotherWritersChangeKeepsTheOlderVersionSoTheNextReadLooks() {
        var tracker = PostgresChangeTracker()
        tracker.listenerStarted()
        let before = tracker.version(of: partition)
        tracker.received(partition)  // another writer's rows, which this write may not have seen
        let after = tracker.ownWrite(partition, since: before)
        #expect(after == before)
        #expect(!tracker.isUnchanged(partition, since: after))
    }

    @Test func anOwnWriteAcrossAListenerRestartKeepsTheOlderVersion() {
        var tracker = PostgresChangeTracker()
        tracker.listenerStarted()
        let before = tracker.version(of: partition)
        tracker.listenerLost()
        tracker.listenerStarted()
        let after = tracker.ownWrite(partition, since: before)
        #expect(after == before)
        #expect(!tracker.isUnchanged(partition, since: after))
    }

    @Test func versionsNeverRepeatAcrossRestartsAndChanges() {
        var tracker = PostgresChangeTracker()
        var seen: Set<PostgresChangeTracker.Version> = [tracker.version(of: partition)]
        for step in 0..<200 {
            switch step % 4 {
            case 0: tracker.listenerStarted()
            case 1: tracker.received(partition)
            case 2: _ = tracker.ownWrite(partition, since: tracker.version(of: partition))
            default: tracker.listenerLost()
            }
            let version = tracker.version(of: partition)
            #expect(seen.insert(version).inserted, "version repeated at step \(step)")
        }
    }
}
