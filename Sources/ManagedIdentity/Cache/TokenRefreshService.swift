import Foundation
import Logging
import ServiceLifecycle

/// Keeps a client's tokens for some resources fresh, as a swift-service-lifecycle `Service`.
///
/// Run it in your `ServiceGroup`: it fetches each resource's token at start, then sleeps until the
/// earliest refresh time and refreshes, so callers of ``ManagedIdentityClient/token(for:options:logger:)``
/// always hit a fresh cached token. A failed refresh is logged and retried after `retryInterval`; the
/// cached token stays in use until it expires. It stops on graceful shutdown.
public struct TokenRefreshService: Service {
    let client: ManagedIdentityClient
    let resources: [String]
    let retryInterval: Duration
    let logger: Logger

    /// Creates the service.
    /// - Parameters:
    ///   - client: the client whose tokens to keep fresh.
    ///   - resources: the resources (or `/.default` scopes) to keep fresh.
    ///   - retryInterval: how long to wait after a failed refresh.
    ///   - logger: where failures are logged.
    public init(
        client: ManagedIdentityClient, resources: [String], retryInterval: Duration = .seconds(30),
        logger: Logger? = nil
    ) {
        self.client = client
        self.resources = resources
        self.retryInterval = retryInterval
        self.logger = logger ?? client.logger
    }

    /// Refreshes tokens until a graceful shutdown.
    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                let wake = await refreshDueTokens()
                let delay = max(wake.timeIntervalSince(client.clock.now), 1)
                do {
                    try await client.clock.sleep(for: .milliseconds(Int64(delay * 1000)))
                } catch {
                    return
                }
            }
        }
    }

    /// Gets every resource's token (refreshing those past their refresh time) and returns when the
    /// next one is due.
    func refreshDueTokens() async -> Date {
        var wake = client.clock.now.addingTimeInterval(24 * 3600)
        for resource in resources {
            do {
                var token = try await client.token(for: resource, logger: logger)
                if token.cacheRefreshReason == .proactivelyRefreshed {
                    await client.waitForBackgroundRefreshes()
                    token = try await client.token(for: resource, logger: logger)
                }
                let due = token.refreshOn ?? token.expiresOn.addingTimeInterval(-client.margin)
                if token.refreshOn != nil, due <= client.clock.now {
                    // The background refresh failed: the token is still the old one.
                    wake = min(wake, client.clock.now.addingTimeInterval(ManagedIdentityClient.seconds(retryInterval)))
                } else {
                    wake = min(wake, due)
                }
            } catch {
                logger.warning(
                    "keeping a token fresh failed; retrying later",
                    metadata: [
                        "managed-identity.source": "\(client.source)",
                        "managed-identity.error": "\((error as? ManagedIdentityError)?.code.rawValue ?? "\(type(of: error))")",
                    ])
                wake = min(wake, client.clock.now.addingTimeInterval(ManagedIdentityClient.seconds(retryInterval)))
            }
        }
        return wake
    }
}
