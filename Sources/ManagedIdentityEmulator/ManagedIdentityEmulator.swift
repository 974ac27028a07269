import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import ManagedIdentity
import NIOCore
import NIOSSL
import ServiceLifecycle
import Synchronization

/// A local, strict emulator of one managed identity source, for tests, demos and running without Azure.
///
/// It binds to 127.0.0.1 only, plays the chosen source's protocol (Service Fabric over HTTPS with a
/// certificate it reports the thumbprint of), issues JWT-shaped tokens naming the
/// identity, resource and a serial number, counts requests per identity and resource, injects faults,
/// and records every request the real service would refuse as a violation.
///
/// ```swift
/// try await ManagedIdentityEmulator.withRunning(EmulatorConfiguration(source: .appService)) { emulator in
///     let client = try ManagedIdentityClient(
///         configuration: .init(environment: ManagedIdentityEnvironment(variables: emulator.environment)))
///     let token = try await client.token(for: "https://vault.azure.net")
/// }
/// ```
public final class ManagedIdentityEmulator: Sendable {
    /// How the emulator plays its source.
    public let configuration: EmulatorConfiguration
    /// The secret clients must send (`IDENTITY_HEADER` or `MSI_SECRET`).
    public let secret: String
    /// The directory Azure Arc key files are written to.
    public let arcKeyDirectory: String?

    let state: EmulatorState
    /// The TLS identity of the HTTPS sources (Service Fabric, workload identity).
    private let authority: EmulatorCertificateAuthority?
    /// Workload identity's files, and whether the emulator made their directory (and so removes it).
    private let workloadIdentityFiles: (directory: String, owned: Bool)?
    private let logger: Logger
    private let running = Mutex<Running?>(nil)

    private struct Running {
        var port: Int
        var resourcePort: Int?
        var group: ServiceGroup
        var task: Task<Void, any Error>
    }

