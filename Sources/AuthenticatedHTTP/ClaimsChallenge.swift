import Foundation

/// A resource's Continuous Access Evaluation challenge: a 401 whose `WWW-Authenticate` has a Bearer
/// challenge with `error="insufficient_claims"` and `claims="<base64url JSON>"`. The client gets a
/// new token with those claims, bypassing its cache, and sends the request once more.
public enum ClaimsChallenge {
    /// The claims, as JSON, that a response asks for; `nil` when it is not a claims challenge (another
    /// status, another error, or claims that are not base64 of a JSON object).
    /// - Parameters:
    ///   - status: the response's status.
    ///   - wwwAuthenticate: its `WWW-Authenticate` values.
    public static func claims(status: Int, wwwAuthenticate: [String]) -> String? {
        guard status == 401, !wwwAuthenticate.isEmpty else { return nil }
        for challenge in AuthenticationChallenge.parse(wwwAuthenticate) where challenge.hasScheme("Bearer") {
            guard challenge.parameters["error"]?.lowercased() == "insufficient_claims",
                let encoded = challenge.parameters["claims"], let claims = decode(encoded)
            else { continue }
            return claims
        }
        return nil
    }

    /// Decodes base64url (or base64), padded or not, to the text of a JSON object.
    static func decode(_ encoded: String) -> String? {
        var text = encoded.trimmingCharacters(in: .whitespaces)
            .replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        guard !text.isEmpty, text.utf8.count <= 16_384 else { return nil }
        while text.utf8.count % 4 != 0 { text += "=" }
        guard let data = Data(base64Encoded: text),
            let object = try? JSONSerialization.jsonObject(with: data), object is [String: Any],
            let json = String(data: data, encoding: .utf8)
        else { return nil }
        return json
    }

    /// The `claims` parameter for `json`: base64url without padding, as Entra and CAE resources send it.
    public static func encode(_ json: String) -> String {
        Data(json.utf8).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}
