import Foundation
import ManagedIdentity
import ManagedIdentityEmulator
import Testing
import TestSupport

/// `managed-identity doctor`, run as an operator runs it: against emulator processes through their
/// environment files, on a host with no source, with a broken token file and a cache with wrong modes.
extension CommandLineTests {
    /// The variables of an `export NAME='value'` file, as a shell would read them.
    func exports(_ path: String) throws -> [String: String] {
        var variables: [String: String] = [:]
        for row in try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n") where row.hasPrefix("export ") {
            let assignment = row.dropFirst(7)
            guard let equals = assignment.firstIndex(of: "=") else { continue }
            variables[String(assignment[..<equals])] = String(assignment[assignment.index(after: equals)...].dropFirst().dropLast())
        }
        return variables
    }

    @Test func doctorOnAWorkloadIdentityPodSaysWhyAndExitsZero() async throws {
        let directory = try TemporaryDirectory.make()
        let (emulator, ready) = try await startEmulator([
            "--source", "workload-identity", "--env-file", directory + "/emulator.env", "--workload-identity-dir", directory + "/wi",
        ])
        defer { if emulator.process.isRunning { kill(emulator.process.processIdentifier, SIGKILL) } }
        let caFile = try #require(ready["ca_file"] as? String)
        #expect(caFile == directory + "/wi/ca.pem")
        let variables = try exports(directory + "/emulator.env")
        #expect(Set(variables.keys) == ["AZURE_AUTHORITY_HOST", "AZURE_CLIENT_ID", "AZURE_FEDERATED_TOKEN_FILE", "AZURE_TENANT_ID"])

        let result = try await run(["doctor", "--ca-file", caFile, "--cache", "file:" + directory + "/cache"], environment: variables)
        #expect(result.status == 0, "\(result.output)\(result.errors)")
        let lines = result.output.split(separator: "\n").map(String.init)
        #expect(lines.first { $0.hasPrefix("ok       source") }?.contains("workload-identity (AZURE_FEDERATED_TOKEN_FILE, AZURE_TENANT_ID and AZURE_AUTHORITY_HOST are set") == true)
        #expect(lines.contains { $0.hasPrefix("ok       token file") && $0.contains("expires in") })
        #expect(lines.contains { $0.hasPrefix("ok       cache") && $0.contains("directory 0700") })
        #expect(lines.contains { $0.hasPrefix("ok       token ") })
        #expect(lines.last == "result: a token can be had")
        // Names, never values: not the token file's content, not an access token.
        let assertion = try String(contentsOfFile: try #require(variables["AZURE_FEDERATED_TOKEN_FILE"]), encoding: .utf8)
        #expect(!result.output.contains(assertion))
        #expect(!result.output.contains("eyJ"))

        // The same pod without the CA: the token attempt fails, with the fix.
        let untrusted = try await run(["doctor", "--cache", "memory"], environment: variables)
        #expect(untrusted.status == 1)
        #expect(untrusted.output.contains("problem  token       managed_identity_unreachable_network"))
        #expect(untrusted.output.contains("fix: Let the pod reach AZURE_AUTHORITY_HOST"))

        kill(emulator.process.processIdentifier, SIGTERM)
        _ = await emulator.finished()
    }

    @Test func doctorWithABrokenTokenFileNamesThePathAndTheFix() async throws {
        let directory = try TemporaryDirectory.make()
        let variables = [
            "AZURE_FEDERATED_TOKEN_FILE": directory + "/missing-token", "AZURE_TENANT_ID": "t",
            "AZURE_AUTHORITY_HOST": "https://127.0.0.1:9/", "AZURE_CLIENT_ID": "c",
        ]
        let result = try await run(["doctor", "--cache", "memory", "--output", "json"], environment: variables)
        #expect(result.status == 1)
        let report = try json(result.output)
        #expect(report["token_obtainable"] as? Bool == false)
        let checks = try #require(report["checks"] as? [[String: Any]])
        let tokenFile = try #require(checks.first { $0["name"] as? String == "token file" })
        #expect(tokenFile["verdict"] as? String == "problem")
        #expect((tokenFile["detail"] as? String)?.contains(directory + "/missing-token") == true)
        #expect((tokenFile["fix"] as? String)?.contains("azure.workload.identity/use=true") == true)
    }

    @Test func doctorOnAHostWithoutAnySourceProbesOnceAndSaysSo() async throws {
        let result = try await run(["doctor", "--cache", "memory"])
        #expect(result.status == 1)
        #expect(result.output.contains("ok       source      imds (no other source's variables are set"))
        #expect(result.output.contains("problem  probe"))
        #expect(result.output.contains("problem  token       not tried: the probe found no Instance Metadata Service"))
        #expect(result.output.contains("fix: Run on an Azure VM or scale set with a managed identity"))
        #expect(result.output.hasSuffix("result: no token can be had until the problems above are fixed\n"))
    }

    @Test func doctorFindsACacheOthersCanRead() async throws {
        let directory = try TemporaryDirectory.make()
        chmod(directory, 0o755)
        let result = try await run(["doctor", "--emulator", "--source", "app-service", "--cache", "file:" + directory])
        #expect(result.status == 1)
        #expect(result.output.contains("problem  cache       file:\(directory): \(directory) is 0755, not 0700"))
        #expect(result.output.contains("fix: Make the cache private: chmod 700"))
        #expect(result.output.contains("ok       token "), "the token itself could be had")
    }

    @Test(arguments: ManagedIdentitySource.allCases)
    func doctorPassesAgainstEachSourcesEmulator(source: ManagedIdentitySource) async throws {
        var arguments = ["doctor", "--emulator", "--source", source.rawValue, "--cache", "memory"]
        if source == .azureArc { arguments += ["--arc-key-dir", try TemporaryDirectory.make() + "/tokens"] }
        let result = try await run(arguments)
        #expect(result.status == 0, "\(result.output)\(result.errors)")
        #expect(result.output.contains("ok       source      \(source.rawValue)"))
    }
}
