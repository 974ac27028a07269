/// The names and dimensions of the metrics clients emit through swift-metrics.
///
/// Clients use the factory given in ``ManagedIdentityClient/Configuration/metricsFactory``, or the one
/// the application bootstrapped with `MetricsSystem.bootstrap` (bootstrap it before creating clients:
/// a client makes its metrics once, when it is created). Dimensions are few and bounded: a source, a
/// result, an outcome, a hook, a backend type. No identity id, resource, token or secret is ever a
/// dimension.
///
/// The labels are stable; dashboards and alerts may depend on them. See <doc:Observability> for what
/// each one means and what to alert on.
public enum ManagedIdentityMetrics {
    /// Counter: token requests answered by a client, by `source` and `result` (``LookupResult``).
    /// Hit ratio = `hit` + `refresh_due` over all.
    public static let tokenLookups = "managed_identity_token_lookups_total"
    /// Counter: requests to the identity endpoint (one per token fetched, retries included), by
    /// `source` and `outcome`: `success`, the final HTTP status of a failed request (`400`, `429`, ...;
    /// `4xx`/`5xx` for rarer ones), or the error code when no usable answer came
    /// (`managed_identity_unreachable_network`, `request_timeout`, ...).
    public static let endpointRequests = "managed_identity_endpoint_requests_total"
    /// Timer (nanoseconds): how long a request to the endpoint took, retries and their waits
    /// included, by `source`.
    public static let endpointRequestDuration = "managed_identity_endpoint_request_duration"
    /// Counter: retries of requests to the endpoint, by `source` and `reason` (the status retried,
    /// such as `410` or `429`, or `timeout`).
    public static let endpointRetries = "managed_identity_endpoint_retries_total"
    /// Counter: background refreshes that failed, by `source` and `error` (the error code). No caller
    /// sees these: the cached token stays in use until it expires.
    public static let backgroundRefreshFailures = "managed_identity_background_refresh_failures_total"
    /// Recorder (seconds): after a failed background refresh, how long until the next attempt for
    /// that token (a jittered 5 to 10 minutes, shorter when the token's usable time is short), by
    /// `source`. Callers keep the cached token meanwhile.
    public static let backgroundRefreshBackoff = "managed_identity_background_refresh_backoff_seconds"
    /// Timer (nanoseconds): how long a request waited for its turn at the endpoint's admission
    /// limits (``AdmissionLimits``), by `source`; recorded only for requests that had to wait.
    public static let admissionWait = "managed_identity_admission_wait_duration"
    /// Meter: requests waiting for their turn at the endpoint's admission limits now, by `source`.
    public static let admissionQueueDepth = "managed_identity_admission_queue_depth"
    /// Counter: cache backend hooks that threw, by `backend` (the backend's type name) and `hook`
    /// (`beforeAccess`, `beforeWrite`, `afterAccess`, `coordinateRefresh`). A cache that stopped
    /// persisting shows here.
    public static let backendFailures = "managed_identity_cache_backend_failures_total"
    /// Recorder (seconds): how long the token handed to a caller has left before it expires, by
    /// `source`. Values near the expiry margin mean refreshes are not happening.
    public static let tokenExpiresIn = "managed_identity_token_expires_in_seconds"
    /// Counter: fetches coordinated across processes or hosts by the backend, by `backend` and
    /// `outcome`: `found` when another process or request stored the token while this one waited (a
    /// request saved), `fetched` when this one asked the endpoint.
    public static let coordinatedFetches = "managed_identity_cache_coordinated_fetches_total"
    /// Timer (nanoseconds): how long a fetch waited for the backend's cross-process coordination
    /// (its refresh lock) before it could look again or fetch, by `backend`.
    public static let coordinationWait = "managed_identity_cache_coordination_wait_duration"

    /// The dimension names.
    public enum Dimension {
        /// The managed identity source (the raw value of ``ManagedIdentitySource``).
        public static let source = "source"
        /// What a lookup found (``LookupResult``).
        public static let result = "result"
        /// How a request or a coordinated fetch ended.
        public static let outcome = "outcome"
        /// Why a request was retried.
        public static let reason = "reason"
        /// The error code of a failed background refresh.
        public static let error = "error"
        /// The backend hook that failed.
        public static let hook = "hook"
        /// The cache backend's type name.
        public static let backend = "backend"
    }

    /// What a token lookup found.
    public enum LookupResult: String, Sendable, CaseIterable {
        /// A valid cached token, served.
        case hit
        /// A cached token past its refresh time, served while a background refresh starts.
        case refreshDue = "refresh_due"
        /// No usable token: the endpoint is asked.
        case miss
        /// The caller forced a refresh or passed claims: the endpoint is asked.
        case forced
    }
}
