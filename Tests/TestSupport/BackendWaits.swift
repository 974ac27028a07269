import Foundation
import ManagedIdentity

/// A backend whose store is open: started, then waited for (a test that writes right away expects
/// its write to land in the store, not to wait in memory for the store to open).
public func opened<Backend: TokenCacheBackendService>(_ backend: Backend, within: Duration = .seconds(30)) async throws -> Backend {
    try await backend.start(within: within)
    let deadline = ContinuousClock.now + within
    while true {
        switch backend.state {
        case .open: return backend
        case .failed(let reason): throw TokenCacheBackendError(kind: .misconfigured, message: reason)
        case .stopped: throw TokenCacheBackendError(kind: .io, message: "the backend stopped")
        case .opening(let reason):
            guard ContinuousClock.now < deadline else {
                throw TokenCacheBackendError(kind: .io, message: "the backend did not open in \(within): \(reason ?? "no reason")")
            }
            try await Task.sleep(for: .milliseconds(10))
        }
    }
}

/// The resources a backend's store holds, once it holds every one of `expected` or `within` has
/// passed (a generous bound on a real wait: a store that came back writes what it missed in the
/// background).
public func storedResources(
    _ backend: any InspectableTokenCacheBackend, expecting expected: Set<String>, within: Duration = .seconds(60)
) async -> Set<String> {
    let deadline = ContinuousClock.now + within
    var stored: Set<String> = []
    while true {
        if let partitions = try? await backend.storedPartitions() {
            stored = Set(partitions.flatMap { $0.entries.map(\.resource) })
        }
        if expected.isSubset(of: stored) || ContinuousClock.now >= deadline { return stored }
        try? await Task.sleep(for: .milliseconds(20))
    }
}
