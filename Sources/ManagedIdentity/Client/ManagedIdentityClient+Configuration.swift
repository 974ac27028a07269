import CoreMetrics
import Foundation
import Tracing

extension ManagedIdentityClient {
    /// How a client finds its source and behaves.
    public struct Configuration: Sendable {
        /// The source to use; `nil` detects it from ``environment`` (MSAL.NET's precedence).
        public var source: ManagedIdentitySource?
        /// The environment detection and the sources read.
        public var environment: ManagedIdentityEnvironment
        /// Client capabilities (such as `cp1`), sent to Service Fabric as `xms_cc`.
        public var clientCapabilities: [String]
        /// The Service Fabric api-version.
        public var serviceFabricAPIVersion: ServiceFabricAPIVersion
        /// How long one HTTP exchange may take.
        public var requestTimeout: Duration
        /// Whether failed requests are retried per the source's policy.
        public var retriesEnabled: Bool
        /// Whether retry delays and background-refresh back-offs are jittered (the default): retries
        /// wait between MSAL's delay and half as much again, so callers that failed together do not
        /// return together. `false` uses the exact delays, for tests that assert them.
        public var jitterEnabled: Bool
        /// How many requests this process sends to the endpoint at once and per second; `nil` uses
        /// the source's defaults (IMDS: 5 at once and 20 per second, as it allows). Clients of one
        /// endpoint with equal limits share them. See ``AdmissionLimits``.
        public var admissionLimits: AdmissionLimits?
        /// A cached token is served only while it is valid for longer than this (MSAL: 5 minutes).
        public var expiryMargin: Duration
        /// The time source: wall clock for expiry, sleeping between retries.
        public var clock: any ManagedIdentityClock
        /// The directory Azure Arc key files must be in. `nil` means the platform's
        /// (`/var/opt/azcmagent/tokens` on Linux). Only code can set it: no environment variable does,
        /// so an attacker who controls the environment cannot point the client at other files.
        public var arcKeyDirectory: String?
        /// Workload identity's token file re-read interval and the certificates to trust for its authority.
        public var workloadIdentity: WorkloadIdentityOptions
        /// What tells this host from others in the partition key of the system-assigned identity.
        /// `nil` uses the host name and `/etc/machine-id`.
        public var hostDiscriminator: String?
        /// Where the client's metrics go (see ``ManagedIdentityMetrics``); `nil` uses the factory the
        /// application bootstrapped with `MetricsSystem.bootstrap`, or none.
        public var metricsFactory: (any MetricsFactory)?
        /// Where the client's spans go (see ``ManagedIdentityTracing``); `nil` uses the tracer the
        /// application bootstrapped with `InstrumentationSystem.bootstrap`, or none.
        public var tracer: (any Tracer)?
        /// Called when a background refresh ends, with its token or its error. It runs on the
        /// refresh's task: keep it short, and do not wait in it for a token of the same client.
        public var onBackgroundRefreshCompleted: (@Sendable (BackgroundTokenRefresh) -> Void)?

        /// Creates a configuration; every value has MSAL's default.
        public init(
            source: ManagedIdentitySource? = nil,
            environment: ManagedIdentityEnvironment = .current,
            clientCapabilities: [String] = [],
            serviceFabricAPIVersion: ServiceFabricAPIVersion = .v2020_05_01,
            requestTimeout: Duration = .seconds(30),
            retriesEnabled: Bool = true,
            jitterEnabled: Bool = true,
            admissionLimits: AdmissionLimits? = nil,
            expiryMargin: Duration = .seconds(300),
            clock: any ManagedIdentityClock = SystemClock(),
            arcKeyDirectory: String? = nil,
            workloadIdentity: WorkloadIdentityOptions = WorkloadIdentityOptions(),
            hostDiscriminator: String? = nil,
            metricsFactory: (any MetricsFactory)? = nil,
            tracer: (any Tracer)? = nil,
            onBackgroundRefreshCompleted: (@Sendable (BackgroundTokenRefresh) -> Void)? = nil
        ) {
            self.source = source
            self.environment = environment
            self.clientCapabilities = clientCapabilities
            self.serviceFabricAPIVersion = serviceFabricAPIVersion
            self.requestTimeout = requestTimeout
            self.retriesEnabled = retriesEnabled
            self.jitterEnabled = jitterEnabled
            self.admissionLimits = admissionLimits
            self.expiryMargin = expiryMargin
            self.clock = clock
            self.arcKeyDirectory = arcKeyDirectory
            self.workloadIdentity = workloadIdentity
            self.hostDiscriminator = hostDiscriminator
            self.metricsFactory = metricsFactory
            self.tracer = tracer
            self.onBackgroundRefreshCompleted = onBackgroundRefreshCompleted
        }
    }

    /// This host's discriminator: its name and its machine id, which together tell apart hosts that
    /// share a cache directory or database (containers from one image share a machine id; their
    /// host names differ). Backends that keep tokens per host (PostgreSQL's, by default) use it as
    /// their host id unless told another.
    public static let defaultHostDiscriminator: String = {
        var name = [UInt8](repeating: 0, count: 256)
        let hostName =
            name.withUnsafeMutableBufferPointer { buffer in
                buffer.withMemoryRebound(to: CChar.self) { chars in
                    guard let base = chars.baseAddress else { return -1 }
                    return gethostname(base, chars.count)
                }
            } == 0 ? String(decoding: name.prefix { $0 != 0 }, as: UTF8.self) : "" 
        let machineID =
            (try? String(contentsOfFile: "/etc/machine-id", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        return hostName + "|" + machineID
    }()
}
