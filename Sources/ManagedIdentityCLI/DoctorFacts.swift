import Foundation
import ManagedIdentity
import ManagedIdentityFileCache
import ManagedIdentitySQLiteCache
import NIOPosix

/// What `doctor` reads from the machine, in thin drivers; the decisions are ``Diagnostics``'.
enum DoctorFacts {
    /// Whether a directory exists and this user may list and read it.
    static func directoryAccess(_ path: String) -> (exists: Bool, readable: Bool) {
        var isDirectory: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
        return (exists, exists && access(path, R_OK | X_OK) == 0)
    }

    /// The token file, read off the cooperative pool as the client reads it.
    static func readTokenFile(_ path: String) async -> Result<String, ManagedIdentityError> {
        do {
            return try await NIOThreadPool.singleton.runIfActive { Diagnostics.readFederatedTokenFile(atPath: path) }
        } catch {
            return .failure(ManagedIdentityError(code: .federatedTokenFileUnreadable, message: "\(path) could not be read: \(error)"))
        }
    }

    /// Opens the configured cache as `token` would, then reads its files' modes.
    static func cacheCheck(_ options: CacheOptions) async -> DiagnosticCheck {
        let description = options.cache.description
        do {
            try await options.withBackend { _ in }
        } catch {
            return DiagnosticCheck(
                "cache", .problem, "\(description) cannot be opened: \(error)",
                fix: "Choose a cache this user can create and write (--cache sqlite:PATH, file:DIRECTORY or memory).")
        }
        switch options.cache {
        case .memory:
            return DiagnosticCheck("cache", .info, "memory: nothing persists, nothing to check")
        case .postgres:
            return DiagnosticCheck("cache", .ok, "\(description): connected, schema current")
        case .file(let directory):
            let files = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).sorted()
                .map { directory + "/" + $0 }.filter(isRegularFile)
            return Diagnostics.cacheModes(
                description: description, directory: (directory, mode(directory)), files: files.map { ($0, mode($0)) },
                writable: writesPrivately(in: directory))
        case .sqlite(let path):
            let directory = (path as NSString).deletingLastPathComponent
            let files = [path, path + "-wal", path + "-shm"].filter(isRegularFile)
            return Diagnostics.cacheModes(
                description: description, directory: (directory, mode(directory)), files: files.map { ($0, mode($0)) },
                writable: writesPrivately(in: directory) && (!isRegularFile(path) || access(path, W_OK) == 0))
        }
    }

    /// Whether this user can write a file in the directory and it gets the cache's mode (0600): a
    /// probe file is created and removed, as the backends create theirs.
    static func writesPrivately(in directory: String) -> Bool {
        let probe = directory + "/.doctor-probe-" + UUID().uuidString.lowercased()
        guard FileManager.default.createFile(atPath: probe, contents: Data(), attributes: [.posixPermissions: 0o600]) else {
            return false
        }
        defer { try? FileManager.default.removeItem(atPath: probe) }
        return mode(probe) == 0o600
    }

    /// A path's permission bits, or 0 when it cannot be read.
    static func mode(_ path: String) -> UInt16 {
        let attributes = try? FileManager.default.attributesOfItem(atPath: path)
        return UInt16(truncatingIfNeeded: (attributes?[.posixPermissions] as? Int) ?? 0)
    }

    /// Whether a path is a regular file, not following a symbolic link.
    static func isRegularFile(_ path: String) -> Bool {
        let attributes = try? FileManager.default.attributesOfItem(atPath: path)
        return (attributes?[.type] as? FileAttributeType) == .typeRegular
    }
}
