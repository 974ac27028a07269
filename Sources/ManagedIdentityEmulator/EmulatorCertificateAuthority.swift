import Crypto
import Foundation
import NIOSSL
import SwiftASN1
import X509

/// A certificate authority made at start-up and the server certificate it signs for 127.0.0.1 and
/// localhost, which the HTTPS emulators present. Workload identity writes the authority's certificate
/// as PEM, so any client (this library, Python's requests, .NET, curl) can trust it as its only root
/// without turning verification off; Service Fabric's clients pin the server certificate by its
/// SHA-1 thumbprint instead, as they pin a cluster's.
struct EmulatorCertificateAuthority: Sendable {
    let serverCertificate: NIOSSLCertificate
    let serverKey: NIOSSLPrivateKey
    /// The authority's certificate, PEM-encoded.
    let authorityPEM: String
    /// The SHA-1 of the server certificate's DER, as 40 upper-case hexadecimal characters.
    let serverThumbprint: String

    init(now: Date = Date()) throws {
        let authorityKey = P256.Signing.PrivateKey()
        let authorityName = try DistinguishedName {
            OrganizationName("swift-managed-identity emulator")
            CommonName("Managed identity emulator CA")
        }
        let authorityPublicKey = Certificate.PublicKey(authorityKey.publicKey)
        let authorityKeyID = SubjectKeyIdentifier(hash: authorityPublicKey)
        let authority = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: authorityPublicKey,
            notValidBefore: now.addingTimeInterval(-3600),
            notValidAfter: now.addingTimeInterval(30 * 86_400),
            issuer: authorityName,
            subject: authorityName,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                authorityKeyID
            },
            issuerPrivateKey: Certificate.PrivateKey(authorityKey)
        )

        let serverKey = P256.Signing.PrivateKey()
        let serverPublicKey = Certificate.PublicKey(serverKey.publicKey)
        let server = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: serverPublicKey,
            notValidBefore: now.addingTimeInterval(-3600),
            notValidAfter: now.addingTimeInterval(30 * 86_400),
            issuer: authorityName,
            subject: try DistinguishedName { CommonName("localhost") },
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.serverAuth])
                SubjectKeyIdentifier(hash: serverPublicKey)
                AuthorityKeyIdentifier(keyIdentifier: authorityKeyID.keyIdentifier)
                SubjectAlternativeNames([.dnsName("localhost"), .ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1]))])
            },
            issuerPrivateKey: Certificate.PrivateKey(authorityKey)
        )

        var serializer = DER.Serializer()
        try serializer.serialize(server)
        let der = serializer.serializedBytes
        self.serverCertificate = try NIOSSLCertificate(bytes: der, format: .der)
        self.serverThumbprint = Insecure.SHA1.hash(data: der).map { String(format: "%02X", $0) }.joined()
        self.serverKey = try NIOSSLPrivateKey(bytes: Array(serverKey.pemRepresentation.utf8), format: .pem)
        self.authorityPEM = try authority.serializeAsPEM().pemString + "\n"
    }
}
