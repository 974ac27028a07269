/// What a token is asked for: the scopes, and the options of one request.
public struct TokenRequestContext: Sendable, Hashable {
    /// The scopes, such as `https://vault.azure.net/.default`. Managed identity and the Azure CLI
    /// take exactly one.
    public var scopes: [String]
    /// The claims a resource asked for in a Continuous Access Evaluation challenge, as JSON (already
    /// decoded from the challenge's base64url). A credential given claims does not serve a cached token.
    public var claims: String?
    /// The tenant to get the token from, for credentials that can choose one (the Azure CLI); managed
    /// identity ignores it, since an identity belongs to one tenant.
    public var tenantID: String?
    /// The id sent to the token service and written to logs to tie this request to its callers; a
    /// credential makes one when `nil`.
    public var correlationID: String?

    /// Creates a context.
    public init(scopes: [String], claims: String? = nil, tenantID: String? = nil, correlationID: String? = nil) {
        self.scopes = scopes
        self.claims = claims
        self.tenantID = tenantID
        self.correlationID = correlationID
    }
}
