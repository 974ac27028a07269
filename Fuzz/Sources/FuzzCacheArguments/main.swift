import ArgumentParser
import Foundation
import FuzzSupport
import ManagedIdentity

// The tool's `--cache` argument (memory, file:, sqlite:, a postgres:// URL) and its
// `--encryption-key-file` contents (raw, hex or base64). Compiled with the tool's own
// CacheOption.swift (a link to it), so what runs is the tool's code. Invariants: no crash; a
// printed description never holds the URL's password; a key is only ever 32 bytes.

let keyPath = fuzzDirectory + "/key"

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCacheArguments(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    var input = FuzzInput(start, count)
    let argument = input.text()
    if let specification = CacheSpecification(argument: argument) {
        let printed = specification.description
        if case .postgres(let url) = specification, let password = URLComponents(string: url)?.password,
            password.count > 3, printed.contains(":" + password + "@")
        {
            finding("a password in the printed cache description")
        }
    }
    let contents = input.rest()
    if let key = TokenCacheEncryptionKey.decode(contents), key.bitCount != 256 { finding("a key of \(key.bitCount) bits") }
    _ = FileManager.default.createFile(atPath: keyPath, contents: Data(contents))
    if let options = try? CacheOptions.parse(["--encryption-key-file", keyPath]),
        let key = try? options.encryptionKey(), key.bitCount != 256
    {
        finding("a key of \(key.bitCount) bits")
    }
    return 0
}
