import FuzzSupport

@testable import ManagedIdentity

// The error-body parser of every source (flat `error`/`error_description`, nested `error.code`,
// anything else quoted). Invariants: no crash, a bounded message, and a secret in the body does not
// survive redaction.

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
    return 0
}
