import Foundation
import Logging
import Synchronization

/// What `--verbose` prints: each thing the client does as a line a person reads, with the time
/// since the command started, on standard error. The library's log metadata is turned into words
/// (`attempt 2`, `status 429`, `in 12 ms`); it never holds a token or a secret, and neither does
/// anything this handler adds.
struct NarratingLogHandler: LogHandler {
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace
    let started: ContinuousClock.Instant

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var all = metadata
        if let extra = event.metadata { all.merge(extra) { $1 } }
        Self.write(Self.line(message: "\(event.message)", metadata: all, elapsed: ContinuousClock.now - started))
    }

    /// The context keys every line of a request carries; said once by the command, not on each line.
    static let context: Set<String> = ["managed-identity.source", "managed-identity.identity-kind", "managed-identity.correlation-id"]

    static func line(message: String, metadata: Logger.Metadata, elapsed: Duration) -> String {
        let milliseconds = Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
        var details: [String] = []
        func value(_ key: String) -> String? { metadata["managed-identity." + key].map { "\($0)" } }
        if let method = value("method"), let endpoint = value("endpoint") { details.append("\(method) \(endpoint)") }
        if let attempt = value("attempt") { details.append("attempt \(attempt)") }
        if let attempts = value("attempts") { details.append(attempts == "1" ? "1 attempt" : "\(attempts) attempts") }
        if let status = value("status"), status != "none" { details.append("status \(status)") }
        if let outcome = value("outcome"), outcome != "success" { details.append(outcome) }
        if let delay = value("delay") { details.append("waiting \(delay)") }
        if let duration = value("duration-ms") { details.append("in \(duration) ms") }
        let said: Set<String> = ["method", "endpoint", "attempt", "attempts", "status", "outcome", "delay", "duration-ms"]
        for (key, entry) in metadata.sorted(by: { $0.key < $1.key }) where !context.contains(key) {
            let short = key.hasPrefix("managed-identity.") ? String(key.dropFirst("managed-identity.".count)) : key
            if !said.contains(short) { details.append("\(short) \(entry)") }
        }
        let time = String(format: "%7.1f ms", milliseconds)
        return details.isEmpty ? "\(time)  \(message)" : "\(time)  \(message) (\(details.joined(separator: ", ")))"
    }

    static func write(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
}
