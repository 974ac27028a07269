/// No credential of a ``ChainedTokenCredential`` gave a token; ``attempts`` says why, one by one.
public struct ChainedTokenCredentialError: Error, Sendable, CustomStringConvertible {
    /// One credential's attempt.
    public struct Attempt: Sendable {
        /// The credential's type.
        public var credential: String
        /// What it threw.
        public var error: any Error
        /// Whether the credential cannot work on this host at all (its error is a
        /// ``TokenCredentialError`` that says so), rather than having tried and failed.
        public var wasUnavailable: Bool { (error as? any TokenCredentialError)?.credentialIsUnavailable ?? false }
    }

    /// Every credential's attempt, in the chain's order.
    public var attempts: [Attempt]

    /// One line per attempt, then what to do.
    public var description: String {
        guard !attempts.isEmpty else { return "The credential chain is empty: give it at least one credential." }
        var lines = ["No credential in the chain gave a token:"]
        for attempt in attempts {
            let reason = (attempt.error as? CredentialUnavailableError)?.message ?? "\(attempt.error)"
            lines.append("- \(attempt.credential)\(attempt.wasUnavailable ? " (unavailable)" : ""): \(reason)")
        }
        lines.append(
            "In Azure, check the managed identity (managed-identity doctor says which source this host offers); "
                + "on a developer's machine, run az login.")
        return lines.joined(separator: "\n")
    }
}
