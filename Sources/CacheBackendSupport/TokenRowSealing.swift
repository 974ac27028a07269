import Crypto
import Logging
import ManagedIdentity

/// How a database backend stores the token of a row and checks the cache's key: the one place the
/// SQLite and PostgreSQL backends share, so a row sealed by one rule is opened by the same rule.
///
/// A sealed token is bound to its row (scope when there is one, partition, resource, token type): a
/// value copied into another row fails authentication and is ignored, never served for the wrong
/// identity or resource.
package struct TokenRowSealing: Sendable {
    package let cipher: AtRestCipher?
    /// Where the cache is, for messages ("in PostgreSQL", a file path); never a token or a key.
    package let location: String

    package init(encryptionKey: SymmetricKey?, location: String) {
        self.cipher = encryptionKey.map { AtRestCipher(key: $0) }
        self.location = location
    }

    /// The text a row's token is bound to. `scope` is PostgreSQL's host scope; SQLite has none.
    /// The layout is part of the stored format: changing it makes every sealed row unusable.
    package static func context(
        scope: String? = nil, partition: TokenCachePartitionKey, resource: String, tokenType: String
    ) -> String {
        let row = partition.rawValue + "\n" + resource + "\n" + tokenType
        return scope.map { $0 + "\n" + row } ?? row
    }

    /// The stored form of `token`: as is without a key, sealed and bound to `context` with one.
    package func seal(_ token: String, context: String) throws -> String {
        try SealedToken.seal(token, with: cipher, context: context)
    }

    /// The token of a stored value, or `nil` (and one error line, without the token) for a value to
    /// ignore: damaged, moved from another row, or plain in an encrypted cache.
    /// - Throws: ``TokenCacheBackendError`` when the value needs a key the cache was not given.
    package func open(_ stored: String, context: String, logger: Logger) throws(TokenCacheBackendError) -> String? {
        switch try SealedToken.open(stored, with: cipher, context: context, location: location) {
        case .token(let token): return token
        case .unusable(let reason):
            logger.error("\(reason); ignoring it")
            return nil
        }
    }

    /// Settles the cache's key against the id recorded beside it: records it when the cache is
    /// encrypted for the first time, and compares again, since another process may have recorded
    /// its own first.
    /// - Parameters:
    ///   - recorded: reads the recorded id, `nil` when there is none.
    ///   - recordIfAbsent: records an id unless one is recorded already.
    /// - Throws: ``TokenCacheBackendError`` for a missing or wrong key, or a store that does not keep
    ///   the id it was given.
    package func settleKey(
        recorded: () async throws -> String?, recordIfAbsent: (String) async throws -> Void
    ) async throws {
        guard let id = try AtRestCipher.checkKey(cipher, recorded: try await recorded(), location: location) else { return }
        try await recordIfAbsent(id)
        try settled(try await recorded())
    }

    /// ``settleKey(recorded:recordIfAbsent:)`` for a store read synchronously (on a thread of its own).
    package func settleKey(recorded: () throws -> String?, recordIfAbsent: (String) throws -> Void) throws {
        guard let id = try AtRestCipher.checkKey(cipher, recorded: try recorded(), location: location) else { return }
        try recordIfAbsent(id)
        try settled(try recorded())
    }

    private func settled(_ recorded: String?) throws(TokenCacheBackendError) {
        guard recorded != nil else {
            throw TokenCacheBackendError(kind: .io, message: "the cache \(location) did not keep its encryption key's id")
        }
        _ = try AtRestCipher.checkKey(cipher, recorded: recorded, location: location)
    }
}
