import Foundation
import ManagedIdentityTesting
import Synchronization

/// What the protected resource keeps: the tokens issued, its counts, and the challenges and
/// revocations it was told of.
extension EmulatorState {
    enum ResourceOutcome { case authorized, refused, challenged }

    /// Records a token as issued, so the resource accepts it.
    func recordIssued(_ claims: TokenClaims) {
        state.withLock { $0.issued[claims.serial] = claims }
    }

    /// Whether the emulator issued a token with exactly these claims.
    func wasIssued(_ claims: TokenClaims) -> Bool {
        state.withLock { $0.issued[claims.serial] == claims }
    }

    func countResourceRequest(host: String, carriesToken: Bool) {
        state.withLock { state in
            state.resource.requests += 1
            state.resource.requestsByHost[host, default: 0] += 1
            if carriesToken { state.resource.requestsWithTokenByHost[host, default: 0] += 1 }
        }
    }

    func countResourceOutcome(_ outcome: ResourceOutcome) {
        state.withLock { state in
            switch outcome {
            case .authorized: state.resource.authorized += 1
            case .refused: state.resource.refused += 1
            case .challenged: state.resource.claimsChallenges += 1
            }
        }
    }

    /// Challenges the next `count` requests that carry a valid token.
    func challengeNext(_ count: Int) {
        state.withLock { $0.challengeNext = max(0, count) }
    }

    /// Revokes every token issued so far, at `now`.
    func revokeIssued(now: Date) {
        state.withLock { state in
            state.revokedThroughSerial = state.serial
            state.revokedAt = Int(now.timeIntervalSince1970)
        }
    }

    /// The `nbf` of the challenge a valid token with `serial` gets, or `nil` when it is accepted: a
    /// revoked token is always challenged; otherwise an ordered challenge is used up.
    func takeResourceChallenge(serial: Int) -> Int? {
        state.withLock { state in
            if serial <= state.revokedThroughSerial { return state.revokedAt }
            guard state.challengeNext > 0 else { return nil }
            state.challengeNext -= 1
            return max(state.revokedAt, 1)
        }
    }
}
