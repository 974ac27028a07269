/// A request was not sent, because sending it would have given a token away or could not work.
public struct AuthenticatedHTTPError: Error, Sendable, CustomStringConvertible, Equatable {
    /// What kind of refusal this is.
    public var code: Code
    /// What went wrong and what to do. It never holds a token.
    public var message: String

    /// Creates an error.
    public init(code: Code, message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }

    /// Errors are equal when their codes are.
    public static func == (lhs: AuthenticatedHTTPError, rhs: AuthenticatedHTTPError) -> Bool { lhs.code == rhs.code }

    /// A stable error code.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Backing: String {
            case insecureURL = "insecure_url"
            case noScopeForHost = "no_scope_for_host"
        }

        private let backing: Backing
        private init(_ backing: Backing) { self.backing = backing }

        public var description: String { backing.rawValue }

        /// The URL is not https: a bearer token would cross the network in the clear.
        public static let insecureURL = Code(.insecureURL)
        /// No scope is configured for the request's host, and it is not a known Azure service.
        public static let noScopeForHost = Code(.noScopeForHost)
    }
}
