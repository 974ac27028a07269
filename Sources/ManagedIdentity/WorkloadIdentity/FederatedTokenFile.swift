import Foundation
import NIOPosix
import Synchronization

#if canImport(Glibc)
import Glibc
private let systemRead = Glibc.read
#elseif canImport(Darwin)
import Darwin
private let systemRead = Darwin.read
#endif

/// Workload identity's token file: the Kubernetes service-account token the webhook projects into
/// the pod and the kubelet rotates. It is the client assertion of every token request.
///
/// The file is read at most once per ``rereadInterval`` (MSAL.NET: 5 minutes; the kubelet rotates at
/// 80 % of a lifetime of at least an hour, so content read that long ago is still valid), on a thread
/// of NIO's blocking pool, never on the cooperative pool. The content is a secret: it is never put in
/// a message, and ``secrets`` lets errors redact it.
final class FederatedTokenFile: Sendable {
    /// The longest token file read; a service-account token is a few kilobytes.
    static let maximumSize = 64 * 1024

    let path: String
    let rereadInterval: Duration
    private let clock: any ManagedIdentityClock
    private let state = Mutex<State>(State())

    private struct State {
        var current: (assertion: Secret, readAt: Date)?
        /// The content before the last re-read, still redacted: a request may have been built with it.
        var previous: Secret?
    }

    init(path: String, rereadInterval: Duration, clock: any ManagedIdentityClock) {
        self.path = path
        self.rereadInterval = rereadInterval
        self.clock = clock
    }

    /// The assertion to send: the content read less than ``rereadInterval`` ago, or the file's
    /// content now. A clock that went backwards re-reads too.
    func assertion() async throws(ManagedIdentityError) -> Secret {
        let now = clock.now
        let interval = ManagedIdentityClient.seconds(rereadInterval)
        if let current = state.withLock({ $0.current }) {
            let age = now.timeIntervalSince(current.readAt)
            if age >= 0, age < interval { return current.assertion }
        }
        let path = self.path
        let content: Result<String, ManagedIdentityError>
        do {
            content = try await NIOThreadPool.singleton.runIfActive { Self.readResult(atPath: path) }
        } catch {
            content = .failure(Self.unreadable(path, "it could not be read (\(error))"))
        }
        let assertion = Secret(try content.get())
        state.withLock { state in
            if let old = state.current?.assertion, old != assertion { state.previous = old }
            state.current = (assertion, now)
        }
        return assertion
    }

    /// The contents read so far, for redaction.
    var secrets: [String] {
        state.withLock { state in [state.current?.assertion.value, state.previous?.value].compactMap { $0 } }
    }

    /// ``read(atPath:)`` as a value, to carry its typed error across the thread pool.
    static func readResult(atPath path: String) -> Result<String, ManagedIdentityError> {
        Result { () throws(ManagedIdentityError) in try read(atPath: path) }
    }

    /// Reads the file now, blocking the calling thread. Symbolic links are followed: Kubernetes
    /// projects the token through `..data` links that it swaps on rotation.
    static func read(atPath path: String) throws(ManagedIdentityError) -> String {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            let code = errno
            switch code {
            case ENOENT, ENOTDIR: throw unreadable(path, "it does not exist")
            case EACCES, EPERM: throw unreadable(path, "this user (uid \(getuid())) may not read it")
            default: throw unreadable(path, "it could not be opened (\(String(cString: strerror(code))))")
            }
        }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0, (status.st_mode & S_IFMT) == S_IFREG else {
            throw unreadable(path, "it is not a regular file")
        }
        var bytes = [UInt8](repeating: 0, count: maximumSize + 1)
        var count = 0
        while count < bytes.count {
            let offset = count
            let read = bytes.withUnsafeMutableBytes { buffer in
                systemRead(descriptor, buffer.baseAddress.map { $0 + offset }, buffer.count - offset)
            }
            if read < 0 {
                if errno == EINTR { continue }
                throw unreadable(path, "reading it failed (\(String(cString: strerror(errno))))")
            }
            if read == 0 { break }
            count += read
        }
        guard count <= maximumSize else {
            throw unreadable(path, "it is larger than \(maximumSize) bytes, which no service-account token is")
        }
        guard let text = String(validating: bytes[..<count], as: UTF8.self) else {
            throw unreadable(path, "it is not text")
        }
        let trimmed = text.trimmingASCIIWhitespace()
        guard !trimmed.isEmpty else { throw unreadable(path, "it is empty") }
        return String(trimmed)
    }

    static func unreadable(_ path: String, _ reason: String) -> ManagedIdentityError {
        ManagedIdentityError(
            code: .federatedTokenFileUnreadable,
            message: "[Managed Identity] The workload identity token file \(SourceResolver.quotedForMessage(path)) "
                + "(\(ManagedIdentityVariable.federatedTokenFile)) cannot be used: \(reason). It is written by the "
                + "Azure workload identity webhook when the pod's service account is labelled "
                + "azure.workload.identity/use=true.",
            source: .workloadIdentity)
    }
}
