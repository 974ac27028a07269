import Logging
import Synchronization
import TokenCredentials

/// A managed identity as one link of a `ChainedTokenCredential`: it asks discovery first, so on a
/// machine without a managed identity it says "unavailable" after one short probe instead of
/// retrying IMDS for a minute, and the chain moves on.
///
/// ```swift
/// let credential = ChainedTokenCredential(ManagedIdentityCredential(), AzureCLICredential())
/// ```
///
/// Discovery (``ManagedIdentityDiscovery``) reads the environment and, when it names no source,
/// probes IMDS once with a 1 s timeout; the answer is kept for the life of the credential. Once a
/// source is found, tokens come from a ``ManagedIdentityClient`` made with the same arguments, with
/// its cache and retries. In production use the client alone: a probe that times out on a busy host
/// would make this credential "unavailable" for its whole life.
public final class ManagedIdentityCredential: TokenCredential {
    /// The identity tokens are asked for.
    public let identity: ManagedIdentityID
    private let configuration: ManagedIdentityClient.Configuration
    private let cache: TokenCache
    private let transport: any HTTPTransport
    private let logger: Logger?
    private let discovery: ManagedIdentityDiscovery
    private let client = Mutex<ManagedIdentityClient?>(nil)

    /// Creates a credential; nothing is sent until the first token is asked for.
    /// - Parameters:
    ///   - identity: the identity to get tokens for.
    ///   - configuration: as for ``ManagedIdentityClient``; a source named here skips the probe.
    ///   - cache: where tokens are kept.
    ///   - transport: how requests (and the probe) are sent.
    ///   - probeTimeout: how long the IMDS probe may take.
    ///   - logger: where the client logs.
    public init(
        identity: ManagedIdentityID = .systemAssigned,
        configuration: ManagedIdentityClient.Configuration = ManagedIdentityClient.Configuration(),
        cache: TokenCache = .shared, transport: any HTTPTransport = AsyncHTTPClientTransport(),
        probeTimeout: Duration = .seconds(1), logger: Logger? = nil
    ) {
        self.identity = identity
        self.configuration = configuration
        self.cache = cache
        self.transport = transport
        self.logger = logger
        self.discovery = ManagedIdentityDiscovery(
            environment: configuration.environment, transport: transport, probeTimeout: probeTimeout)
    }

    /// Gets a token, or says at once that this host has no managed identity.
    /// - Throws: `CredentialUnavailableError` when discovery finds no source;
    ///   ``ManagedIdentityError`` when the source fails; `CancellationError` when cancelled.
    public func token(for context: TokenRequestContext) async throws -> AccessTokenInfo {
        if configuration.source == nil {
            let capabilities = await discovery.capabilities()
            try Task.checkCancellation()
            guard capabilities.isAvailable else {
                throw CredentialUnavailableError(
                    credential: "ManagedIdentityCredential",
                    message: "No managed identity on this host: \(capabilities.reason)")
            }
        }
        return try await madeClient().token(for: context)
    }

    /// The client, made on first use; a configuration it refuses is thrown every time.
    private func madeClient() throws(ManagedIdentityError) -> ManagedIdentityClient {
        if let client = client.withLock({ $0 }) { return client }
        let made = try ManagedIdentityClient(
            identity: identity, configuration: configuration, cache: cache, transport: transport, logger: logger)
        return client.withLock { client in
            if let client { return client }
            client = made
            return made
        }
    }
}
