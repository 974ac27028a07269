// swift-tools-version: 6.2
import PackageDescription

// Benchmarks live in their own package so users of the library never resolve ordo-one/benchmark.
// Run them with: swift package --allow-writing-to-package-directory benchmark
let package = Package(
    name: "swift-managed-identity-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "swift-managed-identity", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-openapi-runtime.git", from: "1.13.4"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
    ],
    targets: [
        .executableTarget(
            name: "CacheBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "ManagedIdentity", package: "swift-managed-identity"),
                .product(name: "TokenCredentials", package: "swift-managed-identity"),
                .product(name: "AuthenticatedHTTP", package: "swift-managed-identity"),
                .product(name: "OpenAPIRuntime", package: "swift-openapi-runtime"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "ManagedIdentityFileCache", package: "swift-managed-identity"),
                .product(name: "ManagedIdentitySQLiteCache", package: "swift-managed-identity"),
                .product(name: "ManagedIdentityPostgresCache", package: "swift-managed-identity"),
                .product(name: "ManagedIdentityCacheConformance", package: "swift-managed-identity"),
                .product(name: "ManagedIdentityTesting", package: "swift-managed-identity"),
                .product(name: "ManagedIdentityEmulator", package: "swift-managed-identity"),
            ],
            path: "Benchmarks/CacheBenchmarks",
            swiftSettings: [.swiftLanguageMode(.v6)],
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        )
    ]
)