    /// Creates an emulator; ``start()`` binds it.
    public init(configuration: EmulatorConfiguration, logger: Logger? = nil) throws {
        self.configuration = configuration
        self.secret = configuration.secret ?? ArcKeyFiles.randomKey()
        self.arcKeyDirectory =
            configuration.source == .azureArc ? (configuration.arcKeyDirectory ?? "/var/opt/azcmagent/tokens") : nil
        self.state = EmulatorState(configuration: configuration)
        self.logger = logger ?? Logger(label: "managed-identity-emulator", factory: { _ in SwiftLogNoOpLogHandler() })
        let secure = configuration.source == .serviceFabric || configuration.source == .workloadIdentity
        self.authority = secure || configuration.protectedResource != nil ? try EmulatorCertificateAuthority() : nil
        if configuration.source == .workloadIdentity, let authority {
            let files = try WorkloadIdentityFiles.prepare(directory: configuration.workloadIdentityDirectory)
            self.workloadIdentityFiles = files
            try WorkloadIdentityFiles.write(authority.authorityPEM, to: files.directory + "/" + WorkloadIdentityFiles.caFileName, mode: 0o644)
        } else {
            self.workloadIdentityFiles = nil
        }
        if configuration.source == .workloadIdentity {
            try rotateFederatedToken()
        }
        // An installed agent's key directory exists before any challenge; so does the emulator's.
        if let arcKeyDirectory, !FileManager.default.fileExists(atPath: arcKeyDirectory) {
            try? FileManager.default.createDirectory(
                atPath: arcKeyDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        }
    }

    /// Runs an emulator for the duration of `body`.
    public static func withRunning<Result: Sendable>(
        _ configuration: EmulatorConfiguration, logger: Logger? = nil,
        _ body: (ManagedIdentityEmulator) async throws -> Result
    ) async throws -> Result {
        let emulator = try ManagedIdentityEmulator(configuration: configuration, logger: logger)
        try await emulator.start()
        do {
            let result = try await body(emulator)
            await emulator.stop()
            return result
        } catch {
            await emulator.stop()
            throw error
        }
    }

    /// Binds 127.0.0.1 and starts serving; returns once the server listens.
    public func start() async throws {
        var handler = EmulatorRequestHandler(
            configuration: configuration, state: state, secret: secret, arcKeyDirectory: arcKeyDirectory,
            now: { Date() })
        if configuration.source == .workloadIdentity {
            handler.rotateFederatedToken = { @Sendable [self] in _ = try self.rotateFederatedToken() }
        }
        let finalHandler = handler
        let responder = CallbackResponder<BasicRequestContext> { request, _ in
            try await Self.respond(to: request, handler: finalHandler)
        }
        let secure = configuration.source == .serviceFabric || configuration.source == .workloadIdentity
        let (ready, readyContinuation) = AsyncStream<(listener: Int, port: Int)>.makeStream()
        let expected = configuration.protectedResource == nil ? 1 : 2
        func application(_ responder: CallbackResponder<BasicRequestContext>, tls: Bool, port: Int, listener: Int) throws -> some Service {
            let server: HTTPServerBuilder
            if tls, let authority {
                server = try .tls(
                    .http1(),
                    tlsConfiguration: TLSConfiguration.makeServerConfiguration(
                        certificateChain: [.certificate(authority.serverCertificate)],
                        privateKey: .privateKey(authority.serverKey)))
            } else {
                server = .http1()
            }
            return Application(
                responder: responder,
                server: server,
                configuration: ApplicationConfiguration(address: .hostname("127.0.0.1", port: port), serverName: nil),
                onServerRunning: { channel in readyContinuation.yield((listener, channel.localAddress?.port ?? 0)) },
                logger: logger
            )
        }
        var services: [any Service] = [try application(responder, tls: secure, port: configuration.port, listener: 0)]
        if let resource = configuration.protectedResource {
            let resourceHandler = ProtectedResourceHandler(
                resource: resource, state: state, tenantID: configuration.tenantID, now: { Date() })
            let resourceResponder = CallbackResponder<BasicRequestContext> { request, _ in
                try await Self.respond(to: request, resource: resourceHandler)
            }
            services.append(try application(resourceResponder, tls: true, port: resource.port, listener: 1))
        }
        let group = ServiceGroup(services: services, logger: logger)
        let task = Task {
            defer { readyContinuation.finish() }
            try await group.run()
        }
        var ports: [Int: Int] = [:]
        for await (listener, port) in ready {
            ports[listener] = port
            if ports.count == expected { break }
        }
        guard let port = ports[0], port > 0, configuration.protectedResource == nil || (ports[1] ?? 0) > 0 else {
            task.cancel()
            _ = try? await task.value
            throw EmulatorError(message: "The emulator could not listen on 127.0.0.1:\(configuration.port).")
        }
        running.withLock { $0 = Running(port: port, resourcePort: ports[1], group: group, task: task) }
    }

    /// Stops serving and removes the Azure Arc key files it wrote.
    public func stop() async {
        guard let current = running.withLock({ state -> Running? in
            defer { state = nil }
            return state
        }) else { return }
        await current.group.triggerGracefulShutdown()
        _ = try? await current.task.value
        for path in state.takeArcKeyFiles() { try? FileManager.default.removeItem(atPath: path) }
        if let files = workloadIdentityFiles, files.owned { try? FileManager.default.removeItem(atPath: files.directory) }
    }

    /// The port it listens on, once started.
    public var port: Int { running.withLock { $0?.port ?? 0 } }

    /// The protected resource's base URL (`https://127.0.0.1:port`), when the emulator serves one.
    public var resourceURL: String? {
        running.withLock { $0?.resourcePort }.map { "https://127.0.0.1:\($0)" }
    }

    /// The PEM certificate of the authority that signed the emulator's HTTPS server certificate (the
    /// protected resource, Service Fabric, workload identity); trust it instead of turning
    /// verification off. `nil` for an emulator that serves only plain HTTP.
    public var certificateAuthorityPEM: String? { authority?.authorityPEM }

    /// Answers the next `count` resource requests that carry a valid token with a claims challenge.
    public func challengeNextResourceRequests(_ count: Int) { state.challengeNext(count) }

    /// Revokes every token issued so far, as Continuous Access Evaluation does when an account is
    /// disabled or its permissions change: the resource challenges them with claims (`nbf` = now),
    /// and accepts only tokens issued afterwards.
    public func revokeIssuedTokens() { state.revokeIssued(now: Date()) }

    /// The token endpoint URL.
    public var endpoint: String {
        return "\(authority != nil ? "https" : "http")://127.0.0.1:\(port)\(configuration.tokenPath)"
    }

    /// Workload identity: the PEM file of the certificate authority that signed the emulator's
    /// server certificate. Trust it (``WorkloadIdentityOptions/trustedCertificatesFile``, Python's
    /// `REQUESTS_CA_BUNDLE`, `curl --cacert`) instead of turning verification off.
    public var caFile: String? {
        workloadIdentityFiles.map { $0.directory + "/" + WorkloadIdentityFiles.caFileName }
    }

    /// Workload identity: the federated token file it writes, as the Kubernetes webhook projects it.
    public var federatedTokenFile: String? {
        workloadIdentityFiles.map { $0.directory + "/" + WorkloadIdentityFiles.tokenFileName }
    }

    /// Workload identity: writes a new service-account token into the federated token file, as the
    /// kubelet rotates it; from then on only the new content is accepted as an assertion.
    /// - Parameter lifetime: seconds until the new token expires (negative writes an expired one);
    ///   the configuration's ``EmulatorConfiguration/federatedTokenLifetime`` by default.
    @discardableResult
    public func rotateFederatedToken(lifetime: Int? = nil) throws -> Date {
        guard let path = federatedTokenFile else {
            throw EmulatorError(message: "Only the workload identity emulator writes a federated token file.")
        }
        let issuedAt = Date()
        let expires = issuedAt.addingTimeInterval(TimeInterval(lifetime ?? configuration.federatedTokenLifetime))
        let token = WorkloadIdentityFiles.serviceAccountToken(issuedAt: issuedAt, expires: expires)
        state.setFederatedToken(token, expires: expires)
        try WorkloadIdentityFiles.write(token, to: path, mode: 0o600)
        return expires
    }

    /// The SHA-1 thumbprint of the Service Fabric certificate.
    public var thumbprint: String? { configuration.source == .serviceFabric ? authority?.serverThumbprint : nil }

    /// The environment variables a client on the emulated host would see.
    public var environment: [String: String] {
        let base = "http://127.0.0.1:\(port)"
        switch configuration.source {
        case .imds:
            return [ManagedIdentityVariable.podIdentityAuthorityHost: base]
        case .appService:
            return [ManagedIdentityVariable.identityEndpoint: endpoint, ManagedIdentityVariable.identityHeader: secret]
        case .machineLearning:
            var variables = [ManagedIdentityVariable.msiEndpoint: endpoint, ManagedIdentityVariable.msiSecret: secret]
            if let system = configuration.identities.first(where: \.isSystemAssigned) {
                variables[ManagedIdentityVariable.defaultIdentityClientID] = system.clientID
            }
            return variables
        case .cloudShell:
            return [ManagedIdentityVariable.msiEndpoint: endpoint]
        case .azureArc:
            return [ManagedIdentityVariable.identityEndpoint: endpoint, ManagedIdentityVariable.imdsEndpoint: base]
        case .serviceFabric:
            return [
                ManagedIdentityVariable.identityEndpoint: endpoint, ManagedIdentityVariable.identityHeader: secret,
                ManagedIdentityVariable.identityServerThumbprint: thumbprint ?? "",
            ]
        case .workloadIdentity:
            var variables = [
                ManagedIdentityVariable.authorityHost: "https://127.0.0.1:\(port)/",
                ManagedIdentityVariable.tenantID: configuration.tenantID,
                ManagedIdentityVariable.federatedTokenFile: federatedTokenFile ?? "",
            ]
            // The webhook sets the client id from the service account's annotation: a user-assigned identity's.
            if let identity = configuration.identities.first(where: { !$0.isSystemAssigned }) ?? configuration.identities.first {
                variables[ManagedIdentityVariable.clientID] = identity.clientID
            }
            return variables
        }
    }

    /// The environment as `export NAME='value'` lines.
    public var exportLines: String {
        environment.sorted { $0.key < $1.key }
            .map { "export \($0.key)='\($0.value.replacingOccurrences(of: "'", with: "'\\''"))'" }
            .joined(separator: "\n") + "\n"
    }

    /// The environment as a JSON object.
    public var environmentJSON: String {
        JSONText.object(environment.sorted { $0.key < $1.key }.map { ($0.key, $0.value as Any) })
    }

    // MARK: Statistics and faults

    /// What the emulator has seen.
    public var statistics: EmulatorStatistics { state.statistics }

    /// Requests that reached the token stage for one identity and resource.
    public func requestCount(identity: EmulatedIdentity, resource: String) -> Int {
        state.statistics.requestsByIdentityAndResource[identity.label + " " + resource] ?? 0
    }

    /// Requests the real service would have refused.
    public var violations: [EmulatorViolation] { state.statistics.violations }

    /// Sets the faults to inject into the next responses.
    public func inject(_ faults: EmulatorFaults) { state.setFaults(faults) }

    /// Makes the next `count` token requests fail.
    public func failNext(_ count: Int, status: Int, retryAfter: String? = nil) {
        inject(EmulatorFaults(failNext: count, status: status, retryAfter: retryAfter))
    }

    /// Changes how the next tokens are issued.
    public func setTokenSettings(lifetime: Int? = nil, expiresOnFormat: ExpiresOnFormat? = nil, refreshIn: Int?? = nil) {
        state.setTokenSettings(lifetime: lifetime, format: expiresOnFormat, refreshIn: refreshIn)
    }

    /// Forgets counts and violations.
    public func resetStatistics() { state.resetCounts() }

    // MARK: HTTP

    static let controlPrefix = "/__emulator/"

    private static func respond(to request: Request, resource: ProtectedResourceHandler) async throws -> Response {
        var request = request
        let body = try await request.collectBody(upTo: 1 << 16)
        let query = (request.uri.query.map { FormDecoding.decode($0) } ?? []) ?? []
        var headers = request.headers.map { ($0.name.canonicalName, $0.value) }
        // HTTP/1.1's Host arrives as the request's authority.
        if let authority = request.head.authority { headers.append(("host", authority)) }
        return makeResponse(
            resource.handle(
                EmulatorRequest(
                    method: request.method.rawValue, path: request.uri.path, query: query, headers: headers, body: Array(buffer: body))))
    }

    private static func respond(to request: Request, handler: EmulatorRequestHandler) async throws -> Response {
        var request = request
        let body = try await request.collectBody(upTo: 1 << 16)
        let path = request.uri.path
        if path.hasPrefix(controlPrefix) {
            return try control(path: path, method: request.method.rawValue, body: Array(buffer: body), handler: handler)
        }
        let query = (request.uri.query.map { FormDecoding.decode($0) } ?? []) ?? []
        let emulated = EmulatorRequest(
            method: request.method.rawValue,
            path: path,
            query: query,
            headers: request.headers.map { ($0.name.canonicalName, $0.value) },
            body: Array(buffer: body))
        // IMDS's limits, when played: over them the answer is 429 at once, as IMDS answers.
        guard handler.state.arrive() else {
            handler.state.countRequest()
            return makeResponse(
                EmulatorResponse(status: 429, headers: [("Content-Type", "application/json")], body: EmulatorThrottle.body))
        }
        defer { handler.state.leave() }
        let response = await handler.handle(emulated)
        return makeResponse(response)
    }

    /// `GET /__emulator/stats`, `POST /__emulator/faults` (an ``EmulatorFaults`` JSON), `POST /__emulator/reset`,
    /// `POST /__emulator/resource/challenge` (`{"count": N}`), `POST /__emulator/resource/revoke`,
    /// and for workload identity `POST /__emulator/rotate` (a new federated token file).
    private static func control(path: String, method: String, body: [UInt8], handler: EmulatorRequestHandler) throws -> Response {
        switch (method, String(path.dropFirst(controlPrefix.count))) {
        case ("GET", "stats"):
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            let data = try encoder.encode(handler.state.statistics)
            return makeResponse(EmulatorResponse(status: 200, headers: [("Content-Type", "application/json")], body: String(decoding: data, as: UTF8.self)))
        case ("POST", "faults"):
            guard let faults = try? JSONDecoder().decode(EmulatorFaults.self, from: Data(body)) else {
                return makeResponse(EmulatorResponse(status: 400, body: #"{"error":"expected fail_next, status, retry_after, malformed_json_next, delay_ms"}"#))
            }
            handler.state.setFaults(faults)
            return makeResponse(EmulatorResponse(status: 204, body: ""))
        case ("POST", "rotate"):
            guard let rotate = handler.rotateFederatedToken else {
                return makeResponse(EmulatorResponse(status: 404, body: #"{"error":"only the workload identity emulator rotates its token file"}"#))
            }
            try rotate()
            return makeResponse(EmulatorResponse(status: 204, body: ""))
        case ("POST", "resource/challenge"):
            struct Count: Decodable { var count: Int }
            guard let count = try? JSONDecoder().decode(Count.self, from: Data(body)) else {
                return makeResponse(EmulatorResponse(status: 400, body: #"{"error":"expected {\"count\": N}"}"#))
            }
            handler.state.challengeNext(count.count)
            return makeResponse(EmulatorResponse(status: 204, body: ""))
        case ("POST", "resource/revoke"):
            handler.state.revokeIssued(now: Date())
            return makeResponse(EmulatorResponse(status: 204, body: ""))
        case ("POST", "reset"):
            handler.state.resetCounts()
            handler.state.setFaults(EmulatorFaults())
            return makeResponse(EmulatorResponse(status: 204, body: ""))
        default:
            return makeResponse(EmulatorResponse(status: 404, body: #"{"error":"unknown control endpoint"}"#))
        }
    }

    private static func makeResponse(_ response: EmulatorResponse) -> Response {
        var headers = HTTPFields()
        for (name, value) in response.headers {
            if let fieldName = HTTPField.Name(name) { headers.append(HTTPField(name: fieldName, value: value)) }
        }
        return Response(
            status: HTTPResponse.Status(code: response.status),
            headers: headers,
            body: ResponseBody(byteBuffer: ByteBuffer(string: response.body)))
    }
}

/// The emulator could not start.
public struct EmulatorError: Error, CustomStringConvertible {
    /// What went wrong.
    public var message: String
    public var description: String { message }
}
