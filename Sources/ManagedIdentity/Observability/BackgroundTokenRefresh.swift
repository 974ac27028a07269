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

    /// Creates an outcome.
    public init(resource: String, source: ManagedIdentitySource, correlationID: String, result: Result<AccessToken, any Error>) {
        self.resource = resource
        self.source = source
        self.correlationID = correlationID
        self.result = result
    }

    /// Whether the refresh got a token (from the endpoint, or stored meanwhile by another process).
    public var succeeded: Bool {
        if case .success = result { return true }
        return false
    }
}
