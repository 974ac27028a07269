import Crypto

/// AES-GCM encryption of cache data with a user-supplied key.
///
/// Every sealed value starts with a key id (8 bytes of an HMAC of a fixed label under the key), so a
/// wrong key is told apart from corrupt data: a different id means another key; the right id with a
/// failed authentication means the data was damaged or tampered with. The associated data binds a
/// value to where it belongs (a partition, a resource), so values swapped between places fail too.
package struct AtRestCipher: Sendable {
    package static let magic: [UInt8] = Array("MIC1".utf8)

    private let key: SymmetricKey
    package let keyID: [UInt8]

    package init(key: SymmetricKey) {
        self.key = key
        let mac = HMAC<SHA256>.authenticationCode(for: Array("managed-identity-cache key id".utf8), using: key)
        keyID = Array(mac.prefix(8))
    }

    package func seal(_ plaintext: [UInt8], context: String) throws -> [UInt8] {
        let box = try AES.GCM.seal(plaintext, using: key, authenticating: Array(context.utf8))
        guard let combined = box.combined else { throw OpenError.corrupt }
        return Self.magic + keyID + Array(combined)
    }

    package enum OpenError: Error, Equatable {
        /// Sealed under another key.
        case wrongKey
        /// Not sealed data, or damaged.
        case corrupt
    }

    package func open(_ sealed: [UInt8], context: String) throws(OpenError) -> [UInt8] {
        guard sealed.count > Self.magic.count + 8 + 28, Array(sealed.prefix(4)) == Self.magic else { throw .corrupt }
        guard Array(sealed[4..<12]) == keyID else { throw .wrongKey }
        do {
            let box = try AES.GCM.SealedBox(combined: sealed[12...])
            return Array(try AES.GCM.open(box, using: key, authenticating: Array(context.utf8)))
        } catch {
            throw .corrupt
        }
    }

    package static func isSealed(_ bytes: [UInt8]) -> Bool {
        bytes.count > 4 && Array(bytes.prefix(4)) == magic
    }
}
