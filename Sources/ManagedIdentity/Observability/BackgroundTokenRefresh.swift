import Foundation

/// The outcome of a background refresh: the refresh a client starts when it serves a cached token
/// past its refresh time (`refresh_in`). No caller waits for it, so without this its failures would
/// only be logged; pass ``ManagedIdentityClient/Configuration/onBackgroundRefreshCompleted`` to see
/// each one (MSAL.NET's `OnBackgroundTokenRefreshCompleted`).
public struct BackgroundTokenRefresh: Sendable {
    /// The resource refreshed.
    public var resource: String
    /// The source asked.
    public var source: ManagedIdentitySource
    /// The correlation id the refresh sent.
    public var correlationID: String
    /// The new token, or why there is none.
    public var result: Result<AccessToken, any Error>
    /// After a failure, when the next background attempt for this token may start (a jittered 5 to
    /// 10 minutes later; see <doc:Observability>). `nil` after a success, and after a failure when
    /// none will be made: an error no retry mends, or too little usable time left. Callers are
    /// served the cached token meanwhile, and fetch themselves once it is no longer usable.
    public var nextAttempt: Date?

    /// Creates an outcome.
    public init(
        resource: String, source: ManagedIdentitySource, correlationID: String, result: Result<AccessToken, any Error>,
        nextAttempt: Date? = nil
    ) {
        self.resource = resource
        self.source = source
        self.correlationID = correlationID
        self.result = result
        self.nextAttempt = nextAttempt
    }

    /// Whether the refresh got a token (from the endpoint, or stored meanwhile by another process).
    public var succeeded: Bool {
        if case .success = result { return true }
        return false
    }
}
