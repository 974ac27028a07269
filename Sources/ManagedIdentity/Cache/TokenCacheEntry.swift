import Foundation

/// One cached access token.
///
/// Inside a partition, entries are keyed by ``key`` (resource and token type). Times are whole
/// seconds since 1970, as in MSAL's cache schema.
public struct TokenCacheEntry: Sendable, Hashable {
    /// The partition the entry belongs to; the core drops entries a backend hands back for another.
    public var partitionKey: TokenCachePartitionKey
    /// The resource (audience) the token is for, after `/.default` stripping.
    public var resource: String
    /// The token type, `Bearer` for managed identity tokens.
    public var tokenType: String
    /// The access token. A secret: never log it.
    public var accessToken: String
    /// When the token expires.
    public var expiresOn: Date
    /// When the token should be refreshed, if earlier than its expiry margin.
    public var refreshOn: Date?
    /// When the token was issued to this cache.
    public var cachedAt: Date

    /// Creates an entry.
    public init(
        partitionKey: TokenCachePartitionKey,
        resource: String,
        tokenType: String = "Bearer",
        accessToken: String,
        expiresOn: Date,
        refreshOn: Date? = nil,
        cachedAt: Date
    ) {
        self.partitionKey = partitionKey
        self.resource = resource
        self.tokenType = tokenType
        self.accessToken = accessToken
        self.expiresOn = expiresOn
        self.refreshOn = refreshOn
        self.cachedAt = cachedAt
    }

    /// The entry's key inside its partition.
    public var key: TokenCacheEntryKey { TokenCacheEntryKey(resource: resource, tokenType: tokenType) }
}

/// The key of an entry inside a partition: the resource and the token type.
public struct TokenCacheEntryKey: Hashable, Sendable, CustomStringConvertible {
    /// The resource.
    public var resource: String
    /// Compared without regard to case, as MSAL does (`Bearer` and `bearer` are one type).
    public var tokenType: String

    /// Creates a key; `bearer` in any case is spelled `Bearer`.
    public init(resource: String, tokenType: String = "Bearer") {
        self.resource = resource
        // The common case is checked first: lower-casing costs more than the rest of a cache hit.
        self.tokenType = tokenType == "Bearer" || tokenType.lowercased() == "bearer" ? "Bearer" : tokenType
    }

    public var description: String { "\(resource) (\(tokenType))" }
}
