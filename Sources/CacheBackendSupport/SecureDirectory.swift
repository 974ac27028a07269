import ManagedIdentity

/// The directory a cache lives in: created 0700, and refused when it is a symbolic link, not owned by
/// this user, or writable by others (anyone who can write it can plant or swap cache files).
package enum SecureDirectory {
    /// - Throws: ``TokenCacheBackendError``: `insecureDirectory` for a link, another owner or a
    ///   group- or world-writable mode; `misconfigured` when the path or a parent is not a directory
    ///   (no wait mends either); `io` when it cannot be created now (not writable, read-only, full).
    package static func prepare(_ path: String) throws(TokenCacheBackendError) {
        if POSIX.lstat(path) == nil {
            // Create missing parents with the default mode, the last component 0700.
            var current = path.hasPrefix("/") ? "" : "."
            for component in path.split(separator: "/") {
                current += "/" + component
                if POSIX.lstat(current) == nil, mkdir(current, 0o700) != 0, errno != EEXIST {
                    let code = errno
                    throw TokenCacheBackendError(
                        kind: code == ENOTDIR ? .misconfigured : .io,
                        message: "cannot create \(current): \(POSIX.describeErrno(code))"
                            + (code == ENOTDIR ? " (a parent of it is not a directory)" : ""))
                }
            }
        }
        guard let info = POSIX.lstat(path) else { throw TokenCacheBackendError(kind: .io, message: "cannot examine \(path)") }
        guard info.st_mode & S_IFMT != S_IFLNK else {
            throw TokenCacheBackendError(
                kind: .insecureDirectory, message: "the cache directory \(path) is a symbolic link; use the real path")
        }
        guard info.st_mode & S_IFMT == S_IFDIR else {
            throw TokenCacheBackendError(kind: .misconfigured, message: "\(path) is not a directory")
        }
        guard info.st_uid == geteuid() else {
            throw TokenCacheBackendError(
                kind: .insecureDirectory, message: "the cache directory \(path) belongs to another user (uid \(info.st_uid))")
        }
        guard info.st_mode & 0o022 == 0 else {
            throw TokenCacheBackendError(
                kind: .insecureDirectory,
                message: "the cache directory \(path) is writable by group or others (mode \(String(info.st_mode & 0o777, radix: 8))); "
                    + "run chmod 700 on it")
        }
        // A directory that cannot take new files now (read-only or immutable for a moment) is not
        // open: the lifecycle retries it rather than opening a store every write fails on.
        guard access(path, W_OK | X_OK) == 0 else {
            let code = errno
            throw TokenCacheBackendError(kind: .io, message: "cannot write to \(path) now: \(POSIX.describeErrno(code))")
        }
    }
}

/// Writes a file so that readers see either the old or the new content, never a torn one, and the
/// new content survives a crash once this returns: temp file in the same directory, fsync, rename,
/// directory fsync.
package enum AtomicFile {
    package static func write(_ bytes: [UInt8], to path: String, directory: String) throws(BackendIOError) -> stat {
        var random = SystemRandomNumberGenerator()
        let temporary = "\(directory)/.tmp-\(getpid())-\(String(random.next(), radix: 16))"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw BackendIOError("cannot create \(temporary): \(POSIX.describeErrno())") }
        // Closed exactly once: a second close could close a descriptor another thread has opened since.
        var isOpen = true
        defer { if isOpen { close(fd) } }
        do throws(BackendIOError) {
            try POSIX.writeAll(fd, bytes)
            try POSIX.sync(fd)
            guard let info = POSIX.fstat(fd) else { throw BackendIOError("cannot examine \(temporary)") }
            close(fd)
            isOpen = false
            guard rename(temporary, path) == 0 else {
                throw BackendIOError("cannot rename \(temporary) to \(path): \(POSIX.describeErrno())")
            }
            try POSIX.syncDirectory(directory)
            return info
        } catch {
            unlink(temporary)
            throw error
        }
    }
}

/// Moves an unreadable file aside as `<name>.corrupt-<timestamp>` so it can be examined, and the
/// cache goes on empty.
package enum Quarantine {
    @discardableResult
    package static func moveAside(_ path: String) -> String? {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let target = "\(path).corrupt-\(now.tv_sec)-\(now.tv_nsec / 1_000_000)"
        return rename(path, target) == 0 ? target : nil
    }
}
