/// Credentials tried in order: the first token wins; when every credential fails, the error reports
/// each attempt and why it failed (as azure-identity's `ChainedTokenCredential` does).
///
/// A chain is for code that runs in two places, such as a managed identity in Azure and the signed-in
/// Azure CLI on a developer's machine:
///
/// ```swift
/// let credential = ChainedTokenCredential(
///     ManagedIdentityCredential(identity: .systemAssigned),
///     AzureCLICredential())
/// ```
///
/// In production, Microsoft's guidance is a managed identity alone (a `ManagedIdentityClient`): a
/// chain that falls through to another credential when the managed identity is slow or refused hides
/// the fault, takes longer to fail, and may run with an identity nobody meant the service to use.
///
/// Every call walks the chain from its first credential; credentials keep their own caches, so a
/// credential that said "unavailable" answers at once the next time. Cancellation stops the walk.
public struct ChainedTokenCredential: TokenCredential {
    /// The credentials, in the order they are tried.
    public let credentials: [any TokenCredential]

    /// Creates a chain of `credentials`, tried in this order.
    public init(_ credentials: any TokenCredential...) {
        self.credentials = credentials
    }

    /// Creates a chain of `credentials`, tried in this order.
    public init(credentials: [any TokenCredential]) {
        self.credentials = credentials
    }

    /// The first token any credential gives.
    /// - Throws: ``ChainedTokenCredentialError`` with every attempt when all fail;
    ///   `CancellationError` when the task is cancelled.
    public func token(for context: TokenRequestContext) async throws -> AccessTokenInfo {
        var attempts: [ChainedTokenCredentialError.Attempt] = []
        for credential in credentials {
            try Task.checkCancellation()
            do {
                return try await credential.token(for: context)
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                attempts.append(ChainedTokenCredentialError.Attempt(credential: Self.name(of: credential), error: error))
            }
        }
        throw ChainedTokenCredentialError(attempts: attempts)
    }

    static func name(of credential: any TokenCredential) -> String {
        String(describing: type(of: credential))
    }
}
