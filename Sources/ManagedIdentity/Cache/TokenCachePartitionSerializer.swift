import Foundation

/// Exports and imports the in-memory copy of one partition, for a backend.
///
/// The exported form is UTF-8 JSON in MSAL's cache schema (an `AccessToken` section whose entries
/// carry `secret`, `target`, `expires_on`, ... as epoch-second strings), plus a
/// `ManagedIdentityPartition` section holding the format version and the partition key. Importing
/// replaces the partition; a document of another partition, of an unknown version, or malformed, is
/// refused with ``TokenCacheSerializationError`` and changes nothing.
public struct TokenCachePartitionSerializer: Sendable {
    let partition: CachePartition

    /// The partition this serializer reads and writes.
    public var descriptor: TokenCachePartitionDescriptor { partition.descriptor }

    /// The partition's entries.
    public var entries: [TokenCacheEntry] { partition.entries }

    /// The version the backend attached when it last loaded or stored the partition.
    public var loadedVersion: TokenCacheVersion? { partition.loadedVersion }

    /// Replaces the partition's entries; entries of another partition are dropped.
    /// - Returns: how many entries were dropped.
    @discardableResult
    public func replaceEntries(_ entries: [TokenCacheEntry], version: TokenCacheVersion?) -> Int {
        partition.replace(with: entries, version: version)
    }

    /// Records the version of the stored copy the in-memory partition now matches.
    public func markLoaded(version: TokenCacheVersion?) {
        partition.setLoadedVersion(version)
    }

    /// The partition as versioned JSON.
    public func export() -> [UInt8] {
        PartitionDocument.encode(descriptor: descriptor, entries: partition.entries)
    }

    /// Replaces the partition with a document produced by ``export()``.
    public func `import`(_ bytes: [UInt8], version: TokenCacheVersion? = nil) throws(TokenCacheSerializationError) {
        let decoded = try PartitionDocument.decode(bytes)
        guard decoded.partitionKey == descriptor.key else {
            throw TokenCacheSerializationError(
                kind: .partitionMismatch,
                message: "The document holds partition \(decoded.partitionKey), not \(descriptor.key).")
        }
        partition.replace(with: decoded.entries, version: version)
    }
}

/// Why a partition document could not be read.
public struct TokenCacheSerializationError: Error, Sendable, CustomStringConvertible {
    /// The kinds of failure.
    public enum Kind: Sendable, Hashable {
        /// Not JSON, or a field is missing or of the wrong type.
        case malformed
        /// Written by a newer (or unknown) format version.
        case unsupportedVersion
        /// The document belongs to another partition.
        case partitionMismatch
    }

    /// What went wrong.
    public var kind: Kind
    /// A description, without any token.
    public var message: String

    /// Creates an error.
    public init(kind: Kind, message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}

/// The JSON form of a partition, in MSAL's cache schema with a section of our own.
public enum PartitionDocument {
    /// The format version written; documents of other versions are refused.
    public static let formatVersion = 1

    /// Encodes entries of one partition.
    public static func encode(descriptor: TokenCachePartitionDescriptor, entries: [TokenCacheEntry]) -> [UInt8] {
        var accessTokens: [String: AccessTokenRecord] = [:]
        let clientID = descriptor.identity.id ?? "system_assigned_managed_identity"
        for entry in entries {
            let record = AccessTokenRecord(
                credentialType: "AccessToken",
                secret: entry.accessToken,
                environment: "managed_identity",
                clientID: clientID,
                realm: "managed_identity",
                target: entry.resource,
                tokenType: entry.tokenType,
                cachedAt: epochString(entry.cachedAt),
                expiresOn: epochString(entry.expiresOn),
                extendedExpiresOn: epochString(entry.expiresOn),
                refreshOn: entry.refreshOn.map(epochString)
            )
            let key = ["", "managed_identity", "accesstoken", clientID, "managed_identity", entry.resource, entry.tokenType]
                .joined(separator: "-").lowercased()
            accessTokens[key] = record
        }
        let document = Document(
            accessToken: accessTokens,
            partition: Header(
                version: formatVersion,
                partitionKey: descriptor.key.rawValue,
                source: descriptor.source.rawValue,
                identityKind: descriptor.identity.kind.rawValue,
                identityID: descriptor.identity.id,
                endpoint: descriptor.endpoint
            )
        )
        // Encoding these plain string fields cannot fail.
        return (try? Array(JSONEncoder().encode(document))) ?? []
    }

