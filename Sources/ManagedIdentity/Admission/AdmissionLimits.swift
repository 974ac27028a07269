/// How many requests a process sends to one endpoint at once, and how many it starts per second.
///
/// Single-flight makes one request per token; these limits bound the requests across tokens and
/// identities, so a service that starts with many of them stays within what the endpoint accepts
/// instead of meeting its throttling. Requests over the limits wait their turn in order, each for at
/// most ``maximumWait`` (and never after its caller's task is cancelled); a retry gives its turn back
/// while it waits and queues again.
///
/// The defaults, and why:
///
/// | endpoint | in flight | per second | why |
/// | --- | --- | --- | --- |
/// | IMDS, Azure Arc | 5 | 20 | IMDS's documented managed identity limits per VM; beyond them it answers 429. The Arc agent forwards to the same service, and documents no limits of its own. |
/// | App Service, Functions, Machine Learning, Cloud Shell, Service Fabric | 16 | none | local token services with no published limit; 16 keeps a burst from opening hundreds of connections. |
/// | Microsoft Entra ID (workload identity) | 16 | none | a remote service built for many clients; the bound is for the process's own sake. |
public struct AdmissionLimits: Sendable, Hashable {
    /// The most requests in flight at once; at least 1.
    public var maximumConcurrentRequests: Int
    /// The most requests started in any one second, or `nil` for no rate bound.
    public var maximumRequestsPerSecond: Int?
    /// The longest a request waits for its turn; past it the request fails with
    /// ``ManagedIdentityError/Code-swift.struct/requestTimeout``, saying how many were ahead of it.
    public var maximumWait: Duration

    /// Creates limits; values below 1 are taken as 1.
    public init(maximumConcurrentRequests: Int, maximumRequestsPerSecond: Int? = nil, maximumWait: Duration = .seconds(120)) {
        self.maximumConcurrentRequests = max(1, maximumConcurrentRequests)
        self.maximumRequestsPerSecond = maximumRequestsPerSecond.map { max(1, $0) }
        self.maximumWait = maximumWait
    }

    /// IMDS's managed identity limits: 5 concurrent requests and 20 per second per VM.
    public static let imds = AdmissionLimits(maximumConcurrentRequests: 5, maximumRequestsPerSecond: 20)
    /// A host's local token service without published limits (App Service, Machine Learning, Cloud
    /// Shell, Service Fabric): 16 in flight.
    public static let localService = AdmissionLimits(maximumConcurrentRequests: 16)
    /// A remote service (Microsoft Entra ID for workload identity): 16 in flight.
    public static let remoteService = AdmissionLimits(maximumConcurrentRequests: 16)
    /// No bound at all: every request goes at once. For tests against fakes, and for transports
    /// that enforce limits of their own.
    public static let unlimited = AdmissionLimits(maximumConcurrentRequests: .max)

    var isUnlimited: Bool { maximumConcurrentRequests == .max && maximumRequestsPerSecond == nil }
}
