import Foundation

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
    ///
    /// Written by hand: the schema is fixed, and Foundation's encoder took most of the time of a file
    /// write (a partition of 100 tokens is about 60 KB).
    public static func encode(descriptor: TokenCachePartitionDescriptor, entries: [TokenCacheEntry]) -> [UInt8] {
        let clientID = descriptor.identity.id ?? "system_assigned_managed_identity"
        var out: [UInt8] = []
        out.reserveCapacity(256 + entries.count * 640)
        out.append(contentsOf: #"{"AccessToken":{"#.utf8)
        // MSAL's keys are lower-cased, so two resources that differ only in case (both legitimate
        // in memory) would share one: JSON keeps one of two equal keys, and a token was lost on the
        // next read (found by fuzzing). A repeated key gets a numbered suffix; readers go by
        // `target`, never by the key.
        // Hashes of the keys written: a collision of two different keys only adds a needless suffix.
        var keys = Set<Int>()
        keys.reserveCapacity(entries.count)
        for (index, entry) in entries.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            let start = out.count
            JSONWriter.lowercasedKey(
                ["", "managed_identity", "accesstoken", clientID, "managed_identity", entry.resource, entry.tokenType],
                into: &out)
            var suffix = 1
            while !keys.insert(Self.hash(out[start...])).inserted {
                out.removeLast()  // the closing quote
                if suffix > 1 { out.removeLast(String(suffix).utf8.count + 1) }
                suffix += 1
                out.append(contentsOf: "-\(suffix)\"".utf8)
            }
            out.append(contentsOf: #":{"cached_at":"#.utf8)
            JSONWriter.string(epochString(entry.cachedAt), into: &out)
            out.append(contentsOf: #","client_id":"#.utf8)
            JSONWriter.string(clientID, into: &out)
            out.append(contentsOf: #","credential_type":"AccessToken","environment":"managed_identity","expires_on":"#.utf8)
            JSONWriter.string(epochString(entry.expiresOn), into: &out)
            out.append(contentsOf: #","extended_expires_on":"#.utf8)
            JSONWriter.string(epochString(entry.expiresOn), into: &out)
            out.append(contentsOf: #","realm":"managed_identity""#.utf8)
            if let refreshOn = entry.refreshOn {
                out.append(contentsOf: #","refresh_on":"#.utf8)
                JSONWriter.string(epochString(refreshOn), into: &out)
            }
            out.append(contentsOf: #","secret":"#.utf8)
            JSONWriter.string(entry.accessToken, into: &out)
            out.append(contentsOf: #","target":"#.utf8)
            JSONWriter.string(entry.resource, into: &out)
            out.append(contentsOf: #","token_type":"#.utf8)
            JSONWriter.string(entry.tokenType, into: &out)
            out.append(UInt8(ascii: "}"))
        }
        out.append(contentsOf: #"},"ManagedIdentityPartition":{"endpoint":"#.utf8)
        JSONWriter.string(descriptor.endpoint, into: &out)
        if let id = descriptor.identity.id {
            out.append(contentsOf: #","identity_id":"#.utf8)
            JSONWriter.string(id, into: &out)
        }
        out.append(contentsOf: #","identity_kind":"#.utf8)
        JSONWriter.string(descriptor.identity.kind.rawValue, into: &out)
        out.append(contentsOf: #","partition_key":"#.utf8)
        JSONWriter.string(descriptor.key.rawValue, into: &out)
        out.append(contentsOf: #","source":"#.utf8)
        JSONWriter.string(descriptor.source.rawValue, into: &out)
        out.append(contentsOf: #","version":\#(formatVersion)}}"#.utf8)
        return out
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
        // Records are keyed by resource and token type in memory, whatever their JSON keys say. Two
        // records for one (a hand-edited or damaged file: found by fuzzing) keep the newer, as the
        // retention rule does, so the result is the same whatever order the object is read in.
        var positions: [TokenCacheEntryKey: Int] = [:]
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
            let entry = TokenCacheEntry(
                partitionKey: key, resource: record.target, tokenType: record.tokenType ?? "Bearer",
                accessToken: record.secret, expiresOn: expiresOn, refreshOn: refreshOn, cachedAt: cachedAt)
            if let position = positions[entry.key] {
                if Self.replaces(entry, entries[position]) { entries[position] = entry }
            } else {
                positions[entry.key] = entries.count
                entries.append(entry)
            }
        }
        return Decoded(
            partitionKey: key,
            descriptor: TokenCachePartitionDescriptor(
                key: key, source: source, identity: identity, endpoint: header.endpoint),
            entries: entries)
    }

    static func hash(_ bytes: ArraySlice<UInt8>) -> Int {
        var hasher = Hasher()
        bytes.withUnsafeBytes { hasher.combine(bytes: $0) }
        return hasher.finalize()
    }

    /// Which of two records of one key a document keeps: the newer (``TokenCacheRetention``'s rule),
    /// then the later expiry, then the greater token, so that the choice does not depend on order.
    static func replaces(_ candidate: TokenCacheEntry, _ kept: TokenCacheEntry) -> Bool {
        if candidate.cachedAt != kept.cachedAt { return TokenCacheRetention.storedWins(candidate, over: kept) }
        if candidate.expiresOn != kept.expiresOn { return candidate.expiresOn > kept.expiresOn }
        return kept.accessToken.utf8.lexicographicallyPrecedes(candidate.accessToken.utf8)
    }

    static func epochString(_ date: Date) -> String {
        String(Int64(date.timeIntervalSince1970.rounded(.down)))
    }

    static func parseEpoch(_ text: String) -> Date? {
        guard let seconds = Int64(text), seconds >= 0, seconds < 32_503_680_000 else { return nil }
        return Date(timeIntervalSince1970: Double(seconds))
    }

    private struct Document: Decodable {
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

    private struct Header: Decodable {
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

    private struct AccessTokenRecord: Decodable {
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

/// Writes JSON strings with the escapes RFC 8259 requires.
enum JSONWriter {
    static func string(_ text: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        // Most text needs no escape: copy it whole rather than byte by byte.
        if text.utf8.contains(where: needsEscape) {
            for byte in text.utf8 { append(byte, into: &out) }
        } else {
            out.append(contentsOf: text.utf8)
        }
        out.append(UInt8(ascii: "\""))
    }

    /// MSAL's entry key: the parts joined with `-`, lower-cased (ASCII letters; other text as is).
    static func lowercasedKey(_ parts: [String], into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for (index, part) in parts.enumerated() {
            if index > 0 { out.append(UInt8(ascii: "-")) }
            for byte in part.utf8 {
                append((UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) ? byte + 32 : byte, into: &out)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    private static func needsEscape(_ byte: UInt8) -> Bool {
        byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\")
    }

    private static func append(_ byte: UInt8, into out: inout [UInt8]) {
        switch byte {
        case UInt8(ascii: "\""): out.append(contentsOf: #"\""#.utf8)
        case UInt8(ascii: "\\"): out.append(contentsOf: #"\\"#.utf8)
        case 0x0A: out.append(contentsOf: #"\n"#.utf8)
        case 0x0D: out.append(contentsOf: #"\r"#.utf8)
        case 0x09: out.append(contentsOf: #"\t"#.utf8)
        case 0..<0x20:
            let digits = Array("0123456789abcdef".utf8)
            out.append(contentsOf: #"\u00"#.utf8)
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        default: out.append(byte)
        }
    }
}
