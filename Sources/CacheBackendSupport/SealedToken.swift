import Foundation
import ManagedIdentity

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
