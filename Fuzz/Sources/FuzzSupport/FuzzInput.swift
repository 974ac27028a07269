import Dispatch
import Foundation
import ManagedIdentity
import Synchronization

/// The fuzzer's bytes, taken apart into the pieces a target needs: a few leading choice bytes, then
/// fields separated by a byte that seldom occurs in text (0xFF, which is never valid UTF-8, so
/// fields stay free to be anything else).
public struct FuzzInput {
    public var bytes: [UInt8]
    private var position = 0

    public init(_ start: UnsafeRawPointer, _ count: Int) {
        bytes = Array(UnsafeRawBufferPointer(start: start, count: count))
    }

    /// The next byte as a choice among `count` options (0 when the input is used up).
    public mutating func choice(_ count: Int) -> Int {
        guard position < bytes.count, count > 0 else { return 0 }
        defer { position += 1 }
        return Int(bytes[position]) % count
    }

    /// The bytes up to the next 0xFF (or the end).
    public mutating func field() -> [UInt8] {
        guard position < bytes.count else { return [] }
        let end = bytes[position...].firstIndex(of: 0xFF) ?? bytes.count
        defer { position = min(end + 1, bytes.count) }
        return Array(bytes[position..<end])
    }

    /// A field as text (invalid UTF-8 repaired, as any reader of text here would see it).
    public mutating func text() -> String { String(decoding: field(), as: UTF8.self) }

    /// Whatever is left.
    public mutating func rest() -> [UInt8] {
        defer { position = bytes.count }
        return position < bytes.count ? Array(bytes[position...]) : []
    }
}

/// Runs async work to its end from the fuzzer's (non-cooperative) thread, and fails the run if it
/// takes longer than `limit`: a hang is a finding, as a crash is.
public func runBlocking<T: Sendable>(limit: Duration = .seconds(5), _ body: @escaping @Sendable () async -> T) -> T {
    let box = ResultBox<T>()
    let done = DispatchSemaphore(value: 0)
    Task {
        box.value = await body()
        done.signal()
    }
    let (seconds, attoseconds) = limit.components
    let deadline = DispatchTime.now() + .nanoseconds(Int(seconds) * 1_000_000_000 + Int(attoseconds / 1_000_000_000))
    guard done.wait(timeout: deadline) == .success, let value = box.value else {
        fatalError("the input took longer than \(limit): a hang")
    }
    return value
}

/// Written by one task, read by the waiting thread after the semaphore; the semaphore orders the two.
private final class ResultBox<T>: @unchecked Sendable {
    var value: T?
}

/// A transport that answers the n-th request with the n-th response (the last one repeated), and
/// refuses anything that is not loopback: nothing a fuzz target does leaves the machine.
public final class ScriptedTransport: HTTPTransport {
    /// A fake: no endpoint behind it to protect, so no admission limits unless a test sets them.
    public var isBoundByEndpointLimits: Bool { false }

    private let responses: [HTTPTransportResponse]
    private let sent = Mutex(0)

    public init(_ responses: [HTTPTransportResponse]) { self.responses = responses }

    public func send(_ request: HTTPTransportRequest) async throws(HTTPTransportError) -> HTTPTransportResponse {
        guard request.host == "127.0.0.1" || request.host == "localhost" else {
            throw HTTPTransportError(kind: .refused, message: "fuzz transport: loopback only")
        }
        let index = sent.withLock { count in
            defer { count += 1 }
            return count
        }
        return responses.isEmpty ? HTTPTransportResponse(status: 500) : responses[min(index, responses.count - 1)]
    }
}

/// Ends the run with a finding: a broken invariant is a bug, as a crash is.
public func finding(_ message: String) -> Never {
    fatalError("FINDING: \(message)")
}

/// A directory of the target's own (`mi-fuzz/<target>` in the temporary directory), the same in
/// every run, so that paths the seeds name (an Arc key file) exist again.
public let fuzzDirectory: String = {
    let target = CommandLine.arguments.first.map { String($0.split(separator: "/").last ?? "fuzz") } ?? "fuzz"
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("mi-fuzz/" + target).path
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    return path
}()
