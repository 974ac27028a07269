import Crypto
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOTLS

/// One HTTPS exchange whose server certificate is pinned by SHA-1 thumbprint, as Service Fabric
/// requires. The request is written only after the handshake has completed and the pin matched, so
/// the secret header never leaves the process for a server that does not hold the pinned certificate.
enum PinnedTLSConnection {
    /// One context for every pinned exchange, made once. Its trust roots are empty on purpose: the
    /// pin replaces chain verification, and loading the system's roots would read and parse the
    /// certificate bundle on the event loop for every request.
    static let context: Result<NIOSSLContext, any Error> = Result {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        configuration.trustRoots = .certificates([])
        return try NIOSSLContext(configuration: configuration)
    }

    static func send(
        _ request: HTTPTransportRequest, pin: [UInt8], connectTimeout: Duration, eventLoop: any EventLoop
    ) async throws(HTTPTransportError) -> HTTPTransportResponse {
        guard request.scheme == "https" else {
            throw HTTPTransportError(kind: .refused, message: "A pinned request must use https.")
        }
        let promise = eventLoop.makePromise(of: HTTPTransportResponse.self)
        let pinMismatch = NIOLockedValueBox<String?>(nil)
        let head = makeHead(request)
        let body = request.body

        let port = request.port ?? 443
        let address = socketAddress(host: request.host, port: port)
        // Server name indication carries host names only, never an IP literal.
        let serverHostname = address == nil ? request.host : nil
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(TimeAmount(connectTimeout))
            .channelInitializer { channel in
                do {
                    let context = try Self.context.get()
                    let tls = try NIOSSLClientHandler(
                        context: context, serverHostname: serverHostname,
                        customVerificationCallback: { certificates, verification in
                            verification.succeed(Self.verify(certificates, pin: pin, mismatch: pinMismatch))
                        })
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(tls)
                    try sync.addHTTPClientHandlers()
                    try sync.addHandler(ExchangeHandler(head: head, body: body, promise: promise))
                    return channel.eventLoop.makeSucceededVoidFuture()
                } catch {
                    return channel.eventLoop.makeFailedFuture(error)
                }
            }

        let timeout = eventLoop.scheduleTask(in: TimeAmount(request.timeout)) {
            promise.fail(TimeoutReached())
        }
        let connect =
            if let address {
                bootstrap.connect(to: address)
            } else {
                bootstrap.connect(host: request.host, port: port)
            }
        connect.whenFailure { promise.fail($0) }
        promise.futureResult.whenComplete { _ in
            timeout.cancel()
            connect.whenSuccess { $0.close(promise: nil) }
        }

        do {
            return try await promise.futureResult.get()
        } catch {
            if let reason = pinMismatch.withLockedValue({ $0 }) {
                throw HTTPTransportError(
                    kind: .certificatePinMismatch,
                    message: "The server certificate of \(request.origin) \(reason); nothing was sent to it."
                )
            }
            if error is TimeoutReached {
                throw HTTPTransportError(
                    kind: .timeout, message: "The endpoint \(request.origin) did not answer within \(request.timeout).")
            }
            throw HTTPTransportError(
                kind: .connectionFailed,
                message: "Could not reach \(request.origin): \(AsyncHTTPClientTransport.describe(error))."
            )
        }
    }

    /// Accepts the chain only when the leaf's SHA-1 equals the pin. Chain and host name checks are
    /// replaced by the pin, as in MSAL Go and Python: the cluster's certificate is usually self-signed.
    static func verify(
        _ certificates: [NIOSSLCertificate], pin: [UInt8], mismatch: NIOLockedValueBox<String?>
    ) -> NIOSSLVerificationResult {
        guard let leaf = certificates.first, let der = try? leaf.toDERBytes() else {
            mismatch.withLockedValue { $0 = "presented no certificate" }
            return .failed
        }
        let digest = Array(Insecure.SHA1.hash(data: der))
        guard constantTimeEqual(digest, pin) else {
            let thumbprint = Hex.encode(digest, uppercase: true)
            mismatch.withLockedValue {
                $0 = "has SHA-1 thumbprint \(thumbprint), which does not match IDENTITY_SERVER_THUMBPRINT"
            }
            return .failed
        }
        return .certificateVerified
    }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for index in a.indices { difference |= a[index] ^ b[index] }
        return difference == 0
    }

    private static func makeHead(_ request: HTTPTransportRequest) -> HTTPRequestHead {
        let url = request.url
        let origin = request.origin
        let target = String(url.dropFirst(origin.count))
        var headers = HTTPHeaders()
        let hostHeader = request.host.contains(":") ? "[\(request.host)]" : request.host
        headers.add(name: "Host", value: request.port.map { "\(hostHeader):\($0)" } ?? hostHeader)
        for header in request.headers { headers.add(name: header.name, value: header.value) }
        if let body = request.body { headers.add(name: "Content-Length", value: String(body.count)) }
        headers.add(name: "Connection", value: "close")
        return HTTPRequestHead(
            version: .http1_1, method: HTTPMethod(rawValue: request.method), uri: target.isEmpty ? "/" : target,
            headers: headers)
    }

    /// The address to connect to without a resolver, when the host is an IP literal (as Service
    /// Fabric's endpoint is). A host name goes through NIO's Happy Eyeballs, whose connect timer
    /// starts before a name lookup on another thread and two hops back to the event loop; on a busy
    /// host those hops, not the network, spent the 2 s and a reachable endpoint was reported
    /// unreachable. Connecting to the address starts the timer after the `connect` call itself, and
    /// each time the event loop wakes it handles completed I/O before due timers, so the 2 s bound
    /// the kernel's connect, not trips between threads.
    static func socketAddress(host: String, port: Int) -> SocketAddress? {
        try? SocketAddress(ipAddress: host, port: port)
    }

    struct TimeoutReached: Error {}
}

/// Writes the request once the TLS handshake has succeeded and collects the response.
private final class ExchangeHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    private let head: HTTPRequestHead
    private let body: [UInt8]?
    private let promise: EventLoopPromise<HTTPTransportResponse>
    private var status = 0
    private var headers: [HTTPHeader] = []
    private var received: [UInt8] = []

    init(head: HTTPRequestHead, body: [UInt8]?, promise: EventLoopPromise<HTTPTransportResponse>) {
        self.head = head
        self.body = body
        self.promise = promise
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted = event as? TLSUserEvent {
            context.write(wrapOutboundOut(.head(head)), promise: nil)
            if let body {
                context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: body)))), promise: nil)
            }
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let responseHead):
            status = Int(responseHead.status.code)
            headers = responseHead.headers.map { HTTPHeader(name: $0.name, value: $0.value) }
        case .body(var buffer):
            guard received.count + buffer.readableBytes <= AsyncHTTPClientTransport.maximumResponseSize else {
                promise.fail(ResponseTooLarge())
                context.close(promise: nil)
                return
            }
            received.append(contentsOf: buffer.readBytes(length: buffer.readableBytes) ?? [])
        case .end:
            promise.succeed(HTTPTransportResponse(status: status, headers: headers, body: received))
            context.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        promise.fail(error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.fail(ConnectionClosed())
        context.fireChannelInactive()
    }

    struct ResponseTooLarge: Error {}
    struct ConnectionClosed: Error {}
}
