import Foundation
import FuzzSupport

@testable import ManagedIdentity

// Azure Arc's challenge: the `WWW-Authenticate` header (hostile: it names the file to read) and the
// key file's contents. Invariants: no crash, and a key is only ever read from a `.key` file directly
// inside the allowed directory.

let allowed = fuzzDirectory + "/arc-keys"
let outside = fuzzDirectory + "/elsewhere"
let setUp: Void = {
    try? FileManager.default.createDirectory(atPath: allowed, withIntermediateDirectories: true)
    try? FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
    _ = FileManager.default.createFile(atPath: outside + "/secret.key", contents: Data("outside-key".utf8))
    try? FileManager.default.createSymbolicLink(atPath: allowed + "/link.key", withDestinationPath: outside + "/secret.key")
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzArcChallenge(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    _ = setUp
    var input = FuzzInput(start, count)
    let header = input.text()
    let contents = input.rest()
    _ = FileManager.default.createFile(atPath: allowed + "/k.key", contents: Data(contents))
    if let path = try? ArcChallenge.keyFilePath(fromHeader: header),
        let key = try? ArcChallenge.readKey(atPath: path, allowedDirectory: allowed)
    {
        if key.value == "outside-key" { finding("a key read from outside the allowed directory through \(path)") }
        let name = String(path.split(separator: "/").last ?? "")
        if !path.hasPrefix(allowed + "/") || !name.hasSuffix(".key") { finding("a key read from \(path)") }
    }
    if let key = try? ArcChallenge.readKey(atPath: allowed + "/k.key", allowedDirectory: allowed),
        key.value.utf8.count > ArcChallenge.maximumKeySize
    {
        finding("a key longer than the limit")
    }
    return 0
}
