import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import TokenCredentials

/// async-http-client requests authenticated with a bearer token from a ``TokenCredential``, with a
/// resource's claims challenge answered once.
///
/// ```swift
/// let http = AuthenticatedHTTPClient(credential: try ManagedIdentityClient())
/// let response = try await http.execute(
///     HTTPClientRequest(url: "https://myvault.vault.azure.net/secrets/db-password?api-version=7.4"),
///     timeout: .seconds(30))
/// ```
///
/// The rules are ``BearerTokenMiddleware``'s: https only, the scope from the policy (by default the
/// Azure service of the host), one retry with a fresh token after a claims challenge, a second
/// challenge returned. The retry sends the request again, body included: a body made of bytes is
/// sent as it was; a body made from an async sequence is iterated again, so it must be a sequence
/// that can be. async-http-client drops `Authorization` when it follows a redirect to another
/// origin, so a token never follows a redirect to another host.
public struct AuthenticatedHTTPClient: Sendable {
    /// The client that sends the requests.
    public let httpClient: HTTPClient
    /// Where tokens come from.
    public let credential: any TokenCredential
    /// Which token a request gets and where tokens may go.
    public let policy: BearerTokenPolicy
    private let fixedContext: TokenRequestContext?
    private let authorization = CachedAuthorization { $0 }

    /// Creates a client.
    /// - Parameters:
    ///   - httpClient: the client that sends the requests; async-http-client's shared one by default.
    ///   - credential: where tokens come from.
    ///   - policy: the scope and the rules; by default the scope of the host's Azure service.
    public init(httpClient: HTTPClient = .shared, credential: any TokenCredential, policy: BearerTokenPolicy = BearerTokenPolicy()) {
        self.httpClient = httpClient
        self.credential = credential
        self.policy = policy
        self.fixedContext = policy.fixedContext
    }

    /// Sends `request` with a bearer token; after a claims challenge, once more with a fresh token.
    /// - Returns: the response; a 401 when the resource challenged twice or refused the token.
    /// - Throws: ``AuthenticatedHTTPError`` before anything is sent when no token may go to the URL;
    ///   the credential's error; async-http-client's error.
    public func execute(_ request: HTTPClientRequest, timeout: TimeAmount, logger: Logger? = nil) async throws -> HTTPClientResponse {
        guard let url = URL(string: request.url) else {
            throw AuthenticatedHTTPError(code: .noScopeForHost, message: "The request's URL cannot be parsed.")
        }
        let scope = try policy.scope(for: url)
        var request = request
        let header: String
        if let kept = authorization.header(scope: scope) {
            header = kept
        } else {
            header = authorization.store(try await credential.token(for: fixedContext ?? policy.context(scope: scope)), scope: scope)
        }
        request.headers.replaceOrAdd(name: "Authorization", value: header)
        let response = try await httpClient.execute(request, timeout: timeout, logger: logger)
        guard response.status.code == 401,
            let claims = ClaimsChallenge.claims(status: 401, wwwAuthenticate: response.headers["WWW-Authenticate"])
        else { return response }
        // The challenged response is read and dropped, so its connection can serve the retry.
        _ = try? await response.body.collect(upTo: 1 << 16)
        request.headers.replaceOrAdd(
            name: "Authorization",
            value: authorization.store(try await credential.token(for: policy.context(scope: scope, claims: claims)), scope: scope))
        return try await httpClient.execute(request, timeout: timeout, logger: logger)
    }
}
