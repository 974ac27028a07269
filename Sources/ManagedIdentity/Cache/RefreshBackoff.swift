import Foundation

/// When a background refresh that failed may be tried again: a plain function of the error, the
/// time, how long the cached token stays usable and a random number, tested without I/O.
///
/// The numbers, after AWS's cross-SDK credential refresh rules (`spec/resilience.md`): a uniformly
/// random 5 to 10 minutes, so processes that failed together spread out; never more than half of the
/// token's remaining usable time, so at least two more attempts fit before callers need a new token;
/// never less than 30 s, so a token near its end is not stormed (once it is no longer usable, the
/// caller's own request goes to the endpoint at once, back-off or not). An error that no retry mends
/// (an identity not assigned, a resource refused, credentials refused) stops background attempts for
/// that token: the caller sees the error when the token runs out, and the failure is reported at once.
///
/// The cached token is served throughout; a 10-minute outage costs at most 3 requests per token.
enum RefreshBackoff {
    static let minimum: TimeInterval = 300
    static let maximum: TimeInterval = 600
    static let floor: TimeInterval = 30

    /// The time of the next background attempt, or `nil` for none (an error no retry mends, or too
    /// little usable time left).
    /// - Parameters:
    ///   - usableUntil: when the cached token stops being served (its expiry less the margin).
    ///   - random: a number in [0, 1).
    static func nextAttempt(after error: any Error, now: Date, usableUntil: Date, random: Double) -> Date? {
        guard !isPermanent(error) else { return nil }
        let remaining = usableUntil.timeIntervalSince(now)
        let delay = min(minimum + (maximum - minimum) * min(max(random, 0), 1), remaining / 2)
        guard delay >= floor else { return nil }
        return now.addingTimeInterval(delay)
    }

    /// Whether no later attempt can succeed where this one failed.
    static func isPermanent(_ error: any Error) -> Bool {
        guard let error = error as? ManagedIdentityError else { return false }
        switch error.code {
        case .userAssignedNotSupported, .invalidResource, .invalidIDType, .invalidManagedIdentityID:
            return true
        case .requestFailed:
            guard let status = error.statusCode, [400, 401, 403].contains(status) else { return false }
            // Workload identity's assertion errors are mended by the next rotation of the token file.
            return error.entraErrorCodes.allSatisfy { !assertionErrorCodes.contains($0) }
        default:
            return false
        }
    }

    /// AADSTS codes about the federated assertion itself: expired, not yet valid, not matching a
    /// federated credential. Kubernetes writes a new one before the old one expires.
    static let assertionErrorCodes: Set<Int> = [70021, 700024, 700211, 700212, 700213]
}
