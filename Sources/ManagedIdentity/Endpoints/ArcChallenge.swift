#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The Azure Arc challenge: parsing `WWW-Authenticate: Basic realm=<path>` and reading the key file
/// it points to. The header comes from whatever answers on the endpoint, so it is treated as hostile.
enum ArcChallenge {
    static let maximumKeySize = 4096

    /// Extracts the key path from `Basic realm=<path>`.
    static func keyFilePath(fromHeader header: String) throws(ManagedIdentityError) -> String {
        let trimmed = header.trimmingASCIIWhitespace()
        let prefix = "basic realm="
        guard trimmed.lowercased().hasPrefix(prefix) else {
            throw formatError()
        }
        var path = String(trimmed.dropFirst(prefix.count))
        if path.count >= 2, path.hasPrefix("\""), path.hasSuffix("\"") {
            path = String(path.dropFirst().dropLast())
        }
        // MSAL.NET splits the header on '=' and wants exactly two parts.
        guard !path.isEmpty, !path.contains("=") else { throw formatError() }
        return path
    }

    /// Reads the key at `path`, which must name a `.key` file directly inside `allowedDirectory`,
    /// be a regular file with a single link, not a symbolic link, and hold at most 4096 bytes.
    static func readKey(atPath path: String, allowedDirectory: String) throws(ManagedIdentityError) -> Secret {
        guard path.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value != 0x7F }) else {
            throw insecure(path, "the path contains control characters")
        }
        #if os(Windows)
        let separator: Character = "\\"
        #else
        let separator: Character = "/"
        #endif
        var directory = allowedDirectory
        while directory.count > 1, directory.last == separator { directory.removeLast() }
        guard let lastSeparator = path.lastIndex(of: separator) else {
            throw insecure(path, "it is not an absolute path inside \(directory)")
        }
        let parent = String(path[..<lastSeparator])
        let name = String(path[path.index(after: lastSeparator)...])
        guard parent == directory else {
            throw insecure(path, "it is not directly inside \(directory)")
        }
        guard name.hasSuffix(".key"), name.count > 4, name != "..key", name.count <= 255 else {
            throw insecure(path, "the file name must end in .key")
        }
        return try readRegularFile(directory: directory, name: name, displayPath: path)
    }

    private static func readRegularFile(
        directory: String, name: String, displayPath: String
    ) throws(ManagedIdentityError) -> Secret {
        #if os(Windows)
        throw insecure(displayPath, "reading Azure Arc keys is not implemented on Windows yet")
        #else
        // Opening the directory and then the file relative to it, both without following symbolic
        // links, keeps a link planted in either place from redirecting the read.
        let directoryFD = open(directory, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard directoryFD >= 0 else {
            throw insecure(displayPath, "the key directory cannot be opened (\(errnoDescription()))")
        }
        defer { close(directoryFD) }
        let fd = openat(directoryFD, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else {
            let reason = errno == ELOOP ? "it is a symbolic link" : "it cannot be opened (\(errnoDescription()))"
            throw insecure(displayPath, reason)
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw insecure(displayPath, "it cannot be examined") }
        guard info.st_mode & S_IFMT == S_IFREG else { throw insecure(displayPath, "it is not a regular file") }
        guard info.st_nlink == 1 else { throw insecure(displayPath, "it has more than one hard link") }
        guard info.st_size <= maximumKeySize else {
            throw insecure(displayPath, "it is larger than \(maximumKeySize) bytes (\(info.st_size) bytes)")
        }
        // Read one byte more than allowed, in case the file grew after fstat.
        var buffer = [UInt8](repeating: 0, count: maximumKeySize + 1)
        var total = 0
        while total < buffer.count {
            let count = buffer.withUnsafeMutableBytes { bytes -> Int in
                guard let base = bytes.baseAddress else { return -1 }
                return read(fd, base + total, bytes.count - total)
            }
            if count < 0 {
                if errno == EINTR { continue }
                throw insecure(displayPath, "it cannot be read (\(errnoDescription()))")
            }
            if count == 0 { break }
            total += count
        }
        guard total <= maximumKeySize else {
            throw insecure(displayPath, "it is larger than \(maximumKeySize) bytes")
        }
        guard total > 0, let key = String(validating: buffer[..<total], as: UTF8.self) else {
            throw insecure(displayPath, "it is empty or not text")
        }
        return Secret(key)
        #endif
    }

    private static func formatError() -> ManagedIdentityError {
        .requestFailed(
            "The WWW-Authenticate header in the response from Azure Arc Managed Identity Endpoint did not match "
                + "the expected format (Basic realm=<path of a .key file>).",
            source: .azureArc)
    }

    private static func insecure(_ path: String, _ reason: String) -> ManagedIdentityError {
        .requestFailed(
            "The file on the file path in the WWW-Authenticate header is not secure: "
                + "\(SourceResolver.quotedForMessage(path)): \(reason).",
            source: .azureArc)
    }

    private static func errnoDescription() -> String {
        String(cString: strerror(errno))
    }
}

extension String {
    func trimmingASCIIWhitespace() -> Substring {
        var slice = self[...]
        while let first = slice.first, first == " " || first == "\t" || first == "\r" || first == "\n" {
            slice = slice.dropFirst()
        }
        while let last = slice.last, last == " " || last == "\t" || last == "\r" || last == "\n" {
            slice = slice.dropLast()
        }
        return slice
    }
}
