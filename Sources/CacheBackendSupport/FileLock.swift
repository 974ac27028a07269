/// An exclusive `flock` on a lock file. The kernel releases it when the holder's descriptor closes,
/// including when the process dies, so a crash never leaves a stale lock.
package final class FileLock {
    private var fd: Int32

    private init(fd: Int32) { self.fd = fd }

    deinit { release() }

    /// Releases the lock; later calls do nothing.
    package func release() {
        guard fd >= 0 else { return }
        close(fd)
        fd = -1
    }

    /// Takes the lock, polling without blocking a thread, for at most `timeout`.
    /// - Returns: the held lock, or `nil` when another process held it for the whole timeout.
    package static func acquire(path: String, timeout: Duration) async throws -> FileLock? {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw BackendIOError("cannot open lock file \(path): \(POSIX.describeErrno())") }
        let start = ContinuousClock.now
        var pause = Duration.milliseconds(1)
        while true {
            if flock(fd, LOCK_EX | LOCK_NB) == 0 {
                return FileLock(fd: fd)
            }
            let code = errno
            guard code == EWOULDBLOCK || code == EINTR else {
                close(fd)
                throw BackendIOError("cannot lock \(path): \(POSIX.describeErrno(code))")
            }
            guard ContinuousClock.now - start < timeout else {
                close(fd)
                return nil
            }
            do {
                try await Task.sleep(for: pause)
            } catch {
                close(fd)
                throw error
            }
            pause = min(pause * 2, .milliseconds(20))
        }
    }

    /// Takes the lock, polling on the calling thread (a thread of the blocking pool, never the
    /// cooperative one), for at most `timeout`.
    /// - Returns: the held lock, or `nil` when another process held it for the whole timeout.
    package static func acquireBlocking(path: String, timeout: Duration) throws(BackendIOError) -> FileLock? {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw BackendIOError("cannot open lock file \(path): \(POSIX.describeErrno())") }
        let start = ContinuousClock.now
        var pause: useconds_t = 1_000
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let code = errno
            guard code == EWOULDBLOCK || code == EINTR else {
                close(fd)
                throw BackendIOError("cannot lock \(path): \(POSIX.describeErrno(code))")
            }
            guard ContinuousClock.now - start < timeout else {
                close(fd)
                return nil
            }
            usleep(pause)
            pause = min(pause * 2, 20_000)
        }
        return FileLock(fd: fd)
    }
}
