import Foundation
import Testing

@testable import ManagedIdentity

/// The one retention rule, without any backend.
struct TokenCacheRetentionTests {
    let now = Date(timeIntervalSince1970: 1_767_225_600)
    let key = TokenCachePartitionKey(source: .imds, endpoint: "http://e", identity: .systemAssigned, hostDiscriminator: "h")

    func entry(_ resource: String, expiresIn: TimeInterval, cachedAgo: TimeInterval = 0, token: String? = nil) -> TokenCacheEntry {
        TokenCacheEntry(
            partitionKey: key, resource: resource, accessToken: token ?? "t-\(resource)", expiresOn: now.addingTimeInterval(expiresIn),
            cachedAt: now.addingTimeInterval(-cachedAgo))
    }

    func resources(_ entries: [TokenCacheEntry]) -> Set<String> { Set(entries.map(\.resource)) }

    @Test func aNewerStoredTokenWinsOverAnOlderWrite() {
        let rule = TokenCacheRetention(now: now, maximumEntriesPerPartition: 10)
        let stored = entry("R", expiresIn: 3600, cachedAgo: 0, token: "newer")
        let written = entry("R", expiresIn: 3600, cachedAgo: 5, token: "older")
        #expect(rule.apply(to: [stored], writing: written).map(\.accessToken) == ["newer"])
        #expect(rule.apply(to: [written], writing: stored).map(\.accessToken) == ["newer"])
        // Equal times: the write wins.
        let same = entry("R", expiresIn: 3600, cachedAgo: 5, token: "same-time")
        #expect(rule.apply(to: [written], writing: same).map(\.accessToken) == ["same-time"])
    }

    @Test func writesPurgeExpiredTokensButNotTheOneWritten() {
        let rule = TokenCacheRetention(now: now, maximumEntriesPerPartition: 10)
        let stored = [entry("expired", expiresIn: -1), entry("at-now", expiresIn: 0), entry("valid", expiresIn: 1)]
        let written = entry("written-expired", expiresIn: -10)
        #expect(resources(rule.apply(to: stored, writing: written)) == ["valid", "written-expired"])
        #expect(resources(rule.apply(to: stored, writing: nil, in: key)) == ["valid"])
    }

    @Test func pastTheCapTheTokensClosestToExpiryGoNeverTheOneWritten() {
        let rule = TokenCacheRetention(now: now, maximumEntriesPerPartition: 3)
        let stored = [entry("a", expiresIn: 3600), entry("b", expiresIn: 7200), entry("c", expiresIn: 1800), entry("d", expiresIn: 5400)]
        #expect(resources(rule.apply(to: stored, writing: entry("e", expiresIn: 600))) == ["b", "d", "e"])
        #expect(resources(rule.apply(to: stored, writing: entry("e", expiresIn: 9000))) == ["b", "d", "e"])
        #expect(resources(TokenCacheRetention(now: now, maximumEntriesPerPartition: 0).apply(to: stored, writing: entry("e", expiresIn: 1))) == ["e"])
    }

    @Test func tiesAreBrokenByResourceBytesSoEveryBackendAgrees() {
        let rule = TokenCacheRetention(now: now, maximumEntriesPerPartition: 2)
        let stored = [entry("https://b", expiresIn: 3600), entry("https://a", expiresIn: 3600), entry("https://é", expiresIn: 3600)]
        // The smaller resource (as UTF-8 bytes) goes first: "https://a" < "https://b" < "https://é".
        #expect(resources(rule.apply(to: stored, writing: entry("z", expiresIn: 10))) == ["https://é", "z"])
    }

    @Test func entriesOfOtherPartitionsAreDropped() {
        let rule = TokenCacheRetention(now: now, maximumEntriesPerPartition: 10)
        var foreign = entry("foreign", expiresIn: 3600)
        foreign.partitionKey = TokenCachePartitionKey(source: .imds, endpoint: "http://e", identity: .clientID("x"), hostDiscriminator: "h")
        #expect(resources(rule.apply(to: [foreign, entry("mine", expiresIn: 3600)], writing: entry("w", expiresIn: 3600))) == ["mine", "w"])
    }
}
