import Foundation
import ManagedIdentityCacheConformance
import Testing

@testable import ManagedIdentity

/// The example backend of "Implementing a cache backend" compiles, conforms, and is the very code
/// the article shows.
struct DocumentationExampleTests {
    /// A versioned store in memory, standing in for Redis.
    actor MemoryStore: VersionedKeyValueStore {
        var values: [String: (value: [UInt8], version: UInt64)] = [:]
        var leases: [String: (owner: String, until: ContinuousClock.Instant)] = [:]

        func acquire(_ key: String, owner: String, lease: Duration) async throws -> Bool {
            if let held = leases[key], held.owner != owner, held.until > .now { return false }
            leases[key] = (owner, .now + lease)
            return true
        }

        func release(_ key: String, owner: String) async throws {
            if leases[key]?.owner == owner { leases[key] = nil }
        }

        func get(_ key: String) async throws -> (value: [UInt8], version: UInt64)? { values[key] }

        func set(_ key: String, _ value: [UInt8], ifVersion expected: UInt64?) async throws -> UInt64? {
            guard values[key]?.version == expected else { return nil }
            let version = (values[key]?.version ?? 0) + 1
            values[key] = (value, version)
            return version
        }
    }

    @Test func theExampleBackendPassesTheConformanceSuite() async throws {
        let store = MemoryStore()
        try await TokenCacheConformance { KeyValueTokenCacheStorage(store: store) }.run(interleavings: 1_000)
    }

    @Test func theArticleShowsTheExampleAsCompiled() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let example = try String(
            contentsOf: root.appendingPathComponent("Tests/ManagedIdentityTests/DocumentationExample/KeyValueTokenCacheStorage.swift"),
            encoding: .utf8)
        let article = try String(
            contentsOf: root.appendingPathComponent("Sources/ManagedIdentity/Docs.docc/ImplementingACacheBackend.md"), encoding: .utf8)
        let blocks = article.components(separatedBy: "```swift\n").dropFirst().map { $0.components(separatedBy: "```")[0] }
        #expect(blocks.contains(example), "the article's example differs from DocumentationExample/KeyValueTokenCacheStorage.swift")
        #expect(example.split(separator: "\n", omittingEmptySubsequences: false).count < 120)
    }
}
