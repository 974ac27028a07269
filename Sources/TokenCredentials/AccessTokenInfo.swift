import Foundation

/// A token as a ``TokenCredential`` hands it out: the token, its type and its expiry.
public struct AccessTokenInfo: Sendable, Hashable, CustomStringConvertible {
    /// The token. A secret: never log it.
    public var token: String
    /// When the token expires.
    public var expiresOn: Date
    /// When the credential would rather have the token replaced, if it says.
    public var refreshOn: Date?
    /// The token type, `Bearer` for every credential of this package.
    public var tokenType: String

    /// Creates a token.
    public init(token: String, expiresOn: Date, refreshOn: Date? = nil, tokenType: String = "Bearer") {
        self.token = token
        self.expiresOn = expiresOn
        self.refreshOn = refreshOn
        self.tokenType = tokenType
    }

    /// Describes the token without the token itself.
    public var description: String {
        "AccessTokenInfo(type: \(tokenType), expiresOn: \(expiresOn), token: <redacted>)"
    }
}
