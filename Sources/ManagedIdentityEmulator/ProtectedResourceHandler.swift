import Foundation
import ManagedIdentityTesting

/// Plays the protected resource: checks the bearer token, then answers the Key Vault-shaped
/// operation. A plain function of the request, the state and the time, as the token handler is.
struct ProtectedResourceHandler: Sendable {
    let resource: ProtectedResource
    let state: EmulatorState
    let tenantID: String
    let now: @Sendable () -> Date

    func handle(_ request: EmulatorRequest) -> EmulatorResponse {
        let host = request.header("host") ?? ""
        let authorization = request.header("authorization")
        state.countResourceRequest(host: host, carriesToken: authorization != nil)
        if request.path == "/redirect", let target = request.values("to").first {
            return EmulatorResponse(status: 307, headers: [("Location", target)], body: "")
        }
        // The secret "moved" lives on another host: the same server, named localhost.
        if request.path == "/secrets/moved", let port = host.split(separator: ":").last {
            return EmulatorResponse(status: 307, headers: [("Location", "https://localhost:\(port)/secrets/moved-here")], body: "")
        }
        switch check(authorization) {
        case .accepted(let claims):
            state.countResourceOutcome(.authorized)
            return answer(request, claims: claims)
        case .refused(let description, let error):
            state.countResourceOutcome(.refused)
            var challenge = #"Bearer authorization="https://login.microsoftonline.com/\#(tenantID)", resource="\#(resource.audience)""#
            if let error { challenge += #", error="\#(error)", error_description="\#(description)""# }
            return unauthorized(challenge: challenge, message: description)
        case .challenged(let notBefore):
            state.countResourceOutcome(.challenged)
            let claims = #"{"access_token":{"nbf":{"essential":true,"value":"\#(notBefore)"}}}"#
            return unauthorized(
                challenge: #"Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", "#
                    + #"error="insufficient_claims", claims="\#(Self.base64URL(claims))""#,
                message: "The token was issued before access was re-evaluated; get a new token with the claims.")
        }
    }

    enum Check {
        case accepted(TokenClaims)
        case refused(description: String, error: String?)
        case challenged(notBefore: Int)
    }

    /// What the token in `authorization` is worth here.
    func check(_ authorization: String?) -> Check {
        guard let authorization else { return .refused(description: "No bearer token was sent.", error: nil) }
        let parts = authorization.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else {
            return .refused(description: "The Authorization header is not a bearer token.", error: "invalid_request")
        }
        guard let claims = TokenClaims(token: String(parts[1])), state.wasIssued(claims) else {
            return .refused(description: "The token was not issued by this emulator.", error: "invalid_token")
        }
        guard claims.audience == resource.audience || claims.audience == resource.audience + "/" else {
            return .refused(description: "The token's audience is not \(resource.audience).", error: "invalid_token")
        }
        guard TimeInterval(claims.expiresAt) > now().timeIntervalSince1970 else {
            return .refused(description: "The token has expired.", error: "invalid_token")
        }
        if let notBefore = state.takeResourceChallenge(serial: claims.serial) {
            return .challenged(notBefore: notBefore)
        }
        return .accepted(claims)
    }

    /// The operation: `GET /secrets/{name}` as Key Vault answers it.
    private func answer(_ request: EmulatorRequest, claims: TokenClaims) -> EmulatorResponse {
        let segments = request.path.split(separator: "/")
        guard request.method == "GET", segments.count == 2, segments[0] == "secrets" else {
            return EmulatorResponse(
                status: 404, headers: [("Content-Type", "application/json")],
                body: #"{"error":{"code":"NotFound","message":"The emulated resource serves GET /secrets/{name}."}}"#)
        }
        let name = String(segments[1])
        let body = JSONText.object([
            ("value", "value-of-\(name)"),
            ("id", "https://emulated.vault.azure.net/secrets/\(name)/1"),
            ("attributes", [("enabled", true)] as [(String, Any)]),
            ("caller", claims.identity),
        ])
        return EmulatorResponse(status: 200, headers: [("Content-Type", "application/json")], body: body)
    }

    private func unauthorized(challenge: String, message: String) -> EmulatorResponse {
        EmulatorResponse(
            status: 401, headers: [("WWW-Authenticate", challenge), ("Content-Type", "application/json")],
            body: JSONText.object([("error", [("code", "Unauthorized"), ("message", message)] as [(String, Any)])]))
    }

    static func base64URL(_ text: String) -> String {
        Data(text.utf8).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}
