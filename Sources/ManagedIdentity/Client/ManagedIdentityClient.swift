import Foundation
import Logging
import Synchronization

/// Gets access tokens for one managed identity from the host's managed identity source, and caches them.
///
/// ```swift
/// let client = try ManagedIdentityClient(identity: .systemAssigned)
/// let token = try await client.token(for: "https://vault.azure.net/.default")
/// ```
///
/// The source is detected from the environment when the client is created (or named in the
/// configuration); configuration mistakes (a malformed endpoint variable, an identity kind the source
/// cannot take, an empty id) throw then, before any request. Tokens are served from the ``cache``
/// while they are valid for more than the expiry margin; concurrent requests for one resource share
/// one HTTP request; past a token's refresh time the cached token is returned at once and refreshed
/// in the background.
public final class ManagedIdentityClient: Sendable {
    /// The identity this client gets tokens for.
    public let identity: ManagedIdentityID
    /// The source it gets them from.
    public let source: ManagedIdentitySource
    /// The cache it keeps them in.
    public let cache: TokenCache
    /// The partition of ``cache`` that holds this client's tokens.
    public let partitionDescriptor: TokenCachePartitionDescriptor

    let accessor: TokenCacheAccessor
    /// Where this client's requests wait for their turn at the endpoint.
    let admission: EndpointAdmission
    let clock: any ManagedIdentityClock
    let margin: TimeInterval
    let logger: Logger
    /// The last scope ending in `/.default` and its resource: services ask for the same scope on
    /// every request, and cutting the suffix allocates a new string each time.
    private let lastScope = Mutex<(scope: String, resource: String)?>(nil)

    /// A logger that discards everything: the library is silent unless given a logger.
    static let silentLogger = Logger(label: "managed-identity", factory: { _ in SwiftLogNoOpLogHandler() })

    /// Creates a client.
    /// - Parameters:
    ///   - identity: the identity to get tokens for.
    ///   - configuration: the source, environment, timeouts and clock.
    ///   - cache: where tokens are kept; ``TokenCache/shared`` (memory only) by default.
    ///   - transport: how requests are sent; ``AsyncHTTPClientTransport`` by default.
    ///   - logger: where the client logs; nothing is logged by default. No token or secret is ever logged.
    /// - Throws: ``ManagedIdentityError`` when the configuration cannot work.
    public init(
        identity: ManagedIdentityID = .systemAssigned,
        configuration: Configuration = Configuration(),
        cache: TokenCache = .shared,
        transport: any HTTPTransport = AsyncHTTPClientTransport(),
        logger: Logger? = nil
    ) throws(ManagedIdentityError) {
        let source = configuration.source ?? ManagedIdentitySource.detect(in: configuration.environment)
        let endpoint = try SourceResolver.resolve(
            source, identity: identity, environment: configuration.environment,
            options: SourceResolutionOptions(
                serviceFabricAPIVersion: configuration.serviceFabricAPIVersion,
                arcKeyDirectory: configuration.arcKeyDirectory, workloadIdentity: configuration.workloadIdentity,
                clock: configuration.clock))
        let endpointText = endpoint.endpoint.description
        // Workload identity's partition: its token URL (authority and tenant) and its client id.
        let partitionIdentity = endpoint.partitionIdentity(for: identity)
        let capabilitiesAreSent = endpoint.sendsClientCapabilities
        let key = TokenCachePartitionKey(
            source: source, endpoint: endpointText, identity: partitionIdentity,
            hostDiscriminator: configuration.hostDiscriminator ?? Self.defaultHostDiscriminator,
            clientCapabilities: capabilitiesAreSent ? configuration.clientCapabilities : [])
        let descriptor = TokenCachePartitionDescriptor(
            key: key, source: source, identity: partitionIdentity, endpoint: endpointText)

        self.identity = identity
        self.source = source
        self.cache = cache
        self.partitionDescriptor = descriptor
        self.clock = configuration.clock
        let margin = Self.seconds(configuration.expiryMargin)
        self.margin = margin
        self.logger = logger ?? Self.silentLogger
        let instruments = ClientInstruments(
            source: source, backend: cache.backend, factory: configuration.metricsFactory, tracer: configuration.tracer)
        let admission = EndpointAdmission.shared(
            origin: endpoint.endpoint.origin,
            limits: configuration.admissionLimits
                ?? (transport.isBoundByEndpointLimits ? endpoint.defaultAdmissionLimits : .unlimited))
        self.admission = admission
        let jitter: @Sendable () -> Double
        if configuration.jitterEnabled {
            jitter = { Double.random(in: 0..<1) }
        } else {
            jitter = { 0 }
        }
        let acquirer = TokenAcquirer(
            endpoint: endpoint, transport: transport, clock: configuration.clock,
            retriesEnabled: configuration.retriesEnabled, sourceWasDetected: configuration.source == nil,
            admission: admission, jitter: jitter, instruments: instruments)
        let clientCapabilities = configuration.clientCapabilities
        let requestTimeout = configuration.requestTimeout
        self.accessor = TokenCacheAccessor(
            cache: cache, descriptor: descriptor, policy: TokenCachePolicy(margin: margin), clock: configuration.clock,
            instruments: instruments, onBackgroundRefreshCompleted: configuration.onBackgroundRefreshCompleted,
            random: jitter, fetcher: { fetch, logger in
                try await acquirer.acquire(
                    TokenRequestParameters(
                        resource: fetch.resource, identity: partitionIdentity, correlationID: fetch.correlationID.string,
                        clientCapabilities: clientCapabilities, revokedTokenHash: fetch.revokedTokenHash,
                        claims: fetch.claims, timeout: requestTimeout),
                    purpose: TokenAcquirer.Purpose(lookup: fetch.lookup, background: fetch.background),
                    logger: logger)
            })
    }

