import AsyncHTTPClient
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// The default transport: async-http-client for every source, and a pinned TLS connection for
/// Service Fabric (async-http-client has no certificate verification callback).
///
/// It never uses a proxy (managed identity endpoints are link-local or loopback, and a proxy would
/// see the secrets), never follows a redirect, and reads at most 1 MiB of a response.
public struct AsyncHTTPClientTransport: HTTPTransport {
    /// The longest response body read; anything longer is an endpoint misbehaving.
    static let maximumResponseSize = 1 << 20

    /// How long a TCP connection may take to be established: what the network does, and nothing
    /// else. A link-local or loopback endpoint that has not accepted by then is not there.
    public static let defaultConnectTimeout: Duration = .seconds(2)

    /// How long a new HTTPS connection may take, TCP connect and TLS handshake together. The
    /// handshake is mostly the two ends' CPU work (key exchange, signatures, chain checks), which a
    /// busy process does late; counting it against the network's 2 s made a loaded host report
    /// "unreachable" for an endpoint that was there. The request's own timeout still bounds the whole.
    public static let defaultSecureConnectTimeout: Duration = .seconds(10)

    /// The pooled connections per host the default clients may open. Above every admission limit's
    /// default, so a request that holds a permit never waits for a connection.
    static let connectionsPerHost = 64

    /// The event loop the default clients and Service Fabric's pinned connections run on: a thread
    /// of the library's own. A service's busy event loops (its HTTP server's, say) then cannot delay
    /// the identity client's connects and handshakes; a global, it is never shut down.
    static let eventLoopGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    /// Process-wide clients configured for managed identity endpoints: one for plain HTTP (the
    /// connection is a TCP connect, bounded by ``defaultConnectTimeout``), one for HTTPS (bounded by
    /// ``defaultSecureConnectTimeout``). Being globals, they are never deinitialised, so they need no
    /// shutdown.
    private static let plainClient = makeClient(connectTimeout: defaultConnectTimeout)
    private static let secureClient = makeClient(connectTimeout: defaultSecureConnectTimeout)

    /// Its own tracing is off: the client makes one HTTP span per attempt for every transport (see
    /// ``ManagedIdentityTracing``), and async-http-client's would repeat it with the query string.
    private static func makeClient(connectTimeout: Duration) -> HTTPClient {
        var configuration = HTTPClient.Configuration(
            redirectConfiguration: .disallow,
            timeout: .init(connect: TimeAmount(connectTimeout), read: .seconds(30)),
            proxy: nil
        )
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = connectionsPerHost
        configuration.tracing.tracer = nil
        return HTTPClient(eventLoopGroup: eventLoopGroup, configuration: configuration)
    }

    private let plain: HTTPClient
    private let secure: HTTPClient
    private let connectTimeout: Duration
    private let secureConnectTimeout: Duration

    /// Creates a transport on the shared clients: no proxy, no redirects, a 2 s TCP connect timeout
    /// and 10 s for a new HTTPS connection's connect and handshake.
    public init() {
        self.plain = Self.plainClient
        self.secure = Self.secureClient
        self.connectTimeout = Self.defaultConnectTimeout
        self.secureConnectTimeout = Self.defaultSecureConnectTimeout
    }

    /// Creates a transport on your own client. Configure it with `redirectConfiguration: .disallow`,
    /// no proxy, and at least as many connections per host as the admission limits let requests run
    /// at once; it stays yours to shut down. Its configured connect timeout
    /// applies to every request; `connectTimeout` bounds the TCP connect of Service Fabric's pinned
    /// connections, whose handshake is bounded by the request's timeout.
    public init(client: HTTPClient, connectTimeout: Duration = Self.defaultConnectTimeout) {
        self.plain = client
        self.secure = client
        self.connectTimeout = connectTimeout
        self.secureConnectTimeout = connectTimeout
    }

