import Foundation

/// An access token and what is known about it.
public struct AccessToken: Sendable, CustomStringConvertible {
    /// The token. A secret: never log it.
    public var token: String
    /// The token type, usually `Bearer`.
    public var tokenType: String
    /// When the token expires.
    public var expiresOn: Date
    /// When the token should be refreshed; the client refreshes it in the background after this time.
    public var refreshOn: Date?
    /// The resource (audience) the token is for.
    public var resource: String
    /// Where this token came from.
    public var tokenSource: TokenSource
    /// The managed identity source that issued it.
    public var managedIdentitySource: ManagedIdentitySource
    /// Why the endpoint was (or was not) asked.
    public var cacheRefreshReason: CacheRefreshReason
    /// The request's correlation id, when the request used one.
    public var correlationID: String?

    /// Creates a token result.
    public init(
        token: String,
        tokenType: String,
        expiresOn: Date,
        refreshOn: Date?,
        resource: String,
        tokenSource: TokenSource,
        managedIdentitySource: ManagedIdentitySource,
        cacheRefreshReason: CacheRefreshReason,
        correlationID: String?
    ) {
        self.token = token
        self.tokenType = tokenType
        self.expiresOn = expiresOn
        self.refreshOn = refreshOn
        self.resource = resource
        self.tokenSource = tokenSource
        self.managedIdentitySource = managedIdentitySource
        self.cacheRefreshReason = cacheRefreshReason
        self.correlationID = correlationID
    }

    /// Describes the token without the token itself.
    public var description: String {
        "AccessToken(resource: \(resource), source: \(managedIdentitySource), from: \(tokenSource), "
            + "expiresOn: \(expiresOn), token: <redacted>)"
    }

    /// Where a token came from.
    public enum TokenSource: String, Sendable, Hashable {
        /// The cache (memory, or a backend's stored copy).
        case cache
        /// The managed identity endpoint.
        case identityProvider = "identity_provider"
    }

    /// Why a token was fetched from the endpoint or not (MSAL's `CacheRefreshReason`).
    public enum CacheRefreshReason: String, Sendable, Hashable {
        /// A plain cache hit.
        case notApplicable = "not_applicable"
        /// The caller forced a refresh, or passed claims.
        case forceRefreshOrClaims = "force_refresh_or_claims"
        /// Nothing was cached.
        case noCachedAccessToken = "no_cached_access_token"
        /// The cached token was within the expiry margin.
        case expired
        /// The cached token was returned and is being refreshed in the background.
        case proactivelyRefreshed = "proactively_refreshed"
    }
}

/// Options of one token request.
public struct TokenRequestOptions: Sendable {
    /// Skip the cache and ask the endpoint.
    public var forceRefresh: Bool
    /// A claims challenge from a resource: the cached token is not returned, and Service Fabric is
    /// told to replace it (`token_sha256_to_refresh`). Managed identity endpoints are not sent the
    /// claims (MSAL.NET); workload identity sends them to Entra, merged with the client capabilities.
    public var claims: String?
    /// The correlation id to send and log; a new one is made when `nil`.
    public var correlationID: String?

    /// Creates options.
    public init(forceRefresh: Bool = false, claims: String? = nil, correlationID: String? = nil) {
        self.forceRefresh = forceRefresh
        self.claims = claims
        self.correlationID = correlationID
    }
}
