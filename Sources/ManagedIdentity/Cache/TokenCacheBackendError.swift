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
        /// A file or database operation failed, or the store cannot be reached now.
        case io
        /// The store refuses this configuration, and no wait mends it: a wrong password, a database
        /// or role that does not exist, a path whose parent is not a directory.
        case misconfigured
    }

    /// Whether no wait mends the error: the configuration is wrong (an unsafe directory, a wrong or
    /// missing key, a schema newer than this library, a store that refuses the credentials). A
    /// backend fails at start on these; every other error (the store down, a lock held past its
    /// bound, a directory not writable for a moment) is a miss while the backend retries.
    public var isConfigurationError: Bool {
        switch kind {
        case .insecureDirectory, .wrongEncryptionKey, .missingEncryptionKey, .unsupportedSchema, .misconfigured: true
        case .lockTimeout, .io: false
        }
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
