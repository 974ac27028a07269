import Foundation

/// The key files of Azure Arc challenges.
enum ArcKeyFiles {
    static func randomKey() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
    }

    /// Writes a new key file, readable by its owner only, creating the directory if needed.
    static func write(key: String, in directory: String) throws -> String {
        try FileManager.default.createDirectory(
            atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        // A fresh random name in a directory only this user can write: nothing else can be at the path.
        let path = directory + "/" + UUID().uuidString.lowercased() + ".key"
        guard FileManager.default.createFile(atPath: path, contents: Data(key.utf8), attributes: [.posixPermissions: 0o600])
        else { throw CocoaError(.fileWriteUnknown) }
        return path
    }
}
