import Crypto
import Foundation
import NIOSSL
import PostgresNIO

extension PostgresTokenCacheBackend {
    /// Where the database is, and how the backend shares, encrypts and waits.
    public struct Configuration: Sendable {
        /// Whether to use TLS to the database.
        public enum TLSMode: String, Sendable, Hashable {
            /// Never.
            case disable
            /// When the server offers it.
            case prefer
            /// Always; the server's certificate is verified against the system's trust roots.
            case require
        }

        /// The server's host name or address.
        public var host: String
        /// The server's port.
        public var port: Int
        /// The user to connect as.
        public var username: String
        /// Its password, if the server asks for one. A secret: never logged.
        public var password: String?
        /// The database; the user's by default.
        public var database: String?
        /// TLS to the server.
        public var tls: TLSMode
        /// A 256-bit key to seal tokens with. Required unless ``allowsPlaintext``.
        public var encryptionKey: SymmetricKey?
        /// Store tokens in clear when no key is given. Anyone who can read the table can then use them.
        public var allowsPlaintext: Bool
        /// This host's id: the scope of the rows it writes for partitions it does not share. `nil`
        /// uses the host name and `/etc/machine-id`; set a stable value for containers whose host
        /// name changes on restart (and the same value as the client's
        /// `Configuration.hostDiscriminator`).
        public var hostID: String?
        /// Share user-assigned identities' tokens with every host that carries the identity and uses
        /// this database. Microsoft advises against sharing managed identity tokens between machines:
        /// a token is as good as the identity to whoever reads it, so turn this on only where all
        /// hosts sharing the database are equally trusted. System-assigned identities are never shared.
        public var sharesUserAssignedIdentities: Bool
        /// How long a host waits for another that is fetching the same token before fetching itself.
        public var refreshLockTimeout: Duration
        /// How long one database operation may take before the request goes on without the backend.
        public var operationTimeout: Duration
        /// How long connecting and preparing the database may take when the backend starts.
        public var connectTimeout: Duration

        /// Creates a configuration; tokens are encrypted with `encryptionKey`, nothing is shared.
        public init(
            host: String, port: Int = 5432, username: String, password: String? = nil, database: String? = nil,
            tls: TLSMode = .prefer, encryptionKey: SymmetricKey?, allowsPlaintext: Bool = false, hostID: String? = nil,
            sharesUserAssignedIdentities: Bool = false, refreshLockTimeout: Duration = .seconds(10),
            operationTimeout: Duration = .seconds(2), connectTimeout: Duration = .seconds(10)
        ) {
            self.host = host
            self.port = port
            self.username = username
            self.password = password
            self.database = database
            self.tls = tls
            self.encryptionKey = encryptionKey
            self.allowsPlaintext = allowsPlaintext
            self.hostID = hostID
            self.sharesUserAssignedIdentities = sharesUserAssignedIdentities
            self.refreshLockTimeout = refreshLockTimeout
            self.operationTimeout = operationTimeout
            self.connectTimeout = connectTimeout
        }

        /// A configuration from a URL, `postgres://user:password@host:port/database?sslmode=disable`
        /// (`sslmode` is `disable`, `prefer` or `require`; `prefer` by default).
        /// - Returns: `nil` when the URL is not of that form.
        public init?(url text: String, encryptionKey: SymmetricKey?, allowsPlaintext: Bool = false) {
            guard let url = URLComponents(string: text), ["postgres", "postgresql"].contains(url.scheme ?? ""),
                let host = url.host, !host.isEmpty, let username = url.user, !username.isEmpty
            else { return nil }
            let mode = url.queryItems?.first { $0.name == "sslmode" }?.value ?? "prefer"
            guard let tls = TLSMode(rawValue: mode) else { return nil }
            let database = url.path.hasPrefix("/") ? String(url.path.dropFirst()) : url.path
            self.init(
                host: host, port: url.port ?? 5432, username: username, password: url.password,
                database: database.isEmpty ? nil : database, tls: tls, encryptionKey: encryptionKey,
                allowsPlaintext: allowsPlaintext)
        }

        func connectionConfiguration() throws -> PostgresConnection.Configuration {
            let tls: PostgresConnection.Configuration.TLS =
                switch self.tls {
                case .disable: .disable
                case .prefer: .prefer(try NIOSSLContext(configuration: .makeClientConfiguration()))
                case .require: .require(try NIOSSLContext(configuration: .makeClientConfiguration()))
                }
            var configuration = PostgresConnection.Configuration(
                host: host, port: port, username: username, password: password, database: database, tls: tls)
            // One connection attempt may take as long as one operation: a database that does not
            // answer turns a request into a miss after that, not after the start-up allowance.
            configuration.options.connectTimeout = .init(min(operationTimeout, connectTimeout))
            return configuration
        }
    }
}
