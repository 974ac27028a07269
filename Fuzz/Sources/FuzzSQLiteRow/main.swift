import Foundation
import FuzzSupport
import GRDB

@testable import ManagedIdentitySQLiteCache

// The SQLite row decoders: a `tokens` row and a `partitions` row whose every column holds any
// storage class (NULL, INTEGER, REAL, TEXT, BLOB) with any value, as a database written by
// something else may. Invariants: no crash, and a row that decodes carries exactly its values.

func value(_ input: inout FuzzInput) -> DatabaseValue {
    switch input.choice(6) {
    case 0: return .null
    case 1:
        let bytes = input.field() + [UInt8](repeating: 0, count: 8)
        return bytes.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: Int64.self) }.databaseValue
    case 2:
        let bytes = input.field() + [UInt8](repeating: 0, count: 8)
        return bytes.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: Double.self) }.databaseValue
    case 3: return input.text().databaseValue
    case 4: return Data(input.field()).databaseValue
    default:
        // Text as SQLite may hold it: bytes that are not UTF-8.
        return (String(validatingCString: input.field().map { CChar(bitPattern: $0) } + [0]) ?? "").databaseValue
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSQLiteRow(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    var input = FuzzInput(start, count)
    let tokenColumns = ["resource", "token_type", "access_token", "expires_on", "refresh_on", "cached_at"]
    var values: [String: DatabaseValue] = [:]
    for column in tokenColumns where input.choice(8) != 0 { values[column] = value(&input) }
    let row = Row(values)
    if let decoded = TokenRow(row) {
        if TokenRow.text(values["resource"] ?? .null) != decoded.resource { finding("a resource that is not the row's") }
        if TokenRow.integer(values["expires_on"] ?? .null) != decoded.expiresOn { finding("an expiry that is not the row's") }
    }
    let partitionColumns = ["partition_key", "source", "identity_kind", "identity_id", "endpoint"]
    var partition: [String: DatabaseValue] = [:]
    for column in partitionColumns where input.choice(8) != 0 { partition[column] = value(&input) }
    _ = PartitionRow(Row(partition))
    return 0
}
