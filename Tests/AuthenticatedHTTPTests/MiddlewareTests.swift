import Foundation
import HTTPTypes
import OpenAPIRuntime
import Synchronization
import Testing
import TokenCredentials

@testable import AuthenticatedHTTP

/// The middleware's rules with a scripted `next`: nothing leaves the process.
@Suite struct MiddlewareTests {
    let base = URL(string: "https://myvault.vault.azure.net")!
    let claims = #"{"access_token":{"nbf":{"essential":true,"value":"1726077595"}}}"#

    func challenge() -> HTTPResponse {
        var response = HTTPResponse(status: .unauthorized)
        response.headerFields[.wwwAuthenticate] =
            #"Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", error="insufficient_claims", claims="\#(ClaimsChallenge.encode(claims))""#
        return response
    }

    @Test func aRequestCarriesABearerTokenForTheHostsScope() async throws {
        let credential = CountingCredential()
        let middleware = BearerTokenMiddleware(credential: credential)
        let seen = Recorder()
        let (response, _) = try await middleware.intercept(
            HTTPRequest(method: .get, scheme: nil, authority: nil, path: "/secrets/x?api-version=7.4"), body: nil, baseURL: base,
            operationID: "getSecret"
        ) { request, body, _ in
            seen.append(request.headerFields[.authorization])
            return (HTTPResponse(status: .ok), nil)
        }
        #expect(response.status == .ok)
        #expect(seen.values == ["Bearer token-1"])
        #expect(credential.contexts.map(\.scopes) == [["https://vault.azure.net/.default"]])
        #expect(credential.contexts.map(\.claims) == [nil])

        // An Authorization the caller set is replaced, never sent beside the token.
        var own = HTTPRequest(method: .get, scheme: nil, authority: nil, path: "/secrets/x")
        own.headerFields[.authorization] = "Basic dXNlcjpwYXNz"
        let fields = Recorder()
        _ = try await middleware.intercept(own, body: nil, baseURL: base, operationID: "getSecret") { request, _, _ in
            fields.append(request.headerFields[fields: .authorization].map(\.value).joined(separator: " | "))
            return (HTTPResponse(status: .ok), nil)
        }
        #expect(fields.values == ["Bearer token-1"])
    }

    @Test func aKeptTokenServesLaterRequestsUntilItNearsItsEnd() async throws {
        let credential = CountingCredential(lifetime: 3600)
        let middleware = BearerTokenMiddleware(credential: credential, scope: "https://vault.azure.net/.default")
        let seen = Recorder()
        for _ in 0..<3 {
            _ = try await middleware.intercept(
                HTTPRequest(method: .get, scheme: nil, authority: nil, path: "/secrets/x"), body: nil, baseURL: base, operationID: "getSecret"
            ) { request, _, _ in
                seen.append(request.headerFields[.authorization])
                return (HTTPResponse(status: .ok), nil)
            }
        }
        #expect(seen.values == ["Bearer token-1", "Bearer token-1", "Bearer token-1"])
        #expect(credential.contexts.count == 1)
        // A token within 5 minutes of its expiry, or past its refresh time, is asked for again.
        let kept = CachedAuthorization<String> { $0 }
        let now = Date()
        _ = kept.store(AccessTokenInfo(token: "a", expiresOn: now.addingTimeInterval(301)), scope: "s")
        #expect(kept.header(scope: "s", now: now) == "Bearer a")
        #expect(kept.header(scope: "s", now: now.addingTimeInterval(2)) == nil)
        #expect(kept.header(scope: "other", now: now) == nil)
        _ = kept.store(AccessTokenInfo(token: "b", expiresOn: now.addingTimeInterval(3600), refreshOn: now.addingTimeInterval(60)), scope: "s")
        #expect(kept.header(scope: "s", now: now) == "Bearer b")
        #expect(kept.header(scope: "s", now: now.addingTimeInterval(60)) == nil)
        // Scopes used in turn each keep their own token.
        _ = kept.store(AccessTokenInfo(token: "c", expiresOn: now.addingTimeInterval(3600)), scope: "t")
        #expect(kept.header(scope: "s", now: now) == "Bearer b")
        #expect(kept.header(scope: "t", now: now) == "Bearer c")
        #expect(kept.header(scope: "s", now: now) == "Bearer b")
    }

