import FuzzSupport

@testable import ManagedIdentity

// The expiry parser: epoch seconds, relative seconds, ISO 8601 and App Service's US dates, as text
// and as numbers. Invariants: no crash, and any instant it returns is finite.

let now = 1_767_225_600.0

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzExpiry(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    var input = FuzzInput(start, count)
    let bytes = input.rest()
    let text = String(decoding: bytes, as: UTF8.self)
    if let instant = ExpiryParser.expiresOn(.string(text), now: now), !instant.isFinite {
        finding("an infinite expiry from text")
    }
    _ = ExpiryParser.seconds(.string(text))
    if bytes.count >= 8 {
        let number = bytes.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: Double.self) }
        if let instant = ExpiryParser.expiresOn(.number(number), now: now), !instant.isFinite {
            finding("an infinite expiry from a number")
        }
        _ = ExpiryParser.seconds(.number(number))
    }
    return 0
}
