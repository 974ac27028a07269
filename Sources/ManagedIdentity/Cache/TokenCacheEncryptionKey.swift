import Crypto
import Foundation

/// Reads the 256-bit key that encrypts a persistent cache at rest from the bytes of a key file, as
/// secret stores hand keys over: 32 raw bytes, 64 hex digits, or base64 of 32 bytes (surrounding
/// whitespace and a trailing newline allowed in the text forms).
///
/// ```swift
/// let key = try TokenCacheEncryptionKey.load(contentsOfFile: "/run/secrets/token-cache-key")
/// let backend = try SQLiteTokenCacheBackend(path: path, configuration: .init(encryptionKey: key))
/// ```
public enum TokenCacheEncryptionKey {
    /// The key the bytes hold, or `nil` when they are none of the three forms.
    public static func decode(_ bytes: [UInt8]) -> SymmetricKey? {
        if bytes.count == 32 { return SymmetricKey(data: bytes) }
        let text = String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        if text.utf8.count == 64, let decoded = Hex.decode(text) { return SymmetricKey(data: decoded) }
        if let decoded = Data(base64Encoded: text), decoded.count == 32 { return SymmetricKey(data: decoded) }
        return nil
    }

    /// The key in a file.
    /// - Throws: ``TokenCacheBackendError`` when the file cannot be read, is larger than a key file
    ///   can be, or holds no key; the message names the path, never the contents.
    public static func load(contentsOfFile path: String) throws(TokenCacheBackendError) -> SymmetricKey {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw TokenCacheBackendError(kind: .missingEncryptionKey, message: "cannot read the encryption key file \(path)")
        }
        defer { try? handle.close() }
        // No key form is longer than 64 digits and some whitespace: a larger file is not a key file.
        let bytes = (try? handle.read(upToCount: 257)).map { [UInt8]($0) } ?? []
        guard bytes.count <= 256, let key = decode(bytes) else {
            throw TokenCacheBackendError(
                kind: .missingEncryptionKey,
                message: "the encryption key file \(path) must hold 32 bytes: raw, as 64 hex digits, or base64")
        }
        return key
    }
}
