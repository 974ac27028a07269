// swift-tools-version: 6.2
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "swift-managed-identity",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "ManagedIdentity", targets: ["ManagedIdentity"]),
        // The credential protocol alone, for libraries that take any credential (Foundation only).
        .library(name: "TokenCredentials", targets: ["TokenCredentials"]),
        // Bearer-token requests: a swift-openapi-runtime middleware and an async-http-client helper.
        .library(name: "AuthenticatedHTTP", targets: ["AuthenticatedHTTP"]),
        .library(name: "ManagedIdentityFileCache", targets: ["ManagedIdentityFileCache"]),
        .library(name: "ManagedIdentitySQLiteCache", targets: ["ManagedIdentitySQLiteCache"]),
        .library(name: "ManagedIdentityPostgresCache", targets: ["ManagedIdentityPostgresCache"]),
        .library(name: "ManagedIdentityEmulator", targets: ["ManagedIdentityEmulator"]),
        .library(name: "ManagedIdentityCacheConformance", targets: ["ManagedIdentityCacheConformance"]),
        .library(name: "ManagedIdentityTesting", targets: ["ManagedIdentityTesting"]),
        .executable(name: "managed-identity", targets: ["ManagedIdentityCLI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        // Already in the graph through async-http-client and Hummingbird: metrics and tracing cost no build time.
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-distributed-tracing.git", from: "1.7.3"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        // The middleware protocol generated OpenAPI clients call; small (swift-http-types only).
        .package(url: "https://github.com/apple/swift-openapi-runtime.git", from: "1.13.4"),
        // Tests only: the transport a generated client uses over async-http-client.
        .package(url: "https://github.com/swift-server/swift-openapi-async-http-client.git", from: "1.5.0"),
        // Builds the DocC catalog (`swift package generate-documentation`); nothing links it.
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
    ],
    targets: [
        .target(name: "TokenCredentials", swiftSettings: swiftSettings),
        .target(
            name: "AuthenticatedHTTP",
            dependencies: [
                "TokenCredentials",
                .product(name: "OpenAPIRuntime", package: "swift-openapi-runtime"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "ManagedIdentity",
            dependencies: [
                "TokenCredentials",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: swiftSettings
        ),
        // What both persistent backends share (file locks, atomic writes, encryption at rest); package-internal.
        .target(
            name: "CacheBackendSupport",
            dependencies: [
                "ManagedIdentity",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "ManagedIdentityFileCache",
            dependencies: [
                "ManagedIdentity",
                "CacheBackendSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "ManagedIdentitySQLiteCache",
            dependencies: [
                "ManagedIdentity",
                "CacheBackendSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "ManagedIdentityPostgresCache",
            dependencies: [
                "ManagedIdentity",
                "CacheBackendSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "ManagedIdentityEmulator",
            dependencies: [
                "ManagedIdentity",
                "ManagedIdentityTesting",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // What tests of this package and of its users share: a manual clock, the fake issuer, the
        // one format of fake tokens' claims (the emulator issues it too).
        .target(
            name: "ManagedIdentityTesting",
            dependencies: ["ManagedIdentity"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "ManagedIdentityCacheConformance",
            dependencies: ["ManagedIdentity", "ManagedIdentityTesting"],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "ManagedIdentityCLI",
            dependencies: [
                "ManagedIdentity",
                "ManagedIdentityFileCache",
                "ManagedIdentitySQLiteCache",
                "ManagedIdentityPostgresCache",
                "ManagedIdentityEmulator",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // Drives the persistent backends from many real processes in the cross-process and crash tests.
        .executableTarget(
            name: "CacheStressTool",
            dependencies: [
                "ManagedIdentity",
                "ManagedIdentityTesting",
                .product(name: "GRDB", package: "GRDB.swift"),
                "ManagedIdentityFileCache",
                "ManagedIdentitySQLiteCache",
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ManagedIdentityTests",
            dependencies: [
                "ManagedIdentity",
                "TokenCredentials",
                "TestSupport",
                "ManagedIdentityCacheConformance",
                "ManagedIdentityTesting",
                .product(name: "InMemoryLogging", package: "swift-log"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "InMemoryTracing", package: "swift-distributed-tracing"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "ServiceLifecycleTestKit", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // Starting built executables and making private directories, for the tests that run processes.
        .target(
            name: "TestSupport", dependencies: ["ManagedIdentity", "ManagedIdentityTesting"], path: "Tests/TestSupport",
            swiftSettings: swiftSettings),
        .testTarget(
            name: "PersistentCacheTests",
            dependencies: [
                "TestSupport", "ManagedIdentity", "ManagedIdentityFileCache", "ManagedIdentitySQLiteCache",
                "ManagedIdentityCacheConformance", "ManagedIdentityEmulator", "ManagedIdentityTesting", "CacheBackendSupport",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "InMemoryLogging", package: "swift-log"),
                .product(name: "Logging", package: "swift-log"),
            ],
            resources: [.copy("Fixtures")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PostgresCacheTests",
            dependencies: [
                "TestSupport", "ManagedIdentity", "ManagedIdentityPostgresCache", "ManagedIdentityCacheConformance",
                "ManagedIdentityTesting", "ManagedIdentityEmulator", "CacheBackendSupport",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "CacheBackendSupportTests",
            dependencies: [
                "CacheBackendSupport", "ManagedIdentity", "TestSupport",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ManagedIdentityEmulatorTests",
            dependencies: [
                "ManagedIdentity", "ManagedIdentityEmulator", "ManagedIdentityTesting", "ManagedIdentityFileCache", "TestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "InMemoryLogging", package: "swift-log"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "InMemoryTracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "AuthenticatedHTTPTests",
            dependencies: [
                "AuthenticatedHTTP", "TokenCredentials", "ManagedIdentity", "ManagedIdentityEmulator", "ManagedIdentityTesting",
                "TestSupport",
                .product(name: "OpenAPIRuntime", package: "swift-openapi-runtime"),
                .product(name: "OpenAPIAsyncHTTPClient", package: "swift-openapi-async-http-client"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            exclude: ["openapi.yaml", "openapi-generator-config.yaml"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ManagedIdentityCLITests",
            dependencies: ["TestSupport", "ManagedIdentity", "ManagedIdentityEmulator", "ManagedIdentityTesting"],
            swiftSettings: swiftSettings
        ),
    ]
)
