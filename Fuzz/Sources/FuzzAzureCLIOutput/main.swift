import Foundation
import FuzzSupport

@testable import ManagedIdentity

// What the Azure CLI prints (standard output and standard error) and its exit status: a program
// outside this process, possibly broken, an old version or a wrapper. Invariants: no crash; a token
// comes only from a JSON object with a non-empty accessToken and an expiry; no error carries what was
// printed on standard output, or anything shaped like a token from standard error.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzAzureCLIOutput(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    var input = FuzzInput(start, count)
    let exitStatus = Int32(input.choice(256))
    let output = input.field()
    let standardError = input.text()
    do {
        let token = try AzureCLIInvocation.token(fromOutput: output, timeZone: TimeZone(identifier: "UTC") ?? .current)
        if token.token.isEmpty { finding("an empty token") }
        guard let object = try? JSONSerialization.jsonObject(with: Data(output)) as? [String: Any],
            object["accessToken"] as? String == token.token
        else {
            finding("a token that is not the output's accessToken")
            return 0
        }
    } catch {
        let text = String(decoding: output, as: UTF8.self)
        if text.utf8.count >= 12, error.message.contains(text) { finding("the output in an error") }
    }
    let failure = AzureCLIInvocation.failure(exitStatus: exitStatus, standardError: standardError)
    if failure.message.range(of: #"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.?"#, options: .regularExpression) != nil {
        finding("something shaped like a token in an error: \(failure.message)")
    }
    return 0
}
