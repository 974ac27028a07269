/// What a host offers for getting tokens, as ``ManagedIdentityDiscovery`` found it: the source (or
/// none), why, and the IMDS probe's answer when one was sent.
public struct ManagedIdentityCapabilities: Sendable, Equatable, CustomStringConvertible {
    /// The source this host offers, or `nil` when it offers none.
    public var source: ManagedIdentitySource?
    /// Why, in a sentence naming the variables that decided it (never their values) or the probe's answer.
    public var reason: String
    /// The IMDS probe's answer; `nil` when the environment named a source and nothing was sent.
    public var probe: ProbeResult?

    /// Whether a source is available.
    public var isAvailable: Bool { source != nil }

    /// Creates capabilities.
    public init(source: ManagedIdentitySource?, reason: String, probe: ProbeResult? = nil) {
        self.source = source
        self.reason = reason
        self.probe = probe
    }

    public var description: String { (source?.rawValue ?? "none") + ": " + reason }

    /// What the one IMDS probe got.
    public enum ProbeResult: Sendable, Equatable, CustomStringConvertible {
        /// Something answered with this status. Only 400 (a request without the `Metadata` header) is IMDS.
        case answered(status: Int)
        /// Nothing listens there, or the connection failed; the transport's words.
        case unreachable(String)
        /// Nothing answered within the probe's timeout.
        case timedOut

        public var description: String {
            switch self {
            case .answered(let status): "answered HTTP \(status)"
            case .unreachable(let message): "unreachable (\(message))"
            case .timedOut: "no answer in time"
            }
        }
    }

    /// The decision from a probe's result: IMDS is there exactly when it answered 400 ("Required
    /// metadata header not specified"), as MSAL.NET decides.
    static func fromProbe(_ probe: ProbeResult, origin: String) -> ManagedIdentityCapabilities {
        switch probe {
        case .answered(status: 400):
            return ManagedIdentityCapabilities(
                source: .imds,
                reason: "no source variable is set, and the Instance Metadata Service at \(origin) answered the probe "
                    + "as IMDS does (HTTP 400 to a request without the Metadata header)",
                probe: probe)
        case .answered(let status):
            return ManagedIdentityCapabilities(
                source: nil,
                reason: "no source variable is set, and \(origin) answered the probe with HTTP \(status), which is not "
                    + "how the Instance Metadata Service answers (HTTP 400)",
                probe: probe)
        case .unreachable(let message):
            return ManagedIdentityCapabilities(
                source: nil,
                reason: "no source variable is set, and the Instance Metadata Service at \(origin) cannot be reached "
                    + "(\(message)): this host is not an Azure VM, or its identity endpoint is blocked",
                probe: probe)
        case .timedOut:
            return ManagedIdentityCapabilities(
                source: nil,
                reason: "no source variable is set, and the Instance Metadata Service at \(origin) did not answer the "
                    + "probe in time: this host is not an Azure VM, its identity endpoint is blocked, or it is very busy",
                probe: probe)
        }
    }
}
