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

    /// A process-wide client configured for managed identity endpoints. Being a global, it is never
    /// deinitialised, so it needs no shutdown.
    ///
    /// Its own tracing is off: the client makes one HTTP span per attempt for every transport (see
    /// ``ManagedIdentityTracing``), and async-http-client's would repeat it with the query string.
    private static let defaultClient: HTTPClient = {
        var configuration = HTTPClient.Configuration(
            redirectConfiguration: .disallow,
            timeout: .init(connect: .seconds(2), read: .seconds(30)),
            proxy: nil
        )
        configuration.tracing.tracer = nil
        return HTTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: configuration)
    }()

    private let client: HTTPClient
    private let connectTimeout: Duration

    /// Creates a transport on a shared client without proxy or redirects and with a 2 s connect timeout.
    public init() {
        self.client = Self.defaultClient
        self.connectTimeout = .seconds(2)
    }

    /// Creates a transport on your own client. Configure it with `redirectConfiguration: .disallow`
    /// and no proxy; it stays yours to shut down.
    public init(client: HTTPClient, connectTimeout: Duration = .seconds(2)) {
        self.client = client
        self.connectTimeout = connectTimeout
    }

    /// Sends the request through async-http-client, or the pinned TLS connection when it has a pin.
    public func send(_ request: HTTPTransportRequest) async throws(HTTPTransportError) -> HTTPTransportResponse {
        if let pin = request.serverCertificatePin {
            return try await PinnedTLSConnection.send(request, pin: pin, connectTimeout: connectTimeout)
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
            let response = try await client.execute(httpRequest, timeout: TimeAmount(request.timeout))
            let body = try await response.body.collect(upTo: Self.maximumResponseSize)
            return HTTPTransportResponse(
                status: Int(response.status.code),
                headers: response.headers.map { HTTPHeader(name: $0.name, value: $0.value) },
                body: Array(buffer: body)
            )
        } catch let error as HTTPClientError {
            throw Self.map(error, request: request)
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

    private static func map(_ error: HTTPClientError, request: HTTPTransportRequest) -> HTTPTransportError {
        switch error {
        case .deadlineExceeded, .readTimeout, .writeTimeout:
            return HTTPTransportError(
                kind: .timeout, message: "The endpoint \(request.origin) did not answer within \(request.timeout).")
        case .connectTimeout:
            return HTTPTransportError(
                kind: .connectionFailed, message: "Could not connect to \(request.origin): the connection timed out.")
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