    @Test func aClaimsChallengeIsAnsweredOnceWithAFreshTokenAndTheSameBody() async throws {
        let credential = CountingCredential()
        let middleware = BearerTokenMiddleware(credential: credential, scope: "https://vault.azure.net/.default")
        let seen = Recorder()
        let bodies = Recorder()
        let stream = AsyncStream<HTTPBody.ByteChunk> { continuation in
            continuation.yield(ArraySlice("{\"value\":".utf8))
            continuation.yield(ArraySlice("\"s3cret\"}".utf8))
            continuation.finish()
        }
        let body = HTTPBody(stream, length: .known(18), iterationBehavior: .single)
        let (response, _) = try await middleware.intercept(
            HTTPRequest(method: .put, scheme: nil, authority: nil, path: "/secrets/x"), body: body, baseURL: base, operationID: "setSecret"
        ) { request, body, _ in
            seen.append(request.headerFields[.authorization])
            if let body { bodies.append(try await String(collecting: body, upTo: 1024)) } else { bodies.append(nil) }
            return seen.values.count == 1 ? (challenge(), HTTPBody("{}")) : (HTTPResponse(status: .ok), nil)
        }
        #expect(response.status == .ok)
        #expect(seen.values == ["Bearer token-1", "Bearer token-2"])
        #expect(bodies.values == [#"{"value":"s3cret"}"#, #"{"value":"s3cret"}"#])
        #expect(credential.contexts.map(\.claims) == [nil, claims])
    }

    @Test func aSecondChallengeIsReturnedToTheCaller() async throws {
        let credential = CountingCredential()
        let middleware = BearerTokenMiddleware(credential: credential, scope: "https://vault.azure.net/.default")
        let calls = Recorder()
        let (response, _) = try await middleware.intercept(
            HTTPRequest(method: .get, scheme: nil, authority: nil, path: "/secrets/x"), body: nil, baseURL: base, operationID: "getSecret"
        ) { request, _, _ in
            calls.append(request.headerFields[.authorization])
            return (challenge(), nil)
        }
        #expect(response.status == .unauthorized)
        #expect(calls.values.count == 2)
        #expect(credential.contexts.count == 2)
    }

    @Test func aOnePassBodyTooLongToKeepIsSentOnceAndItsChallengeReturned() async throws {
        let credential = CountingCredential()
        var policy = BearerTokenPolicy(scope: "https://vault.azure.net/.default")
        policy.maximumReplayedBodySize = 4
        let middleware = BearerTokenMiddleware(credential: credential, policy: policy)
        let calls = Recorder()
        let body = HTTPBody(AsyncStream { $0.yield(ArraySlice("0123456789".utf8)); $0.finish() }, length: .known(10), iterationBehavior: .single)
        let (response, _) = try await middleware.intercept(
            HTTPRequest(method: .put, scheme: nil, authority: nil, path: "/secrets/x"), body: body, baseURL: base, operationID: "setSecret"
        ) { request, _, _ in
            calls.append(request.headerFields[.authorization])
            return (challenge(), nil)
        }
        #expect(response.status == .unauthorized)
        #expect(calls.values.count == 1)
    }

    @Test func aPlainHTTPServerGetsNoRequestAtAll() async throws {
        let credential = CountingCredential()
        let middleware = BearerTokenMiddleware(credential: credential, scope: "https://vault.azure.net/.default")
        let calls = Recorder()
        await #expect(throws: AuthenticatedHTTPError(code: .insecureURL, message: "")) {
            _ = try await middleware.intercept(
                HTTPRequest(method: .get, scheme: nil, authority: nil, path: "/secrets/x"), body: nil,
                baseURL: URL(string: "http://myvault.vault.azure.net")!, operationID: "getSecret"
            ) { request, _, _ in
                calls.append(request.headerFields[.authorization])
                return (HTTPResponse(status: .ok), nil)
            }
        }
        #expect(calls.values.isEmpty)
        #expect(credential.contexts.isEmpty)
    }
}

/// A credential that hands out `token-1`, `token-2`, ... and records what it was asked.
final class CountingCredential: TokenCredential {
    private let state = Mutex<[TokenRequestContext]>([])
    private let lifetime: TimeInterval
    var contexts: [TokenRequestContext] { state.withLock { $0 } }

    init(lifetime: TimeInterval = 3600) { self.lifetime = lifetime }

    func token(for context: TokenRequestContext) async throws -> AccessTokenInfo {
        let count = state.withLock { $0.append(context); return $0.count }
        return AccessTokenInfo(token: "token-\(count)", expiresOn: Date().addingTimeInterval(lifetime))
    }
}

/// Values recorded from concurrent code.
final class Recorder: Sendable {
    private let state = Mutex<[String?]>([])
    var values: [String?] { state.withLock { $0 } }
    func append(_ value: String?) { state.withLock { $0.append(value) } }
}
