import Synchronization

/// Says which source this host offers and whether it answers, as MSAL.NET's
/// `GetManagedIdentityCapabilitiesAsync` does: the environment first (every source but IMDS is named
/// by its variables or, for Azure Arc, its installed agent), then one probe of IMDS.
///
/// The probe is a `GET` of the token path **without** the `Metadata` header: IMDS refuses it with
/// 400, and a 400 means IMDS is there. It has a short timeout, is never retried, goes only to the
/// IMDS base (`AZURE_POD_IDENTITY_AUTHORITY_HOST` moves it), and runs once per discovery object:
/// concurrent callers share it, and the answer, "none" included, is kept. ``shared`` is the
/// process's. Getting a token never probes; discovery is for deciding whether to try.
///
/// ```swift
/// let capabilities = await ManagedIdentityDiscovery.shared.capabilities()
/// if let source = capabilities.source { ... } else { print(capabilities.reason) }
/// ```
public final class ManagedIdentityDiscovery: Sendable {
    /// The process's discovery, over its environment and the default transport.
    public static let shared = ManagedIdentityDiscovery()

    /// The resource named in the probe; IMDS refuses the probe before it looks at it.
    static let probeResource = "https://management.azure.com"

    private let environment: ManagedIdentityEnvironment
    private let transport: any HTTPTransport
    private let probeTimeout: Duration
    private let answer = Mutex<Task<ManagedIdentityCapabilities, Never>?>(nil)

    /// Creates a discovery of its own (tests, or another environment); most code uses ``shared``.
    /// - Parameters:
    ///   - environment: where the source variables are read.
    ///   - transport: how the probe is sent.
    ///   - probeTimeout: how long the probe may take (1 s, as azure-identity's chain; IMDS's staff
    ///     suggest 2-5 s on busy hosts).
    public init(
        environment: ManagedIdentityEnvironment = .current, transport: any HTTPTransport = AsyncHTTPClientTransport(),
        probeTimeout: Duration = .seconds(1)
    ) {
        self.environment = environment
        self.transport = transport
        self.probeTimeout = probeTimeout
    }

    /// What this host offers. The first call decides (probing IMDS if the environment names no
    /// source); every later or concurrent call gets the same answer without sending anything.
    public func capabilities() async -> ManagedIdentityCapabilities {
        let task = answer.withLock { task in
            if let task { return task }
            let environment = environment, transport = transport, timeout = probeTimeout
            let started = Task { await Self.discover(environment: environment, transport: transport, timeout: timeout) }
            task = started
            return started
        }
        return await task.value
    }

    static func discover(
        environment: ManagedIdentityEnvironment, transport: any HTTPTransport, timeout: Duration
    ) async -> ManagedIdentityCapabilities {
        let detected = ManagedIdentitySource.detect(in: environment)
        guard detected == .imds else {
            return ManagedIdentityCapabilities(source: detected, reason: ManagedIdentitySource.detectionReason(in: environment))
        }
        let endpoint: IMDSEndpoint
        do {
            endpoint = try IMDSEndpoint(environment: environment)
        } catch {
            return ManagedIdentityCapabilities(source: nil, reason: error.message)
        }
        let base = endpoint.endpoint
        let request = HTTPTransportRequest(
            method: "GET", scheme: base.scheme, host: base.host, port: base.port, path: base.path,
            query: [
                QueryItem(name: "api-version", value: IMDSEndpoint.apiVersion),
                QueryItem(name: "resource", value: probeResource),
            ],
            headers: [], timeout: timeout)
        let probe: ManagedIdentityCapabilities.ProbeResult
        do {
            probe = .answered(status: try await transport.send(request).status)
        } catch {
            probe = error.kind == .timeout ? .timedOut : .unreachable(error.message)
        }
        var capabilities = ManagedIdentityCapabilities.fromProbe(probe, origin: request.origin)
        if environment.value(ManagedIdentityVariable.podIdentityAuthorityHost) != nil {
            capabilities.reason += " (its address is from \(ManagedIdentityVariable.podIdentityAuthorityHost))"
        }
        return capabilities
    }
}
