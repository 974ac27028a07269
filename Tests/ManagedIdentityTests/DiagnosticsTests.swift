import Foundation
import Testing

@testable import ManagedIdentity

/// The doctor's decisions, from facts given by hand.
struct DiagnosticsTests {
    static let now = Date(timeIntervalSince1970: 1_800_000_000)

    static func jwt(exp: Int?) -> String {
        let payload = exp.map { #"{"exp":\#($0),"sub":"system:serviceaccount:default:wi"}"# } ?? #"{"sub":"x"}"#
        let encoded = Data(payload.utf8).base64EncodedString().replacingOccurrences(of: "=", with: "")
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
        return "eyJhbGciOiJSUzI1NiJ9." + encoded + ".c2ln"
    }

    @Test func aReadableTokenFileSaysWhenItExpires() {
        let check = Diagnostics.tokenFile(path: "/t", read: .success(Self.jwt(exp: 1_800_003_600)), now: Self.now)
        #expect(check == DiagnosticCheck("token file", .ok, "/t is readable; its token expires in 3600 s"))
    }

    @Test func anExpiredTokenFileIsAProblemWithAFix() {
        let check = Diagnostics.tokenFile(path: "/t", read: .success(Self.jwt(exp: 1_799_999_000)), now: Self.now)
        #expect(check.verdict == .problem)
        #expect(check.detail == "/t is readable, but its token expired 1000 s ago")
        #expect(check.fix?.contains("kubelet") == true)
    }

    @Test func aTokenFileWithoutAnExpiryIsAWarning() {
        #expect(Diagnostics.tokenFile(path: "/t", read: .success("not-a-jwt"), now: Self.now).verdict == .warning)
        #expect(Diagnostics.tokenFile(path: "/t", read: .success(Self.jwt(exp: nil)), now: Self.now).verdict == .warning)
    }

    @Test func anUnreadableTokenFileCarriesTheReadersMessage() {
        let error = FederatedTokenFile.unreadable("/t", "it does not exist")
        let check = Diagnostics.tokenFile(path: "/t", read: .failure(error), now: Self.now)
        #expect(check.verdict == .problem)
        #expect(check.detail.contains("'/t'") && check.detail.contains("it does not exist"))
        #expect(check.fix?.contains("azure.workload.identity/use=true") == true)
    }

    @Test(arguments: [
        (Optional("/var/opt/azcmagent/tokens"), true, true, DiagnosticCheck.Verdict.ok, nil as String?),
        ("/var/opt/azcmagent/tokens", true, false, .problem, "himds"),
        ("/var/opt/azcmagent/tokens", false, false, .problem, "azcmagent"),
        (nil, false, false, .problem, "Linux or Windows"),
    ])
    func theArcKeyDirectoryMustBeReadable(path: String?, exists: Bool, readable: Bool, verdict: DiagnosticCheck.Verdict, fix: String?) {
        let check = Diagnostics.arcKeyDirectory(path: path, exists: exists, readable: readable)
        #expect(check.verdict == verdict)
        if let fix { #expect(check.fix?.contains(fix) == true) } else { #expect(check.fix == nil) }
    }

    @Test func cacheModesMustBePrivateAndWritable() {
        let good = Diagnostics.cacheModes(description: "file:/c", directory: ("/c", 0o700), files: [("/c/a.json", 0o600)], writable: true)
        #expect(good == DiagnosticCheck("cache", .ok, "file:/c: opened; directory 0700, a.json 0600; writable"))
        let open = Diagnostics.cacheModes(
            description: "file:/c", directory: ("/c", 0o750), files: [("/c/a.json", 0o644)], writable: true)
        #expect(open.verdict == .problem)
        #expect(open.detail == "file:/c: /c is 0750, not 0700; /c/a.json is 0644, not 0600")
        let readOnly = Diagnostics.cacheModes(description: "file:/c", directory: ("/c", 0o700), files: [], writable: false)
        #expect(readOnly.verdict == .problem && readOnly.fix?.contains("--cache") == true)
    }

    @Test func theVariablesCheckNamesButNeverShowsValues() {
        let check = Diagnostics.variables(ManagedIdentityEnvironment(variables: ["IDENTITY_HEADER": "s3cr3t", "IDENTITY_ENDPOINT": "http://x", "HOME": "/h"]))
        #expect(check.detail == "set: IDENTITY_ENDPOINT, IDENTITY_HEADER")
    }

    @Test func everyErrorGetsAOneSentenceFix() {
        let errors: [ManagedIdentityError] = [
            ManagedIdentityError(code: .unreachableNetwork, message: "", source: .imds),
            ManagedIdentityError(code: .unreachableNetwork, message: "", source: .workloadIdentity),
            ManagedIdentityError(code: .unreachableNetwork, message: "", source: .appService),
            ManagedIdentityError(code: .requestTimeout, message: ""),
            ManagedIdentityError(code: .requestFailed, message: "", source: .imds, statusCode: 400),
            ManagedIdentityError(code: .requestFailed, message: "", source: .appService, statusCode: 401),
            ManagedIdentityError(code: .invalidResource, message: ""),
            ManagedIdentityError(code: .federatedTokenFileUnreadable, message: ""),
            ManagedIdentityError(code: .invalidAuthority, message: ""),
        ]
        let fixes = errors.map(Diagnostics.fix)
        #expect(Set(fixes).count == fixes.count, "each error has its own fix")
        #expect(fixes.allSatisfy { $0.hasSuffix(".") && !$0.dropLast().contains(". ") }, "one sentence each")
        var entra = ManagedIdentityError(code: .requestFailed, message: "", source: .workloadIdentity, statusCode: 400)
        entra.entraErrorCodes = [700213]
        #expect(Diagnostics.fix(for: entra) == EntraErrorResponse.hint(for: 700213))
    }
}