    /// Sends the request through async-http-client, or the pinned TLS connection when it has a pin.
    public func send(_ request: HTTPTransportRequest) async throws(HTTPTransportError) -> HTTPTransportResponse {
        if let pin = request.serverCertificatePin {
            return try await PinnedTLSConnection.send(
                request, pin: pin, connectTimeout: connectTimeout, eventLoop: Self.eventLoopGroup.next())
        }
        var httpRequest = HTTPClientRequest(url: request.url)
        httpRequest.method = HTTPMethod(rawValue: request.method)
        for header in request.headers {
            httpRequest.headers.add(name: header.name, value: header.value)
        }
        if let body = request.body {
            httpRequest.body = .bytes(ByteBuffer(bytes: body))
        }
        if let pem = request.trustedCertificatesPEM {
            httpRequest.tlsConfiguration = try Self.tlsConfiguration(trusting: pem, request: request)
        }
        do {
            let client = request.scheme == "https" ? secure : plain
            let response = try await client.execute(httpRequest, timeout: TimeAmount(request.timeout))
            let body = try await response.body.collect(upTo: Self.maximumResponseSize)
            return HTTPTransportResponse(
                status: Int(response.status.code),
                headers: response.headers.map { HTTPHeader(name: $0.name, value: $0.value) },
                body: Array(buffer: body)
            )
        } catch let error as HTTPClientError {
            throw Self.map(error, request: request, connectTimeout: request.scheme == "https" ? secureConnectTimeout : connectTimeout)
        } catch is CancellationError {
            throw HTTPTransportError(kind: .cancelled, message: "The request to \(request.origin) was cancelled.")
        } catch {
            throw HTTPTransportError(
                kind: .connectionFailed,
                message: "Could not reach \(request.origin): \(Self.describe(error))."
            )
        }
    }

    /// A client configuration whose only trust roots are the given certificates; the host name is
    /// still verified against them.
    static func tlsConfiguration(trusting pem: [UInt8], request: HTTPTransportRequest) throws(HTTPTransportError) -> TLSConfiguration {
        let certificates: [NIOSSLCertificate]
        do {
            certificates = try NIOSSLCertificate.fromPEMBytes(pem)
        } catch {
            throw HTTPTransportError(kind: .refused, message: "The certificates to trust for \(request.origin) are not PEM.")
        }
        guard !certificates.isEmpty else {
            throw HTTPTransportError(kind: .refused, message: "The certificates to trust for \(request.origin) are empty.")
        }
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        configuration.trustRoots = .certificates(certificates)
        return configuration
    }

    static func map(_ error: HTTPClientError, request: HTTPTransportRequest, connectTimeout: Duration) -> HTTPTransportError {
        switch error {
        case .deadlineExceeded, .readTimeout, .writeTimeout:
            return HTTPTransportError(
                kind: .timeout, message: "The endpoint \(request.origin) did not answer within \(request.timeout).")
        case .getConnectionFromPoolTimeout:
            // Not the network: every pooled connection was busy for the whole connect timeout. The
            // request is retried as a timeout; a client of one's own needs a larger pool.
            return HTTPTransportError(
                kind: .timeout,
                message: "The request to \(request.origin) waited \(connectTimeout) for a connection of the HTTP client's "
                    + "pool; every connection was busy. Give the HTTPClient more connections per host.")
        case .connectTimeout:
            let what = request.scheme == "https" ? "the connection and TLS handshake did not complete" : "the TCP connection was not accepted"
            return HTTPTransportError(
                kind: .connectionFailed,
                message: "Could not connect to \(request.origin): \(what) within \(connectTimeout).")
        default:
            return HTTPTransportError(kind: .connectionFailed, message: "Could not reach \(request.origin): \(error).")
        }
    }

    /// Error text without anything request-specific beyond the origin.
    static func describe(_ error: any Error) -> String {
        let text = String(describing: error)
        return text.count > 300 ? String(text.prefix(300)) + "..." : text
    }
}

extension TimeAmount {
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self = .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}
