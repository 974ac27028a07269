import Foundation

/// Entries encode as JSON objects with MSAL's field names and times in whole seconds since 1970,
/// so a backend can store them as they are; decoding refuses a malformed partition key.
extension TokenCacheEntry: Codable {
    enum CodingKeys: String, CodingKey {
        case partitionKey = "partition_key"
        case resource = "target"
        case tokenType = "token_type"
        case accessToken = "secret"
        case expiresOn = "expires_on"
        case refreshOn = "refresh_on"
        case cachedAt = "cached_at"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            partitionKey: try container.decode(TokenCachePartitionKey.self, forKey: .partitionKey),
            resource: try container.decode(String.self, forKey: .resource),
            tokenType: try container.decode(String.self, forKey: .tokenType),
            accessToken: try container.decode(String.self, forKey: .accessToken),
            expiresOn: Date(timeIntervalSince1970: Double(try container.decode(Int64.self, forKey: .expiresOn))),
            refreshOn: try container.decodeIfPresent(Int64.self, forKey: .refreshOn).map { Date(timeIntervalSince1970: Double($0)) },
            cachedAt: Date(timeIntervalSince1970: Double(try container.decode(Int64.self, forKey: .cachedAt))))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(partitionKey, forKey: .partitionKey)
        try container.encode(resource, forKey: .resource)
        try container.encode(tokenType, forKey: .tokenType)
        try container.encode(accessToken, forKey: .accessToken)
        try container.encode(Int64(expiresOn.timeIntervalSince1970.rounded(.down)), forKey: .expiresOn)
        try container.encodeIfPresent(refreshOn.map { Int64($0.timeIntervalSince1970.rounded(.down)) }, forKey: .refreshOn)
        try container.encode(Int64(cachedAt.timeIntervalSince1970.rounded(.down)), forKey: .cachedAt)
    }
}

/// A partition key encodes as its text.
extension TokenCachePartitionKey: Codable {
    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let key = TokenCachePartitionKey(rawValue: text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not a partition key"))
        }
        self = key
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}
