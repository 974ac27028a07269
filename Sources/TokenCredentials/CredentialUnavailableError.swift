/// A credential cannot work on this host: there is no managed identity here, say. A credential with
/// an error type of its own says the same through ``TokenCredentialError``; this one is for
/// credentials without one. A ``ChainedTokenCredential`` reports it and moves on.
///
/// It is not thrown for a credential that can work but failed (an endpoint's refusal, a timeout):
/// that is the credential's own error.
public struct CredentialUnavailableError: TokenCredentialError, Sendable, CustomStringConvertible {
    /// The credential's type, such as `AzureCLICredential`.
    public var credential: String
    /// Why it cannot work here, and what to do about it.
    public var message: String
    /// The error that showed it, when there was one.
    public var underlying: (any Error)?

    /// Creates an error.
    public init(credential: String, message: String, underlying: (any Error)? = nil) {
        self.credential = credential
        self.message = message
        self.underlying = underlying
    }

    /// Always true.
    public var credentialIsUnavailable: Bool { true }

    public var description: String { "\(credential) is unavailable: \(message)" }
}