    /// The key of this client's cache partition.
    public var partitionKey: TokenCachePartitionKey { partitionDescriptor.key }

    /// Gets a token for a resource.
    ///
    /// - Parameters:
    ///   - scope: the resource, or a scope ending in `/.default` (one trailing `/.default` is removed).
    ///   - options: force refresh, claims, correlation id.
    ///   - logger: a logger for this request, instead of the client's.
    /// - Returns: the token, saying whether it came from the cache or the endpoint.
    /// - Throws: ``ManagedIdentityError``, or `CancellationError` when the task is cancelled.
    public func token(
        for scope: String, options: TokenRequestOptions = TokenRequestOptions(), logger: Logger? = nil
    ) async throws -> AccessToken {
        let resource = try self.resource(fromScope: scope)
        if let token = accessor.tokenFromMemory(resource: resource, options: options, logger: logger ?? self.logger) {
            return token
        }
        return try await accessor.token(resource: resource, options: options, logger: logger ?? self.logger)
    }

    /// Waits until the background refreshes started so far have finished.
    public func waitForBackgroundRefreshes() async {
        await accessor.waitForBackgroundRefreshes()
    }

    // MARK: - Helpers

    /// ``resource(fromScope:)``, remembering the last scope that had a suffix to cut.
    @inline(__always)
    private func resource(fromScope scope: String) throws(ManagedIdentityError) -> String {
        guard Self.hasDefaultSuffix(scope) else { return try Self.validated(resource: scope) }
        if let last = lastScope.withLock({ $0 }), last.scope == scope { return last.resource }
        let resource = try Self.validated(resource: Self.droppingDefaultSuffix(scope))
        lastScope.withLock { $0 = (scope, resource) }
        return resource
    }

    @inline(__always)
    static func hasDefaultSuffix(_ scope: String) -> Bool {
        scope.utf8.reversed().starts(with: "/.default".utf8.reversed())
    }

    /// Removes one trailing `/.default`, exactly and case-sensitively, as MSAL.NET and Go do.
    static func resource(fromScope scope: String) throws(ManagedIdentityError) -> String {
        try validated(resource: hasDefaultSuffix(scope) ? droppingDefaultSuffix(scope) : scope)
    }

    /// `scope` without its last nine characters, `/.default`.
    private static func droppingDefaultSuffix(_ scope: String) -> String {
        String(scope.dropLast("/.default".count))
    }

    /// `resource`, unless it is empty or all spaces.
    @inline(__always)
    private static func validated(resource: String) throws(ManagedIdentityError) -> String {
        // A first byte that is not a space settles it without walking the characters of the resource.
        guard let first = resource.utf8.first, first > 0x20 || !resource.allSatisfy(\.isWhitespace) else {
            throw ManagedIdentityError(
                code: .invalidResource,
                message: "The resource is empty. Pass the resource (for example https://management.azure.com) "
                    + "or a scope ending in /.default.")
        }
        return resource
    }

    static func seconds(_ duration: Duration) -> TimeInterval {
        let (seconds, attoseconds) = duration.components
        return TimeInterval(seconds) + TimeInterval(attoseconds) / 1e18
    }
}
