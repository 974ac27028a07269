import Foundation
import ManagedIdentity

extension AtRestCipher {
    /// The key id as stored beside a cache, to catch a wrong key when the cache opens.
    package var keyIDText: String { Hex.encode(keyID) }

    /// Compares the key a cache is opened with to the id recorded when it was first encrypted.
    /// - Returns: the id to record, when the cache is encrypted for the first time.
    /// - Throws: ``TokenCacheBackendError`` when the cache is encrypted and no key, or another key, is given.
    package static func checkKey(
        _ cipher: AtRestCipher?, recorded: String?, location: String
    ) throws(TokenCacheBackendError) -> String? {
        switch (cipher, recorded) {
        case (nil, nil):
            return nil
        case (nil, .some):
            throw TokenCacheBackendError(
                kind: .missingEncryptionKey, message: "the cache \(location) is encrypted; supply its encryption key")
        case (let cipher?, let recorded?):
            guard recorded == cipher.keyIDText else {
                throw TokenCacheBackendError(
                    kind: .wrongEncryptionKey,
                    message: "the encryption key does not match the one the cache \(location) was written with")
            }
            return nil
        case (let cipher?, nil):
            return cipher.keyIDText
        }
    }
}

extension AtRestCipher {
    /// Why a whole sealed document (a partition file) did not open.
    package enum DocumentFailure: Error {
        /// It is sealed with another key, or sealed while the cache has no key.
        case wrongKey
        /// It is damaged, or plain while the cache is encrypted.
        case corrupt(String)
    }

    /// The plaintext of a document: as it is when the cache has no key, opened when it has one.
    package static func openDocument(_ bytes: [UInt8], with cipher: AtRestCipher?, context: String) -> Result<[UInt8], DocumentFailure> {
        guard let cipher else { return isSealed(bytes) ? .failure(.wrongKey) : .success(bytes) }
        do {
            return .success(try cipher.open(bytes, context: context))
        } catch .wrongKey {
            return .failure(.wrongKey)
        } catch {
            return .failure(.corrupt(isSealed(bytes) ? "it fails authentication" : "it is not encrypted"))
        }
    }
}

/// A token as a database stores it: as is, or sealed with the cache's key and bound to its row
/// (partition, resource, token type), as `sealed:` followed by base64.
package enum SealedToken {
    static let prefix = "sealed:"

    /// What a stored value opened to.
    package enum Opened: Sendable {
        case token(String)
        /// A value to ignore (the row is then treated as absent), and why, without the token.
        case unusable(String)
    }

    /// The stored form of a token.
    package static func seal(_ token: String, with cipher: AtRestCipher?, context: String) throws -> String {
        guard let cipher else { return token }
        return prefix + Data(try cipher.seal(Array(token.utf8), context: context)).base64EncodedString()
    }

    /// The token of a stored value.
    /// - Throws: ``TokenCacheBackendError`` when the value is sealed and no key, or another key, is given.
    package static func open(
        _ stored: String, with cipher: AtRestCipher?, context: String, location: String
    ) throws(TokenCacheBackendError) -> Opened {
        guard stored.hasPrefix(prefix) else {
            return cipher == nil ? .token(stored) : .unusable("a cached token is not encrypted although the cache is")
        }
        guard let cipher else {
            throw TokenCacheBackendError(kind: .missingEncryptionKey, message: "the cache \(location) is encrypted; supply its key")
        }
        guard let data = Data(base64Encoded: String(stored.dropFirst(prefix.count))) else {
            return .unusable("a cached token is damaged")
        }
        do {
            return .token(String(decoding: try cipher.open(Array(data), context: context), as: UTF8.self))
        } catch .wrongKey {
            throw TokenCacheBackendError(kind: .wrongEncryptionKey, message: "a cached token of \(location) is encrypted with another key")
        } catch {
            return .unusable("a cached token fails authentication (damaged, or moved from another row)")
        }
    }
}

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
