import Foundation
import ManagedIdentity

extension TokenCacheEntry {
    /// An entry from a database row, whose times are whole seconds since 1970.
    package init(
        partitionKey: TokenCachePartitionKey, resource: String, tokenType: String, accessToken: String,
        expiresOnEpoch: Int64, refreshOnEpoch: Int64?, cachedAtEpoch: Int64
    ) {
        self.init(
            partitionKey: partitionKey, resource: resource, tokenType: tokenType, accessToken: accessToken,
            expiresOn: Date(timeIntervalSince1970: Double(expiresOnEpoch)),
            refreshOn: refreshOnEpoch.map { Date(timeIntervalSince1970: Double($0)) },
            cachedAt: Date(timeIntervalSince1970: Double(cachedAtEpoch)))
    }
}
