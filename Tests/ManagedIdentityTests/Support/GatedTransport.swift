import Synchronization

@testable import ManagedIdentity

/// A transport whose responses wait until the test opens the gate, so concurrent callers can all be
/// made to pile up on one request.
final class GatedTransport: HTTPTransport {
    private let state = Mutex<(count: Int, open: Bool, waiters: [CheckedContinuation<Void, Never>])>((0, false, []))
    private let response: HTTPTransportResponse

    init(response: HTTPTransportResponse) {
        self.response = response
    }

    var requestCount: Int { state.withLock { $0.count } }

    func open() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.open = true
            defer { state.waiters.removeAll() }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    func send(_ request: HTTPTransportRequest) async throws(HTTPTransportError) -> HTTPTransportResponse {
        await withCheckedContinuation { continuation in
            let resumeNow = state.withLock { state -> Bool in
                state.count += 1
                if state.open { return true }
                state.waiters.append(continuation)
                return false
            }
            if resumeNow { continuation.resume() }
        }
        return response
    }
}
