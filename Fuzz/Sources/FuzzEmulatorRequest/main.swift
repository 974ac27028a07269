import Foundation
import FuzzSupport
import ManagedIdentity

@testable import ManagedIdentityEmulator

// The emulator's request handling, which users run inside their own tests: the query string as it
// arrives (form-decoded), any method, path, headers and body, for every source. Invariants: no
// crash or hang; every answer is a valid HTTP status with a JSON body or none; a request without
// the source's secret, or for workload identity without the current federated assertion, never
// gets a token.

let assertion = "fuzz-federated-assertion"
let handlers: [EmulatorRequestHandler] = ManagedIdentitySource.allCases.map { source in
    let configuration = EmulatorConfiguration(source: source, arcKeyDirectory: fuzzDirectory + "/emulator-arc", secret: "emulator-secret")
    let state = EmulatorState(configuration: configuration)
    state.setFederatedToken(assertion, expires: Date(timeIntervalSince1970: 1_767_229_200))
    return EmulatorRequestHandler(
        configuration: configuration, state: state, secret: "emulator-secret",
        arcKeyDirectory: configuration.arcKeyDirectory, now: { Date(timeIntervalSince1970: 1_767_225_600) })
}
let methods = ["GET", "POST", "PUT", "DELETE", "get", ""]
let paths = [
    "/metadata/identity/oauth2/token", "/msi/token", "/token", "/", "",
    "/\(EmulatorConfiguration.defaultTenantID)/oauth2/v2.0/token",
]
let headerNames = [
    "metadata", "x-identity-header", "secret", "authorization", "content-type", "x-ms-client-request-id", "client-request-id",
]

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzEmulatorRequest(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    var input = FuzzInput(start, count)
    let handler = handlers[input.choice(handlers.count)]
    let method = methods[input.choice(methods.count)]
    let path = input.choice(2) == 0 ? paths[input.choice(paths.count)] : input.text()
    let query = FormDecoding.decode(input.text()) ?? []
    var headers: [(name: String, value: String)] = []
    for _ in 0..<input.choice(5) {
        let name = input.choice(2) == 0 ? headerNames[input.choice(headerNames.count)] : input.text().lowercased()
        headers.append((name, input.text()))
    }
    let request = EmulatorRequest(method: method, path: path, query: query, headers: headers, body: input.rest())
    let response = runBlocking { await handler.handle(request) }
    // Each input starts from a fresh emulator: counts, violations and Arc key files do not pile up.
    handler.state.resetCounts()
    for path in handler.state.takeArcKeyFiles() { try? FileManager.default.removeItem(atPath: path) }
    if !(100..<600).contains(response.status) { finding("an invalid status \(response.status)") }
    if !response.body.isEmpty, (try? JSONSerialization.jsonObject(with: Data(response.body.utf8))) == nil {
        finding("a body that is not JSON: \(response.body.prefix(80))")
    }
    let sentSecret = headers.contains { $0.value == "emulator-secret" } || query.contains { $0.value == "emulator-secret" }
        || String(decoding: request.body, as: UTF8.self).contains("emulator-secret")
    let needsSecret = [.appService, .machineLearning, .serviceFabric].contains(handler.configuration.source)
    if needsSecret, !sentSecret, response.status == 200, response.body.contains("access_token") {
        finding("a token without the secret")
    }
    if handler.configuration.source == .workloadIdentity, response.status == 200, response.body.contains("access_token"),
        !String(decoding: request.body, as: UTF8.self).contains(assertion)
    {
        finding("a workload identity token without the federated assertion")
    }
    return 0
}
