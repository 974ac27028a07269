import Crypto

/// The key of one cache partition: every token of one identity, at one endpoint, on one host.
///
/// It is a versioned, pure function of the source kind, the endpoint, the identity kind and id, the
/// client capabilities, and for a system-assigned identity a host discriminator (two hosts' system
/// identities must never share tokens, whatever cache they share). The inputs are length-prefixed
/// before hashing, so no two different inputs encode alike, and the key holds no user text: it is
/// `mi1-` followed by 64 hexadecimal characters, safe as a file name or a database key.
public struct TokenCachePartitionKey: Hashable, Sendable, CustomStringConvertible, Comparable {
    /// The version of the key function; it changes only with a migration.
    public static let version = 1
    static let prefix = "mi1-"

    /// The key's text.
    public let rawValue: String

    /// Computes the key of a partition.
    /// - Parameters:
    ///   - source: the managed identity source.
    ///   - endpoint: the source's endpoint URL.
    ///   - identity: the identity.
    ///   - hostDiscriminator: what tells this host from others; used for the system-assigned identity only.
    ///   - clientCapabilities: the capabilities sent with requests; tokens differ with them.
    public init(
        source: ManagedIdentitySource,
        endpoint: String,
        identity: ManagedIdentityID,
        hostDiscriminator: String,
        clientCapabilities: [String] = []
    ) {
        let components = [
            "managed-identity-cache-partition",
            String(Self.version),
            source.rawValue,
            endpoint,
            identity.kind.rawValue,
            identity.id ?? "",
            identity == .systemAssigned ? hostDiscriminator : "",
            clientCapabilities.sorted().joined(separator: ","),
        ]
        var encoded: [UInt8] = []
        for component in components {
            let bytes = Array(component.utf8)
            encoded.append(contentsOf: Array(String(bytes.count).utf8))
            encoded.append(UInt8(ascii: ":"))
            encoded.append(contentsOf: bytes)
        }
        let digest = SHA256.hash(data: encoded)
        rawValue = Self.prefix + Hex.encode(digest)
    }

    /// Reads a key back, as stored by a backend.
    /// - Returns: `nil` when the text is not a well-formed key of this version.
    public init?(rawValue: String) {
        guard rawValue.utf8.count == Self.prefix.utf8.count + 64, rawValue.hasPrefix(Self.prefix),
            rawValue.utf8.dropFirst(Self.prefix.utf8.count).allSatisfy({
                (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains($0)
            })
        else { return nil }
        self.rawValue = rawValue
    }

    public var description: String { rawValue }

    public static func < (lhs: TokenCachePartitionKey, rhs: TokenCachePartitionKey) -> Bool {
        lhs.rawValue < rhs.rawValue
    }
}
