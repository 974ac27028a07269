import FuzzSupport

@testable import ManagedIdentity

// The error-body parser of every source (flat `error`/`error_description`, nested `error.code`,
// anything else quoted), and Microsoft Entra's (workload identity). Invariants: no crash, a bounded
// message without control characters from Entra, and a secret in the body does not survive redaction.

let secret = "fuzz-secret-6f1d2c"

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzErrorResponse(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    var input = FuzzInput(start, count)
    let source = ManagedIdentitySource.allCases[input.choice(ManagedIdentitySource.allCases.count)]
    let body = input.rest()
    let parsed = ErrorResponseParser.parse(body, source: source)
    if parsed.message.utf8.count > 4096 { finding("an unbounded error message (\(parsed.message.utf8.count) bytes)") }
    if parsed.message.redacting([secret]).contains(secret) { finding("a secret survived redaction") }
    _ = ErrorResponseParser.quote(body)
    if let entra = EntraErrorResponse(body: body) {
        let failure = entra.failure(status: 400)
        if failure.message.utf8.count > 8192 { finding("an unbounded Entra error message (\(failure.message.utf8.count) bytes)") }
        if failure.message.unicodeScalars.contains(where: { $0.value < 0x20 }) { finding("a control character in an Entra error") }
        if failure.message.redacting([secret]).contains(secret) { finding("a secret survived redaction in an Entra error") }
    }
    _ = EntraErrorResponse.blamesResource(body, status: 500, source: source)
    return 0
}
