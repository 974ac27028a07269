import GRDB
import ManagedIdentity

/// A row of the `tokens` table, each value checked for its type as it is read.
///
/// The schema is STRICT and NOT NULL, but a database file is bytes on a disk that another program,
/// a restore or a damaged sector may have written: a table created without those constraints passes
/// the schema check, and GRDB's non-optional decoding traps on a NULL or a value of another type. A
/// row that does not decode is `nil`, and ignored like any unusable row, never a crash.
struct TokenRow: Equatable {
    var resource: String
    var tokenType: String
    var storedToken: String
    var expiresOn: Int64
    var refreshOn: Int64?
    var cachedAt: Int64

    /// The columns, in the order ``init(_:)`` reads them by name.
    static let columns = "resource, token_type, access_token, expires_on, refresh_on, cached_at"

    init?(_ row: Row) {
        guard let resource = Self.text(Self.value(row, "resource")),
            let tokenType = Self.text(Self.value(row, "token_type")),
            let storedToken = Self.text(Self.value(row, "access_token")),
            let expiresOn = Self.integer(Self.value(row, "expires_on")),
            let cachedAt = Self.integer(Self.value(row, "cached_at"))
        else { return nil }
        let refreshValue: DatabaseValue = Self.value(row, "refresh_on")
        let refreshOn: Int64?
        if refreshValue.isNull {
            refreshOn = nil
        } else {
            guard let value = Self.integer(refreshValue) else { return nil }
            refreshOn = value
        }
        self.init(
            resource: resource, tokenType: tokenType, storedToken: storedToken, expiresOn: expiresOn, refreshOn: refreshOn,
            cachedAt: cachedAt)
    }

    init(resource: String, tokenType: String, storedToken: String, expiresOn: Int64, refreshOn: Int64?, cachedAt: Int64) {
        self.resource = resource
        self.tokenType = tokenType
        self.storedToken = storedToken
        self.expiresOn = expiresOn
        self.refreshOn = refreshOn
        self.cachedAt = cachedAt
    }

    /// A column's value, NULL when the row has no such column (GRDB traps on a missing column).
    static func value(_ row: Row, _ column: String) -> DatabaseValue {
        row.hasColumn(column) ? row[column] : .null
    }

    /// A TEXT value only: a BLOB where text belongs is a damaged row, even when its bytes are UTF-8.
    static func text(_ value: DatabaseValue) -> String? {
        guard case .string(let text) = value.storage else { return nil }
        return text
    }

    /// An INTEGER value only: a REAL, TEXT or BLOB where seconds belong is a damaged row.
    static func integer(_ value: DatabaseValue) -> Int64? {
        guard case .int64(let integer) = value.storage else { return nil }
        return integer
    }
}

/// A row of the `partitions` table, checked the same way; `nil` when any value does not decode.
struct PartitionRow {
    var descriptor: TokenCachePartitionDescriptor

    init?(_ row: Row) {
        let identityID: DatabaseValue = TokenRow.value(row, "identity_id")
        guard let rawKey = TokenRow.text(TokenRow.value(row, "partition_key")),
            let key = TokenCachePartitionKey(rawValue: rawKey),
            let source = TokenRow.text(TokenRow.value(row, "source")).flatMap(ManagedIdentitySource.init(rawValue:)),
            let kind = TokenRow.text(TokenRow.value(row, "identity_kind")).flatMap(ManagedIdentityID.Kind.init(rawValue:)),
            identityID.isNull || TokenRow.text(identityID) != nil,
            let identity = ManagedIdentityID(kind: kind, id: TokenRow.text(identityID)),
            let endpoint = TokenRow.text(TokenRow.value(row, "endpoint"))
        else { return nil }
        descriptor = TokenCachePartitionDescriptor(key: key, source: source, identity: identity, endpoint: endpoint)
    }
}
