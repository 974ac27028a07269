import Foundation

/// What the cache does for one request: a pure function of the cached entry, the time, the margin
/// and the kind of request, with no I/O, so every rule is tested as a table.
struct TokenCachePolicy: Sendable {
    /// Tokens are served only while valid for longer than this (5 minutes by default, as in MSAL).
    var margin: TimeInterval

    /// MSAL ignores tokens claiming to be valid for more than 10 years.
    static let maximumLifetime: TimeInterval = 315_360_000

    /// The kinds of request.
    enum Request: Sendable, Hashable {
        /// A caller's request: a valid cached token is served.
        case normal
        /// The caller forced a refresh: the cache is not read.
        case forceRefresh
        /// The caller passed claims: the cache is read, its token never served, and named to the
        /// endpoint as the one to replace.
        case claims
        /// A refresh started because a served token was past its refresh time: a token that is still
        /// past it is not enough (another process may have refreshed it meanwhile, then it is).
        case backgroundRefresh
    }

    /// What to do.
    enum Action: Sendable, Hashable {
        /// Serve the cached token.
        case serve
        /// Serve the cached token and refresh it in the background.
        case serveAndRefreshInBackground
        /// Ask the endpoint, for this reason; `revoking` is the cached token the endpoint should
        /// replace (claims only).
        case fetch(AccessToken.CacheRefreshReason, revoking: TokenCacheEntry?)
    }

    /// Whether the request reads the cache at all.
    static func readsCache(_ request: Request) -> Bool { request != .forceRefresh }

    /// Valid beyond the margin, and not absurdly long-lived.
    @inline(__always)
    func isUsable(_ entry: TokenCacheEntry, now: Date) -> Bool {
        let remaining = entry.expiresOn.timeIntervalSince(now)
        return remaining > margin && remaining < Self.maximumLifetime
    }

    /// The decision for a request, given what the cache holds for it.
    @inline(__always)
    func decide(_ entry: TokenCacheEntry?, now: Date, request: Request) -> Action {
        let usable = entry.map { isUsable($0, now: now) } ?? false
        switch request {
        case .forceRefresh:
            return .fetch(.forceRefreshOrClaims, revoking: nil)
        case .claims:
            return .fetch(.forceRefreshOrClaims, revoking: usable ? entry : nil)
        case .normal:
            guard usable, let entry else { return .fetch(entry == nil ? .noCachedAccessToken : .expired, revoking: nil) }
            if let refreshOn = entry.refreshOn, refreshOn <= now { return .serveAndRefreshInBackground }
            return .serve
        case .backgroundRefresh:
            guard usable, let entry else { return .fetch(.proactivelyRefreshed, revoking: nil) }
            if let refreshOn = entry.refreshOn, refreshOn <= now { return .fetch(.proactivelyRefreshed, revoking: nil) }
            return .serve
        }
    }
}
