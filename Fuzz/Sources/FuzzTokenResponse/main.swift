import Foundation
import FuzzSupport
import ManagedIdentity
import ManagedIdentityTesting

// The whole response path of every source, through the public client: status, headers and body
// chosen by the fuzzer; Azure Arc's challenge first when the source is Arc; workload identity with a
// token file whose content is the assertion. Invariants: no crash or hang, a token only from a 200,
// with a finite expiry, and no secret (an assertion included) in any error.

let secret = "fuzz-secret-6f1d2c"
let arcDirectory = fuzzDirectory + "/arc-token"
let environments: [ManagedIdentitySource: [String: String]] = [
    .imds: ["AZURE_POD_IDENTITY_AUTHORITY_HOST": "http://127.0.0.1:47999"],
    .appService: ["IDENTITY_ENDPOINT": "http://127.0.0.1:41564/msi/token", "IDENTITY_HEADER": secret],
    .machineLearning: [
        "MSI_ENDPOINT": "http://127.0.0.1:7071/msi/token", "MSI_SECRET": secret, "DEFAULT_IDENTITY_CLIENT_ID": "ml-default",
    ],
    .cloudShell: ["MSI_ENDPOINT": "http://127.0.0.1:40342/metadata/identity/oauth2/token"],
    .azureArc: ["IDENTITY_ENDPOINT": "http://127.0.0.1:40342/metadata/identity/oauth2/token", "IMDS_ENDPOINT": "http://127.0.0.1:40342"],
    .serviceFabric: [
        "IDENTITY_ENDPOINT": "https://127.0.0.1:2377/metadata/identity/oauth2/token", "IDENTITY_HEADER": secret,
        "IDENTITY_SERVER_THUMBPRINT": "ABABABABABABABABABABABABABABABABABABABAB",
    ],
]
// Workload identity's assertion is the token file's content: a secret that Entra's answer may echo.
let assertion = "fuzz-assertion-3e8a41"
let tokenFile: String = {
    try? FileManager.default.createDirectory(atPath: fuzzDirectory, withIntermediateDirectories: true)
    let path = fuzzDirectory + "/wi-token"
    _ = FileManager.default.createFile(atPath: path, contents: Data(assertion.utf8))
    return path
}()
let workloadIdentityEnvironment = [
    "AZURE_FEDERATED_TOKEN_FILE": tokenFile, "AZURE_TENANT_ID": "fuzz-tenant",
    "AZURE_AUTHORITY_HOST": "https://127.0.0.1:47998/", "AZURE_CLIENT_ID": "c-1",
]
let identities: [ManagedIdentityID] = [.systemAssigned, .clientID("c-1"), .objectID("o-1"), .resourceID("/sub/r-1")]
let statuses = [200, 200, 200, 200, 400, 401, 403, 404, 410, 429, 500, 503]

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTokenResponse(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    var input = FuzzInput(start, count)
    let source = ManagedIdentitySource.allCases[input.choice(ManagedIdentitySource.allCases.count)]
    let identity = identities[input.choice(identities.count)]
    guard source.supports(identity.kind) else { return 0 }
    let status = statuses[input.choice(statuses.count)]
    let headerValue = input.text()
    let body = input.rest()
    var responses = [HTTPTransportResponse]()
    if source == .azureArc {
        // The key file a challenge may name; the fuzzer finds the path in the dictionary.
        try? FileManager.default.createDirectory(atPath: arcDirectory, withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: arcDirectory + "/k.key", contents: Data("arc-key-9a7b".utf8))
        responses.append(HTTPTransportResponse(status: 401, headers: [HTTPHeader(name: "WWW-Authenticate", value: headerValue)]))
    }
    responses.append(
        HTTPTransportResponse(
            status: status, headers: [HTTPHeader(name: "Retry-After", value: headerValue), HTTPHeader(name: "Content-Type", value: "application/json")],
            body: body))
    let clock = ManualClock()
    let client: ManagedIdentityClient
    do {
        client = try ManagedIdentityClient(
            identity: identity,
            configuration: .init(
                source: source,
                environment: ManagedIdentityEnvironment(
                    variables: source == .workloadIdentity ? workloadIdentityEnvironment : environments[source] ?? [:]),
                retriesEnabled: false, clock: clock, arcKeyDirectory: arcDirectory, hostDiscriminator: "fuzz"),
            cache: TokenCache(), transport: ScriptedTransport(responses))
    } catch {
        finding("a valid configuration was refused: \(error)")
    }
    let outcome = runBlocking { () -> Result<AccessToken, any Error> in
        do { return .success(try await client.token(for: "https://vault.azure.net")) } catch { return .failure(error) }
    }
    switch outcome {
    case .success(let token):
        if status != 200 { finding("a token from a \(status) response") }
        if token.token.isEmpty { finding("an empty token") }
        if !token.expiresOn.timeIntervalSince1970.isFinite { finding("an infinite expiry") }
        if let refreshOn = token.refreshOn, refreshOn > token.expiresOn { finding("a refresh time after the expiry") }
    case .failure(let error):
        // Only where it is this source's secret: another source's endpoint may echo any text.
        let text = "\(error)" + ((error as? ManagedIdentityError)?.message ?? "")
        let secrets = (environments[source] ?? [:]).values.contains(secret) ? [secret] : []
        let sourceSecrets = source == .azureArc ? ["arc-key-9a7b"] : source == .workloadIdentity ? [assertion] : []
        for value in secrets + sourceSecrets where text.contains(value) {
            finding("a secret of \(source) in an error message")
        }
    }
    return 0
}
