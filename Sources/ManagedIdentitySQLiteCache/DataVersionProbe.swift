import GRDBSQLite
import Synchronization

/// A read-only connection of its own that answers one question fast: has anyone committed to the
/// database since the last look? `PRAGMA data_version` on it changes with every commit of any other
/// connection, this process's writer included.
///
/// A cache hit must cost a few microseconds; going through GRDB's serialized queue for this one
/// statement costs more than the whole budget, so the probe keeps a raw prepared statement.
final class DataVersionProbe: Sendable {
    private struct Connection {
        var database: OpaquePointer
        var statement: OpaquePointer
    }

    private let connection: Mutex<Connection?>

    /// Opens the probe; `nil` when the database cannot be opened this way (the caller then asks GRDB).
    init?(path: String) {
        var database: OpaquePointer?
        guard sqlite3_open_v2(path, &database, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nil) == SQLITE_OK,
            let database
        else {
            sqlite3_close_v2(database)
            return nil
        }
        var statement: OpaquePointer?
        guard sqlite3_prepare_v2(database, "PRAGMA data_version", -1, &statement, nil) == SQLITE_OK, let statement else {
            sqlite3_close_v2(database)
            return nil
        }
        connection = Mutex(Connection(database: database, statement: statement))
    }

    deinit {
        connection.withLock { connection in
            guard let open = connection else { return }
            sqlite3_finalize(open.statement)
            sqlite3_close_v2(open.database)
            connection = nil
        }
    }

    /// The current data version, or `nil` when the probe failed.
    func dataVersion() -> UInt64? {
        connection.withLock { connection -> UInt64? in
            guard let open = connection else { return nil }
            defer { sqlite3_reset(open.statement) }
            guard sqlite3_step(open.statement) == SQLITE_ROW else { return nil }
            return UInt64(truncatingIfNeeded: sqlite3_column_int64(open.statement, 0))
        }
    }
}
