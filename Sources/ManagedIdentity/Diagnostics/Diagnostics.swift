import Foundation

/// The decisions of `managed-identity doctor`, as pure functions of what it read: each turns facts
/// (a variable's presence, a file's mode, a token file's expiry, an error) into a ``DiagnosticCheck``.
package enum Diagnostics {
    /// The source and the variables that decided it.
    package static func source(
        _ source: ManagedIdentitySource, chosen: Bool, environment: ManagedIdentityEnvironment
    ) -> DiagnosticCheck {
        let why = chosen ? "chosen with --source" : ManagedIdentitySource.detectionReason(in: environment)
        return DiagnosticCheck("source", .ok, "\(source) (\(why))")
    }

    /// The names (never the values) of the source variables that are set.
    package static func variables(_ environment: ManagedIdentityEnvironment) -> DiagnosticCheck {
        let names = (ManagedIdentityVariable.all + [ManagedIdentityVariable.clientID]).filter { environment.value($0) != nil }
        return DiagnosticCheck(
            "variables", .info, names.isEmpty ? "no managed identity variable is set" : "set: " + names.sorted().joined(separator: ", "))
    }

    /// The IMDS probe's answer, or why none was sent.
    package static func probe(_ capabilities: ManagedIdentityCapabilities?) -> DiagnosticCheck {
        guard let capabilities, let probe = capabilities.probe else {
            return DiagnosticCheck("probe", .info, "not sent: the environment names the source")
        }
        if capabilities.source == .imds {
            return DiagnosticCheck("probe", .ok, "IMDS \(probe)")
        }
        return DiagnosticCheck(
            "probe", .problem, capabilities.reason,
            fix: "Run on an Azure VM or scale set with a managed identity, or set another source's variables; "
                + "to try without Azure, run `managed-identity token --emulator --resource https://management.azure.com`.")
    }

    /// Workload identity's token file, from what reading it gave and the clock.
    package static func tokenFile(path: String, read: Result<String, ManagedIdentityError>, now: Date) -> DiagnosticCheck {
        let name = "token file"
        let content: String
        switch read {
        case .failure(let error):
            return DiagnosticCheck(
                name, .problem, error.message.dropPrefix("[Managed Identity] ").description,
                fix: "Label the pod's service account azure.workload.identity/use=true (and the pod with the same label) "
                    + "and restart the pod, so the webhook projects the token file.")
        case .success(let text):
            content = text
        }
        guard let expiry = expiry(ofJWT: content) else {
            return DiagnosticCheck(
                name, .warning, "\(path) is readable but does not hold a JWT with an expiry",
                fix: "Check that \(ManagedIdentityVariable.federatedTokenFile) points at the projected service-account token.")
        }
        let seconds = Int(expiry.timeIntervalSince(now).rounded(.down))
        guard seconds > 0 else {
            return DiagnosticCheck(
                name, .problem, "\(path) is readable, but its token expired \(-seconds) s ago",
                fix: "The kubelet rotates the file before it expires: check the pod's projected volume, or restart the pod.")
        }
        return DiagnosticCheck(name, .ok, "\(path) is readable; its token expires in \(seconds) s")
    }

    /// The `exp` claim of a JWT-shaped text, without verifying anything.
    package static func expiry(ofJWT text: String) -> Date? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3 else { return nil }
        var base64 = parts[1].replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.utf8.count % 4 != 0 { base64 += "=" }
        guard let data = Data(base64Encoded: base64), let payload = JSONValue.parse(Array(data))?.objectValue,
            case .number(let exp)? = payload["exp"], exp.isFinite
        else { return nil }
        return Date(timeIntervalSince1970: exp)
    }

    /// Azure Arc's key directory: the agent writes each challenge's key there, readable by the himds group.
    package static func arcKeyDirectory(path: String?, exists: Bool, readable: Bool) -> DiagnosticCheck {
        let name = "arc keys"
        guard let path else {
            return DiagnosticCheck(name, .problem, "Azure Arc works on Linux and Windows only", fix: "Run on Linux or Windows.")
        }
        guard exists else {
            return DiagnosticCheck(
                name, .problem, "the key directory \(path) does not exist",
                fix: "Install the Azure Connected Machine agent (azcmagent) and connect this machine to Azure Arc.")
        }
        guard readable else {
            return DiagnosticCheck(
                name, .problem, "the key directory \(path) is not readable by this user",
                fix: "Add this user to the himds group (sudo usermod -a -G himds $USER) and log in again.")
        }
        return DiagnosticCheck(name, .ok, "the key directory \(path) is readable by this user")
    }

    /// A persistent cache's files: directories 0700, files 0600, and writable by this user.
    package static func cacheModes(
        description: String, directory: (path: String, mode: UInt16), files: [(path: String, mode: UInt16)], writable: Bool
    ) -> DiagnosticCheck {
        var wrong: [String] = []
        if directory.mode & 0o077 != 0 { wrong.append("\(directory.path) is \(octal(directory.mode)), not 0700") }
        for file in files where file.mode & 0o077 != 0 { wrong.append("\(file.path) is \(octal(file.mode)), not 0600") }
        if !wrong.isEmpty {
            return DiagnosticCheck(
                "cache", .problem, "\(description): " + wrong.joined(separator: "; "),
                fix: "Make the cache private: chmod 700 \(directory.path) and chmod 600 the files in it.")
        }
        guard writable else {
            return DiagnosticCheck(
                "cache", .problem, "\(description): \(directory.path) is not writable by this user",
                fix: "Run as the user that owns \(directory.path), or choose another cache with --cache.")
        }
        let fileText = files.isEmpty ? "no file yet" : files.map { "\(($0.path as NSString).lastPathComponent) \(octal($0.mode))" }.joined(separator: ", ")
        return DiagnosticCheck("cache", .ok, "\(description): opened; directory \(octal(directory.mode)), \(fileText); writable")
    }

    static func octal(_ mode: UInt16) -> String {
        "0" + String(mode & 0o777, radix: 8)
    }

    /// The attempt to get a token: its expiry, or the error with a fix.
    package static func token(resource: String, result: Result<AccessToken, any Error>, now: Date) -> DiagnosticCheck {
        switch result {
        case .success(let token):
            return DiagnosticCheck(
                "token", .ok, "a token for \(resource) was obtained; it expires in \(Int(token.expiresOn.timeIntervalSince(now))) s")
        case .failure(let error as ManagedIdentityError):
            return DiagnosticCheck("token", .problem, "\(error.code): \(error.message)", fix: fix(for: error))
        case .failure(let error):
            return DiagnosticCheck("token", .problem, "\(error)", fix: "Run `managed-identity token --verbose` to see each step.")
        }
    }

    /// The fix for an error, in one sentence.
    package static func fix(for error: ManagedIdentityError) -> String {
        if let hint = error.entraErrorCodes.lazy.compactMap(EntraErrorResponse.hint).first { return hint }
        switch error.code {
        case .unreachableNetwork:
            switch error.source {
            case .imds?, nil:
                return "This host has no reachable managed identity endpoint: run on Azure with an identity assigned, or "
                    + "try without Azure with `managed-identity token --emulator --resource https://management.azure.com`."
            case .workloadIdentity?:
                return "Let the pod reach \(ManagedIdentityVariable.authorityHost) (egress rules, DNS, proxy), and trust "
                    + "its certificate (--ca-file for a private authority such as the emulator)."
            case .serviceFabric?:
                return "Check that IDENTITY_ENDPOINT is the cluster's token service and IDENTITY_SERVER_THUMBPRINT its certificate's thumbprint."
            case let source?:
                return "Check that \(source.variables.first ?? "the endpoint variable") points at the identity endpoint of this host, and that it runs."
            }
        case .requestTimeout:
            return "The endpoint did not answer in time: try again, or give it longer with --timeout on a busy host."
        case .requestFailed where error.statusCode == 400 && error.source == .imds:
            return "Assign a managed identity to this VM (az vm identity assign), or name the user-assigned identity it has."
        case .requestFailed where error.statusCode == 401 || error.statusCode == 403:
            return "Use the secret variable that belongs to this endpoint (\(error.source?.variables.joined(separator: ", ") ?? "see the message"))."
        case .invalidResource:
            return "Pass a resource such as https://management.azure.com or a scope such as https://management.azure.com/.default."
        case .invalidEndpoint, .missingEnvironmentVariable, .invalidAuthority:
            return "Set the variable the message names to the value it describes, or unset it to let detection choose."
        case .federatedTokenFileUnreadable:
            return "Label the pod's service account azure.workload.identity/use=true and restart the pod, so the webhook projects the token file."
        case .invalidTrustedCertificates:
            return "Point --ca-file at a PEM file of the authority's CA certificates (the emulator reports its ca_file)."
        case .invalidIDType, .userAssignedNotSupported, .userAssignedNotConfigurableAtRuntime, .invalidManagedIdentityID:
            return "Name the identity by a kind this source takes, as the message says."
        default:
            return "Run `managed-identity token --verbose` with the same options to see each step."
        }
    }
}

extension Diagnostics {
    /// Reads workload identity's token file as the client does (blocking: call it off the cooperative pool).
    package static func readFederatedTokenFile(atPath path: String) -> Result<String, ManagedIdentityError> {
        FederatedTokenFile.readResult(atPath: path)
    }

    /// The Azure Arc agent's key directory on this platform, `nil` where the agent does not run.
    package static var arcKeyDirectory: String? { AzureArcEndpoint.platformKeyDirectory }
}
