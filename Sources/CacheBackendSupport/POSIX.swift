#if canImport(Glibc)
@_exported import Glibc
#elseif canImport(Musl)
@_exported import Musl
#elseif canImport(Darwin)
@_exported import Darwin
#endif

/// Thin, typed wrappers over the POSIX calls the backends need.
package enum POSIX {
    /// The current `errno` as text.
    package static func describeErrno(_ code: Int32 = errno) -> String {
        String(cString: strerror(code))
    }

    /// `stat` of a path without following a final symbolic link.
    package static func lstat(_ path: String) -> stat? {
        var info = stat()
        return Glibc_lstat(path, &info) == 0 ? info : nil
    }

    package static func fstat(_ fd: Int32) -> stat? {
        var info = stat()
        return Glibc_fstat(fd, &info) == 0 ? info : nil
    }

    /// Reads a whole file descriptor.
    package static func readAll(_ fd: Int32, limit: Int) throws(BackendIOError) -> [UInt8] {
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = chunk.withUnsafeMutableBytes { buffer -> Int in
                guard let base = buffer.baseAddress else { return -1 }
                return read(fd, base, buffer.count)
            }
            if count < 0 {
                if errno == EINTR { continue }
                throw BackendIOError("read failed: \(describeErrno())")
            }
            if count == 0 { return result }
            result.append(contentsOf: chunk[..<count])
            guard result.count <= limit else { throw BackendIOError("file is larger than \(limit) bytes") }
        }
    }

    /// Writes every byte.
    package static func writeAll(_ fd: Int32, _ bytes: [UInt8]) throws(BackendIOError) {
        var offset = 0
        while offset < bytes.count {
            let count = bytes.withUnsafeBytes { buffer -> Int in
                guard let base = buffer.baseAddress else { return -1 }
                return write(fd, base + offset, buffer.count - offset)
            }
            if count < 0 {
                if errno == EINTR { continue }
                throw BackendIOError("write failed: \(describeErrno())")
            }
            offset += count
        }
    }

    /// `fsync`, retried on EINTR.
    package static func sync(_ fd: Int32) throws(BackendIOError) {
        while fsync(fd) != 0 {
            if errno == EINTR { continue }
            throw BackendIOError("fsync failed: \(describeErrno())")
        }
    }

    /// Syncs a directory so a rename in it survives a crash.
    package static func syncDirectory(_ path: String) throws(BackendIOError) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw BackendIOError("cannot open directory \(path): \(describeErrno())") }
        defer { close(fd) }
        try sync(fd)
    }

    /// Nanoseconds of a `timespec`.
    package static func nanoseconds(_ time: timespec) -> UInt64 {
        UInt64(truncatingIfNeeded: time.tv_sec) &* 1_000_000_000 &+ UInt64(truncatingIfNeeded: time.tv_nsec)
    }
}

/// An I/O failure of a backend, without secrets in its text.
package struct BackendIOError: Error, CustomStringConvertible {
    package var message: String
    package init(_ message: String) { self.message = message }
    package var description: String { message }
}

// Disambiguate the C functions from Swift's `stat` struct initialiser and instance methods.
@inline(__always) private func Glibc_lstat(_ path: String, _ info: inout stat) -> Int32 { lstat(path, &info) }
@inline(__always) private func Glibc_fstat(_ fd: Int32, _ info: inout stat) -> Int32 { fstat(fd, &info) }
