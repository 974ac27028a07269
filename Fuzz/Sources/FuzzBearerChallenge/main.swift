import Foundation
import FuzzSupport

@testable import AuthenticatedHTTP

// A resource's `WWW-Authenticate` values (hostile: any server the caller talks to writes them).
// Invariants: no crash; every scheme and parameter name is an RFC 9110 token; the claims of a claims
// challenge are a JSON object and come only from a 401 with a Bearer challenge saying
// insufficient_claims.

let tokenCharacters = Set("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".utf8)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzBearerChallenge(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    var input = FuzzInput(start, count)
    let status = [401, 401, 403, 200][input.choice(4)]
    var values: [String] = []
    while values.count < 4 {
        let value = input.text()
        if value.isEmpty { break }
        values.append(value)
    }
    let challenges = AuthenticationChallenge.parse(values)
    for challenge in challenges {
        if challenge.scheme.isEmpty || !challenge.scheme.utf8.allSatisfy(tokenCharacters.contains) {
            finding("a scheme that is not a token: \(challenge.scheme)")
        }
        for name in challenge.parameters.keys where name.isEmpty || !name.utf8.allSatisfy(tokenCharacters.contains) {
            finding("a parameter name that is not a token: \(name)")
        }
    }
    if let claims = ClaimsChallenge.claims(status: status, wwwAuthenticate: values) {
        if status != 401 { finding("claims from a \(status)") }
        let asked = challenges.contains { $0.hasScheme("Bearer") && $0.parameters["error"]?.lowercased() == "insufficient_claims" }
        if !asked { finding("claims without an insufficient_claims Bearer challenge") }
        guard (try? JSONSerialization.jsonObject(with: Data(claims.utf8))) is [String: Any] else {
            finding("claims that are not a JSON object")
            return 0
        }
    }
    return 0
}
