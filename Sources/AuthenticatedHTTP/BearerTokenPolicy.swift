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
        // The scheme read from the URL's text: cheaper than `URL.scheme`, and this runs on every request.
        let text = url.absoluteString
        // Nearly every URL spells its scheme `https` in lower case: one prefix comparison.
        if !Self.hasPrefix(text, "https:") {
            try checkScheme(text.utf8.firstIndex(of: UInt8(ascii: ":")).map { text[..<$0].utf8 })
        }
        // A fixed scope needs no host: the request path of every call stays free of parsing it.
        if case .fixed(let scope) = scope, !scope.isEmpty { return scope }
        return try scope(ofHost: url.host)
    }

    /// The scope of a request to `host` over `scheme`.
    /// - Throws: ``AuthenticatedHTTPError`` when no token may go there.
    public func scope(scheme: String?, host: String?) throws(AuthenticatedHTTPError) -> String {
        try checkScheme(scheme?[...].utf8)
        if case .fixed(let scope) = scope, !scope.isEmpty { return scope }
        return try scope(ofHost: host)
    }

    /// Refuses a scheme a token may not travel over.
    func checkScheme(_ scheme: Substring.UTF8View?) throws(AuthenticatedHTTPError) {
        guard let scheme, Self.equalsIgnoringCase(scheme, "https") || (allowsPlainHTTP && Self.equalsIgnoringCase(scheme, "http")) else {
            throw AuthenticatedHTTPError(
                code: .insecureURL,
                message: "A bearer token is sent only over https, and this request's scheme is \(scheme.map { String(Substring($0)) } ?? "missing"). "
                    + "Use the service's https URL.")
        }
    }

    private func scope(ofHost host: String?) throws(AuthenticatedHTTPError) -> String {
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

    /// Whether `text` starts with `prefix`, byte for byte, read from the string's own storage.
    static func hasPrefix(_ text: String, _ prefix: StaticString) -> Bool {
        let expected = UnsafeBufferPointer(start: prefix.utf8Start, count: prefix.utf8CodeUnitCount)
        return text.utf8.withContiguousStorageIfAvailable { bytes in
            bytes.count >= expected.count && zip(bytes, expected).allSatisfy { $0 == $1 }
        } ?? text.utf8.starts(with: expected)
    }

    /// ASCII comparison without case, allocating nothing (a scheme is compared on every request).
    static func equalsIgnoringCase(_ text: Substring.UTF8View, _ lowercase: StaticString) -> Bool {
        let expected = UnsafeBufferPointer(start: lowercase.utf8Start, count: lowercase.utf8CodeUnitCount)
        return text.count == expected.count && zip(text, expected).allSatisfy { $0 | 0x20 == $1 }
    }

    /// What to ask the credential for: the request's scope, with a challenge's claims when there are.
    func context(scope: String, claims: String? = nil) -> TokenRequestContext {
        TokenRequestContext(scopes: [scope], claims: claims, tenantID: tenantID)
    }

    /// The context of a fixed scope, made once: a request with it allocates no array of scopes.
    var fixedContext: TokenRequestContext? {
        guard case .fixed(let scope) = scope, !scope.isEmpty else { return nil }
        return context(scope: scope)
    }
}
