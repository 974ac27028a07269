import TokenCredentials

/// The Azure CLI could not give a token. The message says what to do; it never holds a token.
public struct AzureCLICredentialError: TokenCredentialError, Sendable, CustomStringConvertible, Equatable {
    /// What kind of failure this is.
    public var code: Code
    /// What went wrong and what to do.
    public var message: String

    /// Creates an error.
    public init(code: Code, message: String) {
        self.code = code
        self.message = message
    }

    /// True when the CLI is not installed or nobody is signed in to it: nothing is wrong, the CLI
    /// just does not apply on this machine.
    public var credentialIsUnavailable: Bool { code == .notInstalled || code == .notSignedIn }

    public var description: String { "\(code): \(message)" }

    /// Errors are equal when their codes are.
    public static func == (lhs: AzureCLICredentialError, rhs: AzureCLICredentialError) -> Bool { lhs.code == rhs.code }

    /// A stable error code.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Backing: String {
            case notInstalled = "azure_cli_not_installed"
            case notSignedIn = "azure_cli_not_signed_in"
            case timedOut = "azure_cli_timed_out"
            case unparseableOutput = "azure_cli_unparseable_output"
            case failed = "azure_cli_failed"
            case invalidScope = "azure_cli_invalid_scope"
            case invalidTenant = "azure_cli_invalid_tenant"
            case claimsChallenge = "azure_cli_claims_challenge"
        }

        private let backing: Backing
        private init(_ backing: Backing) { self.backing = backing }

        public var description: String { backing.rawValue }

        /// No `az` executable on `PATH`.
        public static let notInstalled = Code(.notInstalled)
        /// The CLI has no signed-in account (run `az login`).
        public static let notSignedIn = Code(.notSignedIn)
        /// The CLI did not finish within the bound, and was killed.
        public static let timedOut = Code(.timedOut)
        /// The CLI printed something that is not a token.
        public static let unparseableOutput = Code(.unparseableOutput)
        /// The CLI failed for another reason; the message carries its error.
        public static let failed = Code(.failed)
        /// The scope is not one the CLI can be asked for safely (one scope, letters, digits and `-_.:/`).
        public static let invalidScope = Code(.invalidScope)
        /// The tenant id has characters a tenant id does not have.
        public static let invalidTenant = Code(.invalidTenant)
        /// A resource asked for claims; the CLI gets such a token only through an interactive sign-in.
        public static let claimsChallenge = Code(.claimsChallenge)
    }
}
