import Foundation
import ManagedIdentity
import ManagedIdentityEmulator
import TestSupport
import Testing

/// Real processes sharing one cache: concurrent writers, writers killed mid-write, and cold starts.
@Suite(.serialized)
struct CrossProcessTests {
    @Test(arguments: BackendKind.allCases)
    func concurrentWriterProcessesLoseNothing(kind: BackendKind) async throws {
        let location = try kind.makeLocation()
        let writers = (0..<4).map { ChildProcess("CacheStressTool", ["write", kind.rawValue, location, "w\($0)", "40"]) }
        for writer in writers { try writer.start() }
        // Read the cache the whole time they write: no file may ever be unreadable.
        var listings = 0
        while writers.contains(where: { $0.process.isRunning }) {
            _ = try await kind.open(location).storedPartitions()
            listings += 1
        }
        var committed: [String] = []
        for writer in writers {
            let result = await writer.finished()
            #expect(result.status == 0, "\(result.errors)")
            committed += result.output.split(separator: "\n").compactMap { $0.hasPrefix("committed ") ? String($0.dropFirst(10)) : nil }
        }
        #expect(committed.count == 160)
        let verify = try await ChildProcess.run("CacheStressTool", ["verify", kind.rawValue, location] + committed)
        #expect(verify.status == 0, "\(verify.output)")
        #expect(listings > 0)
        #expect(!(try FileManager.default.contentsOfDirectory(atPath: kind == .file ? location : (location as NSString).deletingLastPathComponent)).contains { $0.contains(".corrupt-") })
    }

    /// Writers are killed with SIGKILL at random points (after a random number of committed tokens,
    /// so mid-write more often than not); every token a writer reported committed is still there.
    @Test(arguments: BackendKind.allCases)
    func writersKilledAtRandomPointsLoseNoCommittedToken(kind: BackendKind) async throws {
        let location = try kind.makeLocation()
        var committed: [String] = []
        var generator = SystemRandomNumberGenerator()
        for round in 0..<200 {
            let writer = ChildProcess("CacheStressTool", ["write", kind.rawValue, location, "r\(round)", "1000"])
            try writer.start()
            let target = Int.random(in: 0...8, using: &generator)
            var buffer = await writer.readOutput { text in
                text.components(separatedBy: "\n").filter { $0.hasPrefix("committed ") }.count >= target
            }
            kill(writer.process.processIdentifier, SIGKILL)
            let rest = await writer.finished()
            buffer += rest.output
            committed += buffer.split(separator: "\n").compactMap {
                $0.hasPrefix("committed ") ? String($0.dropFirst(10)) : nil
            }
        }
        let verify = try await ChildProcess.run("CacheStressTool", ["verify", kind.rawValue, location] + committed)
        #expect(verify.status == 0, "\(verify.output.suffix(500)) \(verify.errors.suffix(500))")
        #expect(committed.count > 100)
    }

    /// Eight processes asking at once for a token nobody has cached: the endpoint sees one request.
    @Test(arguments: BackendKind.allCases)
    func eightProcessesColdStartSendOneRequest(kind: BackendKind) async throws {
        let location = try kind.makeLocation()
        try await ManagedIdentityEmulator.withRunning(EmulatorConfiguration(source: .imds)) { emulator in
            // A slow endpoint makes the processes overlap, as a real cold start of a fleet does.
            emulator.inject(EmulatorFaults(delayMilliseconds: 400))
            let processes = (0..<8).map { _ in
                ChildProcess(
                    "managed-identity",
                    ["token", "--resource", "https://storage.azure.com/.default", "--cache", "\(kind.rawValue):\(location)"],
                    environment: emulator.environment)
            }
            for process in processes { try process.start() }
            var sources: [String] = []
            for process in processes {
                let result = await process.finished()
                #expect(result.status == 0, "\(result.errors)")
                let json = try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any]
                sources.append(json?["token_source"] as? String ?? "?")
            }
            #expect(emulator.requestCount(identity: EmulatedIdentity.defaults[0], resource: "https://storage.azure.com") == 1)
            #expect(sources.filter { $0 == "identity_provider" }.count == 1)
            #expect(sources.filter { $0 == "cache" }.count == 7)
        }
    }
}
