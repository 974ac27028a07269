/// An error a credential throws that says whether the credential can work on this host at all.
///
/// A ``ChainedTokenCredential`` reports an attempt whose error says `credentialIsUnavailable` as
/// "unavailable" (nothing to fix in the credential; it does not apply here) and any other as a
/// failure to look into. Errors that do not conform count as failures.
public protocol TokenCredentialError: Error {
    /// Whether the credential cannot work here (no managed identity on this host, the Azure CLI not
    /// installed or not signed in), rather than having tried and failed.
    var credentialIsUnavailable: Bool { get }
}