    /// A decoded document.
    public struct Decoded: Sendable {
        /// The partition the document holds.
        public var partitionKey: TokenCachePartitionKey
        /// What the partition belongs to.
        public var descriptor: TokenCachePartitionDescriptor
        /// Its entries.
        public var entries: [TokenCacheEntry]
    }

    /// Decodes and validates a document.
    public static func decode(_ bytes: [UInt8]) throws(TokenCacheSerializationError) -> Decoded {
        // One parse on the common path; the header alone is read only to explain a failure.
        let data = Data(bytes)
        let document: Document
        do {
            document = try JSONDecoder().decode(Document.self, from: data)
        } catch {
            if let header = try? JSONDecoder().decode(HeaderOnly.self, from: data).partition, header.version != formatVersion {
                throw TokenCacheSerializationError(
                    kind: .unsupportedVersion,
                    message: "The cache document has format version \(header.version); this library reads \(formatVersion).")
            }
            throw TokenCacheSerializationError(kind: .malformed, message: "The cache document is malformed: \(error).")
        }
        let header = document.partition
        guard header.version == formatVersion else {
            throw TokenCacheSerializationError(
                kind: .unsupportedVersion,
                message: "The cache document has format version \(header.version); this library reads \(formatVersion).")
        }
        guard let key = TokenCachePartitionKey(rawValue: header.partitionKey),
            let source = ManagedIdentitySource(rawValue: header.source),
            let kind = ManagedIdentityID.Kind(rawValue: header.identityKind),
            let identity = ManagedIdentityID(kind: kind, id: header.identityID)
        else {
            throw TokenCacheSerializationError(kind: .malformed, message: "The cache document's partition header is invalid.")
        }
        var entries: [TokenCacheEntry] = []
        entries.reserveCapacity(document.accessToken.count)
        for record in document.accessToken.values {
            guard record.credentialType == "AccessToken", !record.secret.isEmpty, !record.target.isEmpty,
                let cachedAt = parseEpoch(record.cachedAt), let expiresOn = parseEpoch(record.expiresOn)
            else {
                throw TokenCacheSerializationError(kind: .malformed, message: "A cached access token is malformed.")
            }
            var refreshOn: Date?
            if let text = record.refreshOn {
                guard let parsed = parseEpoch(text) else {
                    throw TokenCacheSerializationError(kind: .malformed, message: "A cached refresh_on is malformed.")
                }
                refreshOn = parsed
            }
            entries.append(
                TokenCacheEntry(
                    partitionKey: key, resource: record.target, tokenType: record.tokenType ?? "Bearer",
                    accessToken: record.secret, expiresOn: expiresOn, refreshOn: refreshOn, cachedAt: cachedAt))
        }
        return Decoded(
            partitionKey: key,
            descriptor: TokenCachePartitionDescriptor(
                key: key, source: source, identity: identity, endpoint: header.endpoint),
            entries: entries)
    }

    static func epochString(_ date: Date) -> String {
        String(Int64(date.timeIntervalSince1970.rounded(.down)))
    }

    static func parseEpoch(_ text: String) -> Date? {
        guard let seconds = Int64(text), seconds >= 0, seconds < 32_503_680_000 else { return nil }
        return Date(timeIntervalSince1970: Double(seconds))
    }

    private struct Document: Codable {
        var accessToken: [String: AccessTokenRecord]
        var partition: Header

        enum CodingKeys: String, CodingKey {
            case accessToken = "AccessToken"
            case partition = "ManagedIdentityPartition"
        }
    }

    private struct HeaderOnly: Decodable {
        var partition: Header
        enum CodingKeys: String, CodingKey { case partition = "ManagedIdentityPartition" }
    }

    private struct Header: Codable {
        var version: Int
        var partitionKey: String
        var source: String
        var identityKind: String
        var identityID: String?
        var endpoint: String

        enum CodingKeys: String, CodingKey {
            case version
            case partitionKey = "partition_key"
            case source
            case identityKind = "identity_kind"
            case identityID = "identity_id"
            case endpoint
        }
    }

    private struct AccessTokenRecord: Codable {
        var credentialType: String
        var secret: String
        var environment: String
        var clientID: String
        var realm: String
        var target: String
        var tokenType: String?
        var cachedAt: String
        var expiresOn: String
        var extendedExpiresOn: String?
        var refreshOn: String?

        enum CodingKeys: String, CodingKey {
            case credentialType = "credential_type"
            case secret, environment, realm, target
            case clientID = "client_id"
            case tokenType = "token_type"
            case cachedAt = "cached_at"
            case expiresOn = "expires_on"
            case extendedExpiresOn = "extended_expires_on"
            case refreshOn = "refresh_on"
        }
    }
}
