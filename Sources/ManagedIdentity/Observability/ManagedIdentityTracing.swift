/// The names of the spans clients emit through swift-distributed-tracing, and of their attributes.
///
/// A client starts spans on the tracer given in ``ManagedIdentityClient/Configuration/tracer``, or on
/// the one the application bootstrapped (`InstrumentationSystem.bootstrap`), as children of the
/// caller's `ServiceContext`. A cache hit starts none. Each request to the identity endpoint is one
/// ``fetchTokenSpan`` span, with one HTTP client span per attempt (named after the method, with the
/// OpenTelemetry HTTP client attributes). No attribute ever holds a token, a secret, an Azure Arc
/// key or a query string.
public enum ManagedIdentityTracing {
    /// The span of one request for a token to the identity endpoint, retries included.
    public static let fetchTokenSpan = "managed_identity.fetch_token"

    /// The attribute names of ``fetchTokenSpan``.
    public enum Attribute {
        /// The managed identity source (the raw value of ``ManagedIdentitySource``).
        public static let source = "managed_identity.source"
        /// The identity's kind (the raw value of ``ManagedIdentityID/Kind``), never its id.
        public static let identityKind = "managed_identity.identity_kind"
        /// Why the endpoint was asked (``ManagedIdentityMetrics/LookupResult``: `miss`, `forced`, or
        /// `refresh_due` for a background refresh).
        public static let cacheOutcome = "managed_identity.cache_outcome"
        /// The correlation id sent with the request (`x-ms-client-request-id` where the source takes it).
        public static let correlationID = "managed_identity.correlation_id"
        /// How many HTTP requests the fetch sent, the Arc challenge's second leg included.
        public static let attempts = "managed_identity.attempts"
        /// Whether the fetch was a background refresh no caller waits for.
        public static let background = "managed_identity.background"
    }

    /// The OpenTelemetry HTTP client attribute names (semantic conventions 1.x) the attempt spans carry.
    public enum HTTPAttribute {
        /// The request method.
        public static let requestMethod = "http.request.method"
        /// The endpoint's host.
        public static let serverAddress = "server.address"
        /// The endpoint's port.
        public static let serverPort = "server.port"
        /// The URL without its query, which holds the resource and identity ids.
        public static let urlFull = "url.full"
        /// The URL's scheme.
        public static let urlScheme = "url.scheme"
        /// The response's status.
        public static let responseStatusCode = "http.response.status_code"
        /// How many times the request was sent before this attempt (absent on the first).
        public static let resendCount = "http.request.resend_count"
        /// The status of a failed attempt, or the kind of transport failure (`timeout`, `connection_failed`, ...).
        public static let errorType = "error.type"
    }
}
