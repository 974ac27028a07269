import FuzzSupport
import ManagedIdentity

// The partition document (the file backend's format, and `exportDocument`/`importPartition`).
// Invariants: no crash; a document that decodes re-encodes to one that decodes to the same
// descriptor and entries, every entry in the document's own partition.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPartitionDocument(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    var input = FuzzInput(start, count)
    let bytes = input.rest()
    guard let decoded = try? PartitionDocument.decode(bytes) else { return 0 }
    for entry in decoded.entries where entry.partitionKey != decoded.descriptor.key {
        finding("an entry of partition \(entry.partitionKey) in a document of \(decoded.descriptor.key)")
    }
    let again = PartitionDocument.encode(descriptor: decoded.descriptor, entries: decoded.entries)
    guard let redecoded = try? PartitionDocument.decode(again) else { finding("a decoded document does not re-encode") }
    if redecoded.descriptor.key != decoded.descriptor.key { finding("the partition changed on a round trip") }
    if redecoded.entries.count != decoded.entries.count { finding("the entry count changed on a round trip") }
    // A document is a JSON object: its entries have no order.
    func sorted(_ entries: [TokenCacheEntry]) -> [TokenCacheEntry] {
        entries.sorted { ($0.resource, $0.tokenType) < ($1.resource, $1.tokenType) }
    }
    for (before, after) in zip(sorted(decoded.entries), sorted(redecoded.entries)) where before != after {
        finding("an entry changed on a round trip: \(before.resource) \(before.expiresOn.timeIntervalSince1970) \(before.cachedAt.timeIntervalSince1970) \(String(describing: before.refreshOn)) vs \(after.resource) \(after.expiresOn.timeIntervalSince1970) \(after.cachedAt.timeIntervalSince1970) \(String(describing: after.refreshOn))")
    }
    try? TokenCache().importPartition(bytes)
    return 0
}
