import Foundation
import ManagedIdentity

/// The claims of every fake token this package issues, from the emulator and from
/// ``FakeTokenEndpoint`` alike. Tokens are JWT-shaped (unsigned): tests decode them to tell a fresh
/// token from a cached one (``serial``) and to catch a token served to the wrong host, identity or
/// resource.
public struct TokenClaims: Sendable, Hashable, Codable {
    /// The resource the token was issued for (`aud`).
    public var audience: String
    /// `system`, or `client_id:<id>` of the user-assigned identity.
    public var identity: String
    /// The identity's client id (`appid`) and object id (`oid`).
    public var appID: String
    /// The identity's object id (`oid`).
    public var objectID: String
    /// The source that issued it.
    public var source: String
    /// A number that grows with every token the emulator issues.
    public var serial: Int
    /// When the token was issued (`iat`), in seconds since 1970.
    public var issuedAt: Int
    /// When it expires (`exp`), in seconds since 1970.
    public var expiresAt: Int
    /// The simulated host that issued it, when the issuer plays one (``FakeTokenEndpoint``).
    public var host: String?

    enum CodingKeys: String, CodingKey {
        case audience = "aud"
        case identity = "mi_identity"
        case appID = "appid"
        case objectID = "oid"
        case source = "mi_source"
        case serial = "mi_serial"
        case issuedAt = "iat"
        case expiresAt = "exp"
        case host = "mi_host"
    }

    /// The token text: `header.payload.signature`, base64url.
    public var token: String {
        let header = Array(#"{"alg":"none","typ":"JWT"}"#.utf8)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let payload = (try? encoder.encode(self)).map(Array.init) ?? []
        return Base64URL.encode(header) + "." + Base64URL.encode(payload) + "." + Base64URL.encode(Array("emulator".utf8))
    }

    /// Decodes the claims of a token the emulator issued.
    /// - Returns: `nil` for anything else.
    public init?(token: String) {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let payload = Base64URL.decode(parts[1]),
            let claims = try? JSONDecoder().decode(TokenClaims.self, from: Data(payload))
        else { return nil }
        self = claims
    }

    /// The identity claim for an identity: `system`, or `client_id:`, `resource_id:`, `object_id:`
    /// followed by the id.
    public static func identityClaim(_ identity: ManagedIdentityID) -> String {
        switch identity {
        case .systemAssigned: "system"
        case .clientID(let id): "client_id:" + id
        case .resourceID(let id): "resource_id:" + id
        case .objectID(let id): "object_id:" + id
        }
    }

    /// Creates claims.
    public init(
        audience: String, identity: String, appID: String, objectID: String, source: String, serial: Int,
        issuedAt: Int, expiresAt: Int, host: String? = nil
    ) {
        self.host = host
        self.audience = audience
        self.identity = identity
        self.appID = appID
        self.objectID = objectID
        self.source = source
        self.serial = serial
        self.issuedAt = issuedAt
        self.expiresAt = expiresAt
    }
}

package enum Base64URL {
    package static func encode(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    package static func decode(_ text: Substring) -> [UInt8]? {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        return Data(base64Encoded: base64).map(Array.init)
    }
}
