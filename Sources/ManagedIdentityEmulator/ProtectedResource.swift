/// A protected resource the emulator serves beside its token endpoint: an HTTPS API shaped like Key
/// Vault's `GET /secrets/{name}` that accepts only tokens the emulator issued for its audience, so
/// code that uses a token (not only gets one) runs end to end without Azure.
///
/// It answers as Azure resources do: 401 with `WWW-Authenticate: Bearer authorization="…", resource="…"`
/// when the token is missing, `error="invalid_token"` when it is not one the emulator issued for the
/// audience or has expired, and a Continuous Access Evaluation challenge (`error="insufficient_claims"`,
/// `claims="<base64url>"`) when told to (``ManagedIdentityEmulator/challengeNextResourceRequests(_:)``)
/// or when the token was issued before a revocation (``ManagedIdentityEmulator/revokeIssuedTokens()``).
/// `GET /redirect?to=<url>` answers 307 to `url`, and `GET /secrets/moved` answers 307 to the same
/// server named `localhost`, to test that a token never follows a redirect to another host. Its requests are counted in ``EmulatorStatistics/resource``.
public struct ProtectedResource: Sendable, Hashable {
    /// The audience tokens must be issued for (`aud`), such as `https://vault.azure.net`.
    public var audience: String
    /// The port to bind on 127.0.0.1; 0 picks a free one.
    public var port: Int

    /// Creates a resource for `audience`.
    public init(audience: String = "https://vault.azure.net", port: Int = 0) {
        self.audience = audience
        self.port = port
    }
}

/// What the emulator's protected resource has seen.
public struct ProtectedResourceStatistics: Sendable, Codable, Equatable {
    /// Every request to the resource.
    public var requests: Int = 0
    /// Requests answered because their token was accepted.
    public var authorized: Int = 0
    /// Requests answered with a claims challenge.
    public var claimsChallenges: Int = 0
    /// Requests refused with 401 for a missing, foreign, expired or wrong-audience token.
    public var refused: Int = 0
    /// Requests per `Host` header (`127.0.0.1:port`, `localhost:port`).
    public var requestsByHost: [String: Int] = [:]
    /// Requests that carried an `Authorization` header, per `Host` header.
    public var requestsWithTokenByHost: [String: Int] = [:]

    /// Creates empty statistics.
    public init() {}

    enum CodingKeys: String, CodingKey {
        case requests, authorized, refused
        case claimsChallenges = "claims_challenges"
        case requestsByHost = "requests_by_host"
        case requestsWithTokenByHost = "requests_with_token_by_host"
    }
}
