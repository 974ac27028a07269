import ArgumentParser
import Foundation
import ManagedIdentity

struct CacheCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cache",
        abstract: "Show or purge a token cache. Tokens themselves are never shown.",
        subcommands: [List.self, Purge.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List cached tokens by partition and resource, with their expiry.")

        @OptionGroup var cacheOptions: CacheOptions

        @Option(help: "table or json.")
        var output: Format = .table

        enum Format: String, ExpressibleByArgument, CaseIterable { case table, json }

        func run() async throws {
            do {
                try await cacheOptions.withBackend { backend in
                    guard let backend else {
                        print("The memory cache lives only as long as one process; there is nothing stored to list.")
                        return
                    }
                    let partitions = try await backend.storedPartitions()
                    switch output {
                    case .json: print(try json(partitions))
                    case .table: print(table(partitions), terminator: "")
                    }
                }
            } catch {
                reportAndExit(error)
            }
        }

        func table(_ partitions: [StoredTokenCachePartition]) -> String {
            guard !partitions.isEmpty else { return "No cached tokens in \(cacheOptions.cache).\n" }
            var text = ""
            let now = Date()
            for partition in partitions {
                let identity = partition.descriptor.identity
                text += "\(partition.descriptor.key)  \(partition.descriptor.source)  \(identity.kind.rawValue)"
                text += (identity.id.map { " \($0)" } ?? "") + "  \(partition.descriptor.endpoint)\n"
                for entry in partition.entries.sorted(by: { $0.resource < $1.resource }) {
                    let remaining = Int(entry.expiresOn.timeIntervalSince(now))
                    text += "    \(entry.resource)  expires \(iso(entry.expiresOn))"
                    text += remaining > 0 ? " (in \(remaining) s)" : " (expired)"
                    if let refreshOn = entry.refreshOn { text += "  refresh \(iso(refreshOn))" }
                    text += "\n"
                }
            }
            return text
        }

        func json(_ partitions: [StoredTokenCachePartition]) throws -> String {
            let rows = partitions.flatMap { partition in
                partition.entries.map { entry in
                    Row(
                        partition: partition.descriptor.key.rawValue, source: partition.descriptor.source.rawValue,
                        identityKind: partition.descriptor.identity.kind.rawValue, identityID: partition.descriptor.identity.id,
                        endpoint: partition.descriptor.endpoint, resource: entry.resource, tokenType: entry.tokenType,
                        expiresOn: Int64(entry.expiresOn.timeIntervalSince1970),
                        refreshOn: entry.refreshOn.map { Int64($0.timeIntervalSince1970) },
                        cachedAt: Int64(entry.cachedAt.timeIntervalSince1970))
                }
            }
            return try jsonLine(rows)
        }

        struct Row: Encodable {
            var partition: String
            var source: String
            var identityKind: String
            var identityID: String?
            var endpoint: String
            var resource: String
            var tokenType: String
            var expiresOn: Int64
            var refreshOn: Int64?
            var cachedAt: Int64

            enum CodingKeys: String, CodingKey {
                case partition, source, endpoint, resource
                case identityKind = "identity_kind"
                case identityID = "identity_id"
                case tokenType = "token_type"
                case expiresOn = "expires_on"
                case refreshOn = "refresh_on"
                case cachedAt = "cached_at"
            }
        }

        func iso(_ date: Date) -> String {
            ISO8601DateFormatter().string(from: date)
        }
    }

    struct Purge: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove cached tokens: all of them, or only the expired ones.")

        @OptionGroup var cacheOptions: CacheOptions

        @Flag(help: "Remove only expired tokens.")
        var expiredOnly = false

        func run() async throws {
            do {
                try await cacheOptions.withBackend { backend in
                    guard let backend else {
                        print("The memory cache lives only as long as one process; there is nothing stored to purge.")
                        return
                    }
                    let removed = try await backend.purge(expiredOnly: expiredOnly)
                    print("Removed \(removed) token\(removed == 1 ? "" : "s") from \(cacheOptions.cache).")
                }
            } catch {
                reportAndExit(error)
            }
        }
    }
}
