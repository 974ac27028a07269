import Foundation
import ManagedIdentity
import ManagedIdentityEmulator
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Discovery over real loopback sockets: an IMDS that answers 400, a port nobody listens on, a
/// listener that never answers, and a server that is not IMDS. Each is probed once.
struct DiscoveryEndToEndTests {
    /// A generous timeout where something answers: the full suite runs on two busy cores.
    static func discovery(imdsBase: String, timeout: Duration = .seconds(10)) -> ManagedIdentityDiscovery {
        ManagedIdentityDiscovery(
            environment: ManagedIdentityEnvironment(variables: ["AZURE_POD_IDENTITY_AUTHORITY_HOST": imdsBase]),
            probeTimeout: timeout)
    }

    @Test func anIMDSThatAnswers400IsThere() async throws {
        try await ManagedIdentityEmulator.withRunning(EmulatorConfiguration(source: .imds)) { emulator in
            let discovery = Self.discovery(imdsBase: "http://127.0.0.1:\(emulator.port)")
            let capabilities = await discovery.capabilities()
            #expect(capabilities.source == .imds)
            #expect(capabilities.probe == .answered(status: 400))
            _ = await discovery.capabilities()
            #expect(emulator.statistics.requests == 1, "probed once")
            // The emulator, like IMDS, refuses a request without the Metadata header: that is the probe.
            #expect(emulator.violations.map(\.reason) == ["Required metadata header not specified"])
        }
    }

    @Test func aPortNobodyListensOnIsNone() async throws {
        let port = try Self.closedPort()
        let capabilities = await Self.discovery(imdsBase: "http://127.0.0.1:\(port)").capabilities()
        #expect(capabilities.source == nil)
        guard case .unreachable = capabilities.probe else {
            Issue.record("expected unreachable, got \(String(describing: capabilities.probe))")
            return
        }
    }

    @Test func aListenerThatNeverAnswersTimesOutQuickly() async throws {
        let listener = try SilentListener()
        defer { listener.close() }
        let started = ContinuousClock.now
        let capabilities = await Self.discovery(imdsBase: "http://127.0.0.1:\(listener.port)", timeout: .milliseconds(300))
            .capabilities()
        #expect(capabilities.source == nil)
        #expect(capabilities.probe == .timedOut)
        #expect(ContinuousClock.now - started < .seconds(30), "the probe's timeout bounds it: no hang")
    }

    @Test func aServerThatIsNotIMDSIsNoneAndA404IsNotRetried() async throws {
        try await ManagedIdentityEmulator.withRunning(EmulatorConfiguration(source: .appService)) { emulator in
            let capabilities = await Self.discovery(imdsBase: "http://127.0.0.1:\(emulator.port)").capabilities()
            #expect(capabilities.source == nil)
            #expect(capabilities.probe == .answered(status: 404))
            #expect(emulator.statistics.requests == 1)
        }
    }

    @Test func eachEmulatedSourceIsFoundFromItsEnvironment() async throws {
        for source in ManagedIdentitySource.allCases where source != .imds {
            try await ManagedIdentityEmulator.withRunning(EmulatorConfiguration(source: source, arcKeyDirectory: NSTemporaryDirectory() + "/arc-\(UUID())")) { emulator in
                var variables = emulator.environment
                variables["AZURE_POD_IDENTITY_AUTHORITY_HOST"] = "http://127.0.0.1:9"
                let capabilities = await ManagedIdentityDiscovery(environment: ManagedIdentityEnvironment(variables: variables)).capabilities()
                #expect(capabilities.source == source)
                #expect(capabilities.probe == nil)
                #expect(emulator.statistics.requests == 0)
            }
        }
    }

    /// A loopback port that was free a moment ago.
    static func closedPort() throws -> Int {
        let listener = try SilentListener()
        let port = listener.port
        listener.close()
        return port
    }
}

/// A loopback socket that listens and never accepts: connections complete in the kernel's backlog,
/// requests are sent, and no answer ever comes.
struct SilentListener {
    let descriptor: Int32
    let port: Int

    init() throws {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw POSIXError(.EMFILE) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(descriptor, 8) == 0 else {
            Glibc.close(descriptor)
            throw POSIXError(.EADDRINUSE)
        }
        var actual = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &actual) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        self.descriptor = descriptor
        self.port = Int(UInt16(bigEndian: actual.sin_port))
    }

    func close() { _ = Glibc.close(descriptor) }
}
