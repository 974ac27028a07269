import Synchronization

/// The `Authorization` header of the last token, kept so that requests with the same cached token
/// reuse it instead of building (and validating) `Bearer <token>` each time.
final class AuthorizationHeaderCache<Header: Sendable>: Sendable {
    private let last = Mutex<(token: String, header: Header)?>(nil)
    private let make: @Sendable (String) -> Header

    /// - Parameter make: the header for `Bearer <token>`.
    init(_ make: @escaping @Sendable (String) -> Header) {
        self.make = make
    }

    /// The header for `token`.
    func header(for token: String) -> Header {
        if let cached = last.withLock({ $0 }), cached.token == token { return cached.header }
        let header = make("Bearer " + token)
        last.withLock { $0 = (token, header) }
        return header
    }
}
