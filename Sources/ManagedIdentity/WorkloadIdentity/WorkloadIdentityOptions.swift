/// How a client uses workload identity; only code sets these, never the environment.
public struct WorkloadIdentityOptions: Sendable {
    /// How long the token file's content is used before the file is read again (MSAL.NET: 5 minutes).
    /// The kubelet rotates the file at 80 % of the token's lifetime, at least an hour, so content
    /// read this long ago is still valid.
    public var tokenFileRereadInterval: Duration
    /// A PEM file of certificates that replace the system's trust roots for the authority: the
    /// emulator's CA (`managed-identity emulator --source workload-identity` reports its path), or a
    /// private authority's. `nil` trusts the system's roots. Verification is never turned off.
    public var trustedCertificatesFile: String?

    /// Creates options; every value has MSAL.NET's default.
    public init(tokenFileRereadInterval: Duration = .seconds(300), trustedCertificatesFile: String? = nil) {
        self.tokenFileRereadInterval = tokenFileRereadInterval
        self.trustedCertificatesFile = trustedCertificatesFile
    }
}
