import AuthenticatedHTTP
import Benchmark
import Foundation
import HTTPTypes
import ManagedIdentity
import OpenAPIRuntime
import TokenCredentials

// What authentication adds to a request whose token is cached: the middleware's work (the scope
// from the server URL, the token from the client's memory, the Authorization header) around a
// transport that answers at once, beside the same hit through the credential protocol alone and the
// client's own hit. The target: the middleware adds no more than 1 µs to the request's own cost.

func registerMiddlewareBenchmarks() {
    let baseURL = URL(string: "https://myvault.vault.azure.net")!
    let request = HTTPRequest(method: .get, scheme: nil, authority: nil, path: "/secrets/db-password?api-version=7.4")
    let ok = HTTPResponse(status: .ok)

    Benchmark("Middleware: request with a cached token, transport answering at once", configuration: .init(scalingFactor: .kilo)) {
        benchmark, clients in
        let middleware = BearerTokenMiddleware(credential: clients[0], scope: "https://resource-0.example/.default")
        for _ in benchmark.scaledIterations {
            blackHole(
                try await middleware.intercept(request, body: nil, baseURL: baseURL, operationID: "getSecret") { request, _, _ in
                    blackHole(request)
                    return (ok, nil)
                })
        }
    } setup: {
        await populated(identities: 1, resources: 1, cache: TokenCache())
    }

    Benchmark("Middleware baseline: the same request without the middleware", configuration: .init(scalingFactor: .kilo)) {
        benchmark in
        let next: @Sendable (HTTPRequest, HTTPBody?, URL) async throws -> (HTTPResponse, HTTPBody?) = { request, _, _ in
            blackHole(request)
            return (ok, nil)
        }
        for _ in benchmark.scaledIterations {
            blackHole(try await next(request, nil, baseURL))
        }
    }

    Benchmark("Credential protocol: hit through TokenCredential", configuration: .init(scalingFactor: .kilo)) { benchmark, clients in
        let credential: any TokenCredential = clients[0]
        let context = TokenRequestContext(scopes: ["https://resource-0.example/.default"])
        for _ in benchmark.scaledIterations {
            blackHole(try await credential.token(for: context))
        }
    } setup: {
        await populated(identities: 1, resources: 1, cache: TokenCache())
    }
}
