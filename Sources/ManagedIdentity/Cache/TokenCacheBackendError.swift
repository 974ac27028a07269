/// Why a persistent cache backend cannot be used. The client never fails a token request on it (a
/// failing hook is a cache miss); it is thrown where a backend is opened or inspected.
public struct TokenCacheBackendError: Error, Sendable, CustomStringConvertible {
    /// The kinds of failure.
    public enum Kind: Sendable, Hashable {
        /// The directory is a symbolic link, belongs to another user, or is writable by others.
        case insecureDirectory
        /// The key differs from the one the cache was written with.
        case wrongEncryptionKey
        /// The cache is encrypted and no key was given.
        case missingEncryptionKey
        /// Another process held a lock past the timeout.
        case lockTimeout
        /// The store was written by a newer version of this library, or holds another schema.
        case unsupportedSchema
        /// A file or database operation failed.
        case io
    }

    /// What went wrong.
    public var kind: Kind
    /// A description, without any token.
    public var message: String

    /// Creates an error.
    public init(kind: Kind, message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}
