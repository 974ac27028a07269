import Crypto
import Foundation
import ManagedIdentity
import Testing
import TestSupport

struct TokenCacheEncryptionKeyTests {
    static let raw = (0..<32).map { UInt8($0 * 7 % 256) }

    static func bytes(_ key: SymmetricKey?) -> [UInt8]? { key?.withUnsafeBytes { Array($0) } }

    @Test func rawHexAndBase64FormsGiveTheSameKey() {
        let hex = Self.raw.map { String(format: "%02x", $0) }.joined()
        let base64 = Data(Self.raw).base64EncodedString()
        #expect(Self.bytes(TokenCacheEncryptionKey.decode(Self.raw)) == Self.raw)
        #expect(Self.bytes(TokenCacheEncryptionKey.decode(Array((hex + "\n").utf8))) == Self.raw)
        #expect(Self.bytes(TokenCacheEncryptionKey.decode(Array(hex.uppercased().utf8))) == Self.raw)
        #expect(Self.bytes(TokenCacheEncryptionKey.decode(Array(("  " + base64 + "\r\n").utf8))) == Self.raw)
    }

    @Test(arguments: ["", "short", String(repeating: "ab", count: 31), String(repeating: "zz", count: 32), "AAAA"])
    func anythingElseIsNoKey(text: String) {
        #expect(TokenCacheEncryptionKey.decode(Array(text.utf8)) == nil)
    }

    @Test func aFileThatIsMissingTooLargeOrNotAKeyIsAnErrorNamingThePathNotTheContents() throws {
        let directory = try TemporaryDirectory.make()
        #expect(throws: TokenCacheBackendError.self) { try TokenCacheEncryptionKey.load(contentsOfFile: directory + "/none") }
        let large = directory + "/large"
        _ = FileManager.default.createFile(atPath: large, contents: Data(repeating: 0x41, count: 10_000))
        #expect(throws: TokenCacheBackendError.self) { try TokenCacheEncryptionKey.load(contentsOfFile: large) }
        let wrong = directory + "/wrong"
        _ = FileManager.default.createFile(atPath: wrong, contents: Data("not-a-key-but-secret".utf8))
        #expect {
            try TokenCacheEncryptionKey.load(contentsOfFile: wrong)
        } throws: { error in
            "\(error)".contains(wrong) && !"\(error)".contains("not-a-key-but-secret")
        }
        let good = directory + "/good"
        _ = FileManager.default.createFile(atPath: good, contents: Data(Self.raw))
        #expect(Self.bytes(try TokenCacheEncryptionKey.load(contentsOfFile: good)) == Self.raw)
    }
}
