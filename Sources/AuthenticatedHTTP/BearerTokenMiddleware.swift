import Foundation
import HTTPTypes
import OpenAPIRuntime
import TokenCredentials

/// A swift-openapi-runtime middleware that authenticates requests with a bearer token from a
/// ``TokenCredential``, and answers a resource's claims challenge once.
///
/// ```swift
/// let client = Client(
///     serverURL: URL(string: "https://myvault.vault.azure.net")!,
///     transport: AsyncHTTPClientTransport(),
///     middlewares: [BearerTokenMiddleware(credential: try ManagedIdentityClient(), scope: "https://vault.azure.net/.default")])
/// ```
///
/// For each request it:
/// 1. refuses a server URL that is not https before anything is sent (``AuthenticatedHTTPError``);
/// 2. sets `Authorization: Bearer` with the token it keeps for the request's scope, and asks the
///    credential for one only when it has none that is valid for more than 5 minutes and before its
///    refresh time (as the Azure SDKs' bearer-token policies do);
/// 3. on a 401 carrying a claims challenge (``ClaimsChallenge``), gets a fresh token with those claims
///    (the credential bypasses its cache) and sends the request once more; a second challenge is
///    returned to the caller as the response it is.
///
/// A body that can be read only once is kept in memory, up to
/// ``BearerTokenPolicy/maximumReplayedBodySize``, so it can be sent again. Redirects are the
/// transport's: async-http-client drops `Authorization` when a redirect leaves the origin.
public struct BearerTokenMiddleware: ClientMiddleware {
    /// Where tokens come from.
    public let credential: any TokenCredential
    /// Which token a request gets and where tokens may go.
    public let policy: BearerTokenPolicy
    private let fixedContext: TokenRequestContext?
    private let authorization = CachedAuthorization { HTTPField(name: .authorization, value: $0) }

    /// Creates a middleware.
    public init(credential: any TokenCredential, policy: BearerTokenPolicy = BearerTokenPolicy()) {
        self.credential = credential
        self.policy = policy
        self.fixedContext = policy.fixedContext
    }

    /// Creates a middleware that asks for `scope` for every request.
    public init(credential: any TokenCredential, scope: String) {
        self.init(credential: credential, policy: BearerTokenPolicy(scope: scope))
    }

    /// Authenticates the request, and answers a claims challenge once.
    public func intercept(
        _ request: HTTPRequest, body: HTTPBody?, baseURL: URL, operationID: String,
        next: @Sendable (HTTPRequest, HTTPBody?, URL) async throws -> (HTTPResponse, HTTPBody?)
    ) async throws -> (HTTPResponse, HTTPBody?) {
        let scope = try policy.scope(for: baseURL)
        var request = request
        let header: HTTPField
        if let kept = authorization.header(scope: scope) {
            header = kept
        } else {
            header = authorization.store(try await credential.token(for: fixedContext ?? policy.context(scope: scope)), scope: scope)
        }
        // Most requests carry no Authorization of their own: appending spares an array of one field.
        if request.headerFields.contains(.authorization) {
            request.headerFields[fields: .authorization] = [header]
        } else {
            request.headerFields.append(header)
        }
        // Most requests have no body, or one that can be read again: nothing to wait for.
        let (body, replayable) =
            body.map { $0.iterationBehavior == .multiple } ?? true
            ? (body, true) : try await Self.replayable(body, upTo: policy.maximumReplayedBodySize)
        let (response, responseBody) = try await next(request, body, baseURL)
        guard response.status.code == 401, replayable,
            let claims = ClaimsChallenge.claims(status: 401, wwwAuthenticate: response.headerFields[values: .wwwAuthenticate])
        else { return (response, responseBody) }
        // The challenged response is read and dropped, so its connection can serve the retry.
        if let responseBody { _ = try? await ArraySlice(collecting: responseBody, upTo: 1 << 16) }
        request.headerFields[fields: .authorization] = [
            authorization.store(try await credential.token(for: policy.context(scope: scope, claims: claims)), scope: scope)
        ]
        return try await next(request, body, baseURL)
    }

    /// The body to send, and whether it can be sent twice: a body readable once is collected when its
    /// length is known and within `limit`.
    static func replayable(_ body: HTTPBody?, upTo limit: Int) async throws -> (HTTPBody?, Bool) {
        guard let body else { return (nil, true) }
        if body.iterationBehavior == .multiple { return (body, true) }
        guard case .known(let length) = body.length, length <= Int64(limit) else { return (body, false) }
        let bytes = try await ArraySlice<UInt8>(collecting: body, upTo: Int(length))
        return (HTTPBody(bytes), true)
    }
}
