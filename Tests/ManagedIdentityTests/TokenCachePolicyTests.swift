import Foundation
import Testing

@testable import ManagedIdentity

/// What a request gets, as a table: entry, time, margin and kind of request in; action out.
struct TokenCachePolicyTests {
    static let now = Date(timeIntervalSince1970: 1_767_225_600)
    static let policy = TokenCachePolicy(margin: 300)

    static func entry(expiresIn: TimeInterval, refreshIn: TimeInterval? = nil) -> TokenCacheEntry {
        let key = TokenCachePartitionKey(source: .imds, endpoint: "http://e", identity: .systemAssigned, hostDiscriminator: "h")
        return TokenCacheEntry(
            partitionKey: key, resource: "R", accessToken: "T", expiresOn: now.addingTimeInterval(expiresIn),
            refreshOn: refreshIn.map { now.addingTimeInterval($0) }, cachedAt: now.addingTimeInterval(-60))
    }

    typealias Row = (String, TokenCacheEntry?, TokenCachePolicy.Request, TokenCachePolicy.Action)

    static let rows: [Row] = {
        let valid = entry(expiresIn: 3600)
        let atMargin = entry(expiresIn: 300)
        let pastRefresh = entry(expiresIn: 3600, refreshIn: -1)
        let atRefresh = entry(expiresIn: 3600, refreshIn: 0)
        let beforeRefresh = entry(expiresIn: 3600, refreshIn: 1)
        let absurd = entry(expiresIn: 315_360_001)
        return [
            ("nothing cached", nil, .normal, .fetch(.noCachedAccessToken, revoking: nil)),
            ("valid beyond the margin", valid, .normal, .serve),
            ("301 s left", entry(expiresIn: 301), .normal, .serve),
            ("exactly the margin left", atMargin, .normal, .fetch(.expired, revoking: nil)),
            ("expired", entry(expiresIn: -1), .normal, .fetch(.expired, revoking: nil)),
            ("valid for more than 10 years", absurd, .normal, .fetch(.expired, revoking: nil)),
            ("past refresh_on", pastRefresh, .normal, .serveAndRefreshInBackground),
            ("at refresh_on", atRefresh, .normal, .serveAndRefreshInBackground),
            ("before refresh_on", beforeRefresh, .normal, .serve),
            ("force refresh, valid token", valid, .forceRefresh, .fetch(.forceRefreshOrClaims, revoking: nil)),
            ("force refresh, nothing", nil, .forceRefresh, .fetch(.forceRefreshOrClaims, revoking: nil)),
            ("claims, valid token", valid, .claims, .fetch(.forceRefreshOrClaims, revoking: valid)),
            ("claims, token in the margin", atMargin, .claims, .fetch(.forceRefreshOrClaims, revoking: nil)),
            ("claims, nothing", nil, .claims, .fetch(.forceRefreshOrClaims, revoking: nil)),
            ("background, still past refresh_on", pastRefresh, .backgroundRefresh, .fetch(.proactivelyRefreshed, revoking: nil)),
            ("background, refreshed meanwhile", beforeRefresh, .backgroundRefresh, .serve),
            ("background, no refresh_on", valid, .backgroundRefresh, .serve),
            ("background, expired meanwhile", entry(expiresIn: 10), .backgroundRefresh, .fetch(.proactivelyRefreshed, revoking: nil)),
            ("background, gone", nil, .backgroundRefresh, .fetch(.proactivelyRefreshed, revoking: nil)),
        ]
    }()

    @Test(arguments: rows.indices)
    func decision(row: Int) {
        let (label, entry, request, expected) = Self.rows[row]
        #expect(Self.policy.decide(entry, now: Self.now, request: request) == expected, "\(label)")
    }

    @Test func theMarginIsTheCallersOwn() {
        let entry = Self.entry(expiresIn: 100)
        #expect(TokenCachePolicy(margin: 60).decide(entry, now: Self.now, request: .normal) == .serve)
        #expect(TokenCachePolicy(margin: 100).decide(entry, now: Self.now, request: .normal) == .fetch(.expired, revoking: nil))
    }

    @Test func onlyForceRefreshSkipsTheRead() {
        #expect(!TokenCachePolicy.readsCache(.forceRefresh))
        #expect(TokenCachePolicy.readsCache(.normal))
        #expect(TokenCachePolicy.readsCache(.claims))
        #expect(TokenCachePolicy.readsCache(.backgroundRefresh))
    }
}
