import Foundation
import ManagedIdentityTesting

/// The files the workload identity emulator writes: its CA certificate and the federated token file.
enum WorkloadIdentityFiles {
    static let caFileName = "ca.pem"
    static let tokenFileName = "azure-identity-token"

    /// The directory, made private (0700) if it does not exist; a fresh temporary one when `nil`.
    static func prepare(directory: String?) throws -> (directory: String, owned: Bool) {
        let manager = FileManager.default
        if let directory {
            try manager.createDirectory(
                atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            return (directory, false)
        }
        let fresh = manager.temporaryDirectory
            .appendingPathComponent("managed-identity-emulator-wi-" + UUID().uuidString.lowercased()).path
        try manager.createDirectory(atPath: fresh, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        return (fresh, true)
    }

    /// Writes a file whole: a temporary file beside it, renamed over it, so a reader never sees half
    /// a token (the kubelet swaps a symbolic link for the same reason).
    static func write(_ text: String, to path: String, mode: Int) throws {
        let temporary = path + ".tmp-" + UUID().uuidString.lowercased()
        guard FileManager.default.createFile(atPath: temporary, contents: Data(text.utf8), attributes: [.posixPermissions: mode]) else {
            throw EmulatorError(message: "The emulator could not write \(path).")
        }
        guard rename(temporary, path) == 0 else {
            try? FileManager.default.removeItem(atPath: temporary)
            throw EmulatorError(message: "The emulator could not write \(path).")
        }
    }

    /// A JWT-shaped Kubernetes service-account token, as the webhook projects it: the claims are
    /// real in shape, the signature is random (the emulated Entra ID checks the content, not a key).
    static func serviceAccountToken(issuedAt: Date, expires: Date) -> String {
        let header = JSONText.object([("alg", "RS256"), ("kid", "managed-identity-emulator"), ("typ", "JWT")])
        let issued = Int(issuedAt.timeIntervalSince1970)
        let payload = JSONText.object([
            ("aud", ["api://AzureADTokenExchange"]), ("exp", Int(expires.timeIntervalSince1970)), ("iat", issued),
            ("iss", "https://oidc.emulator.invalid/"), ("jti", UUID().uuidString.lowercased()), ("nbf", issued),
            ("sub", "system:serviceaccount:default:workload-identity-sa"),
        ])
        var generator = SystemRandomNumberGenerator()
        let signature = (0..<64).map { _ in UInt8.random(in: 0...255, using: &generator) }
        return Base64URL.encode(Array(header.utf8)) + "." + Base64URL.encode(Array(payload.utf8)) + "."
            + Base64URL.encode(signature)
    }
}
