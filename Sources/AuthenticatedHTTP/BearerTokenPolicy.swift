import Foundation
import TokenCredentials

/// Which token a request gets and where a token may go: the decisions shared by
/// ``BearerTokenMiddleware`` and ``AuthenticatedHTTPClient``, as plain values without I/O.
///
/// - A token goes only to `https` URLs (unless ``allowsPlainHTTP`` says otherwise, for a test
///   against a plain-HTTP server on loopback); another URL is refused before anything is sent.
/// - The scope is the configured one, or the one of the Azure service the host belongs to.
/// - A claims challenge (``ClaimsChallenge``) is answered once, with a fresh token carrying the
///   claims; a second challenge goes back to the caller.
public struct BearerTokenPolicy: Sendable {
    /// How the scope of a request is chosen.
    public enum Scope: Sendable {
        /// This scope for every request, such as `https://vault.azure.net/.default`.
        case fixed(String)
        /// The scope of the Azure service the request's host belongs to (Key Vault, Storage, Azure
        /// Resource Manager, Microsoft Graph, Service Bus, Event Hubs, Cosmos DB, SQL Database, App
        /// Configuration, AI Search, Azure AI services); any other host is refused.
        case azureService
        /// The scope for a host, or `nil` to refuse it.
        case custom(@Sendable (_ host: String) -> String?)
    }

    /// How the scope is chosen.
    public var scope: Scope
    /// The tenant to ask for tokens from, for credentials that can choose one (the Azure CLI).
    public var tenantID: String?
    /// Whether plain `http` URLs may receive a token. Only for tests against a loopback server: a
    /// bearer token sent over plain HTTP can be read and replayed by anyone on the path.
    public var allowsPlainHTTP: Bool
    /// The largest request body, in bytes, that ``BearerTokenMiddleware`` keeps so it can send it
    /// again after a claims challenge when the body can be read only once (1 MiB by default). A
    /// longer one-pass body is sent once; its challenge goes back to the caller.
    public var maximumReplayedBodySize: Int

    /// Creates a policy with one scope for every request.
    public init(scope: String, tenantID: String? = nil, allowsPlainHTTP: Bool = false) {
        self.init(scope: .fixed(scope), tenantID: tenantID, allowsPlainHTTP: allowsPlainHTTP)
    }

    /// Creates a policy.
    public init(
        scope: Scope = .azureService, tenantID: String? = nil, allowsPlainHTTP: Bool = false,
        maximumReplayedBodySize: Int = 1 << 20
    ) {
        self.scope = scope
        self.tenantID = tenantID
        self.allowsPlainHTTP = allowsPlainHTTP
        self.maximumReplayedBodySize = maximumReplayedBodySize
    }

    /// The scope of a request to `url`.
    /// - Throws: ``AuthenticatedHTTPError`` when no token may go there.
    public func scope(for url: URL) throws(AuthenticatedHTTPError) -> String {
        try scope(scheme: url.scheme, host: url.host)
    }

    /// The scope of a request to `host` over `scheme`.
    /// - Throws: ``AuthenticatedHTTPError`` when no token may go there.
    public func scope(scheme: String?, host: String?) throws(AuthenticatedHTTPError) -> String {
        let scheme = scheme?.lowercased()
        guard scheme == "https" || (allowsPlainHTTP && scheme == "http") else {
            throw AuthenticatedHTTPError(
                code: .insecureURL,
                message: "A bearer token is sent only over https, and this request's scheme is \(scheme ?? "missing"). "
                    + "Use the service's https URL.")
        }
        guard let host, !host.isEmpty else {
            throw AuthenticatedHTTPError(code: .noScopeForHost, message: "The request's URL has no host.")
        }
        let chosen: String?
        switch scope {
        case .fixed(let scope): chosen = scope
        case .azureService: chosen = AzureServiceScopes.scope(forHost: host)
        case .custom(let select): chosen = select(host)
        }
        guard let chosen, !chosen.isEmpty else {
            throw AuthenticatedHTTPError(
                code: .noScopeForHost,
                message: "No scope is known for host \(host): give the policy the service's scope, "
                    + "such as BearerTokenPolicy(scope: \"https://vault.azure.net/.default\").")
        }
        return chosen
    }

    /// What to ask the credential for: the request's scope, with a challenge's claims when there are.
    func context(scope: String, claims: String? = nil) -> TokenRequestContext {
        TokenRequestContext(scopes: [scope], claims: claims, tenantID: tenantID)
    }

    /// `Authorization`'s value for a token.
    static func authorization(_ token: AccessTokenInfo) -> String { "Bearer " + token.token }
}
