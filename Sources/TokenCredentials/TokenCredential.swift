/// Something that gets access tokens for Microsoft Entra protected resources, shaped like the Azure
/// SDKs' `TokenCredential`: scopes in, a token and its expiry out.
///
/// Libraries that call Azure services depend on this protocol alone (the `TokenCredentials` product
/// has no dependency but Foundation), and their users pass whatever credential fits the host: a
/// `ManagedIdentityClient` in production, an `AzureCLICredential` on a developer's machine, or a
/// ``ChainedTokenCredential`` for code that runs in both places.
///
/// ```swift
/// func listSecrets(credential: some TokenCredential) async throws {
///     let token = try await credential.token(for: TokenRequestContext(scopes: ["https://vault.azure.net/.default"]))
///     // send "Authorization: Bearer \(token.token)"
/// }
/// ```
///
/// Conforming types must be safe to call from many tasks at once, honour cancellation (throw
/// `CancellationError` once the calling task is cancelled, without waiting for the source), and
/// keep tokens out of their errors and logs. A credential that cannot work on this host at all (no
/// managed identity here, no signed-in Azure CLI) says so with a ``TokenCredentialError`` whose
/// ``TokenCredentialError/credentialIsUnavailable`` is true, so a chain can say so precisely.
public protocol TokenCredential: Sendable {
    /// Gets a token for the scopes of `context`, from a cache when the credential keeps one.
    /// - Parameter context: the scopes, and claims from a resource's challenge.
    /// - Returns: the token and when it expires.
    /// - Throws: the credential's error (a ``TokenCredentialError`` saying whether the credential
    ///   cannot work here at all); `CancellationError` when the task is cancelled.
    func token(for context: TokenRequestContext) async throws -> AccessTokenInfo
}
