/// The one error type of this library.
///
/// Match on ``code`` (its raw value is the stable MSAL error code, such as
/// `managed_identity_request_failed`), read ``message`` for what went wrong and what to do, and
/// ``statusCode``, ``source`` and ``correlationID`` for the details. No token, `IDENTITY_HEADER`,
/// `MSI_SECRET` or Azure Arc key ever appears in an error.
public struct ManagedIdentityError: Error, Sendable, CustomStringConvertible, Equatable {
    /// The stable error code.
    public var code: Code
    /// What went wrong and, where there is something to do, what to do.
    public var message: String
    /// The managed identity source involved, when one was.
    public var source: ManagedIdentitySource?
    /// The HTTP status of the endpoint's final response, when there was one.
    public var statusCode: Int?
    /// The correlation id the endpoint put in its error body, for its operators' telemetry.
    public var correlationID: String?
    /// The correlation id this library sent (`x-ms-client-request-id` on IMDS), for the caller's logs.
    public var clientRequestID: String?
    /// Microsoft Entra's error codes (the numbers of `AADSTS700213`), when workload identity's token
    /// exchange was refused; empty otherwise.
    public var entraErrorCodes: [Int] = []
    /// Microsoft Entra's `trace_id`, which its support asks for beside ``correlationID``.
    public var traceID: String?

    /// Creates an error.
    public init(
        code: Code,
        message: String,
        source: ManagedIdentitySource? = nil,
        statusCode: Int? = nil,
        correlationID: String? = nil,
        clientRequestID: String? = nil
    ) {
        self.code = code
        self.message = message
        self.source = source
        self.statusCode = statusCode
        self.correlationID = correlationID
        self.clientRequestID = clientRequestID
    }

    /// Whether retrying later may succeed: true for the statuses MSAL treats as transient
    /// (404, 408, 429, 500, 503, 504), for timeouts and for unreachable endpoints.
    public var isRetryable: Bool {
        if code == .requestTimeout || code == .unreachableNetwork { return true }
        guard let statusCode else { return false }
        return [404, 408, 429, 500, 503, 504].contains(statusCode)
    }

    public var description: String { "\(code): \(message)" }

    /// Errors are equal when their codes are equal, so tests and callers can compare with a constant.
    public static func == (lhs: ManagedIdentityError, rhs: ManagedIdentityError) -> Bool {
        lhs.code == rhs.code
    }

    /// A stable error code. Its ``rawValue`` is the MSAL spelling.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Backing: String {
            case requestFailed = "managed_identity_request_failed"
            case responseParseFailure = "managed_identity_response_parse_failure"
            case unreachableNetwork = "managed_identity_unreachable_network"
            case requestTimeout = "request_timeout"
            case invalidEndpoint = "invalid_managed_identity_endpoint"
            case missingEnvironmentVariable = "missing_managed_identity_env_var"
            case userAssignedNotSupported = "user_assigned_managed_identity_not_supported"
            case userAssignedNotConfigurableAtRuntime = "user_assigned_managed_identity_not_configurable_at_runtime"
            case invalidIDType = "invalid_managed_identity_id_type"
            case invalidManagedIdentityID = "invalid_managed_identity_id"
            case invalidResource = "invalid_resource"
            case invalidTokenProviderResponseValue = "invalid_token_provider_response_value"
            case invalidTimestampFormat = "invalid_timestamp_format"
            case invalidAuthority = "invalid_authority"
            case federatedTokenFileUnreadable = "federated_token_file_unreadable"
            case invalidTrustedCertificates = "invalid_trusted_certificates"
        }

        private let backing: Backing

        private init(_ backing: Backing) { self.backing = backing }

        /// The MSAL spelling of the code.
        public var rawValue: String { backing.rawValue }
        public var description: String { backing.rawValue }

        /// The endpoint answered with an error, or with a success that lacks required fields, or the
        /// Azure Arc challenge could not be followed.
        public static let requestFailed = Code(.requestFailed)
        /// The endpoint answered 200 with a body that is not JSON.
        public static let responseParseFailure = Code(.responseParseFailure)
        /// The endpoint could not be reached (connection refused, no route, TLS pin mismatch).
        public static let unreachableNetwork = Code(.unreachableNetwork)
        /// The endpoint did not answer in time, after retries.
        public static let requestTimeout = Code(.requestTimeout)
        /// An endpoint variable (`IDENTITY_ENDPOINT`, `MSI_ENDPOINT`, `AZURE_POD_IDENTITY_AUTHORITY_HOST`,
        /// `IDENTITY_SERVER_THUMBPRINT`) is malformed.
        public static let invalidEndpoint = Code(.invalidEndpoint)
        /// A source was named explicitly but the variables it needs are not set.
        public static let missingEnvironmentVariable = Code(.missingEnvironmentVariable)
        /// The source does not take a user-assigned identity (Cloud Shell), or Azure Arc did not
        /// confirm the requested one.
        public static let userAssignedNotSupported = Code(.userAssignedNotSupported)
        /// Service Fabric was given a client id or a resource id; it takes only an object id.
        public static let userAssignedNotConfigurableAtRuntime = Code(.userAssignedNotConfigurableAtRuntime)
        /// Machine Learning was given a resource id or an object id, or `DEFAULT_IDENTITY_CLIENT_ID` is unset.
        public static let invalidIDType = Code(.invalidIDType)
        /// A user-assigned identity was given an empty id.
        public static let invalidManagedIdentityID = Code(.invalidManagedIdentityID)
        /// The resource or scope is empty.
        public static let invalidResource = Code(.invalidResource)
        /// The token's lifetime is zero or negative, or its access token is empty.
        public static let invalidTokenProviderResponseValue = Code(.invalidTokenProviderResponseValue)
        /// The endpoint's `expires_on` is in no known format.
        public static let invalidTimestampFormat = Code(.invalidTimestampFormat)
        /// `AZURE_AUTHORITY_HOST` is not an https URL, or `AZURE_TENANT_ID` cannot be a path segment.
        public static let invalidAuthority = Code(.invalidAuthority)
        /// Workload identity's token file (`AZURE_FEDERATED_TOKEN_FILE`) is missing, empty, unreadable
        /// or not text; the message names the path.
        public static let federatedTokenFileUnreadable = Code(.federatedTokenFileUnreadable)
        /// The file of certificates to trust for the authority cannot be read or holds no PEM certificate.
        public static let invalidTrustedCertificates = Code(.invalidTrustedCertificates)
    }
}

extension ManagedIdentityError {
    /// Prefixes MSAL's marker so messages read the same as in the other libraries.
    static func requestFailed(
        _ message: String,
        source: ManagedIdentitySource,
        statusCode: Int? = nil,
        correlationID: String? = nil
    ) -> ManagedIdentityError {
        ManagedIdentityError(
            code: .requestFailed,
            message: "[Managed Identity] " + message,
            source: source,
            statusCode: statusCode,
            correlationID: correlationID
        )
    }
}
