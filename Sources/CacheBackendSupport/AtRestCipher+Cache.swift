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
