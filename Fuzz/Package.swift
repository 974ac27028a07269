// swift-tools-version: 6.2
import PackageDescription

// libFuzzer targets for every reader of bytes the process did not write itself. A separate package,
// so that the library's users never build them. Build and run with scripts/fuzz (from the
// repository root), which passes `--sanitize=fuzzer --sanitize=address`: libFuzzer supplies `main`
// and calls each target's `LLVMFuzzerTestOneInput`. Debug builds, so `@testable import` reaches the
// internal parsers.
let fuzzTargets = [
    "FuzzTokenResponse", "FuzzExpiry", "FuzzErrorResponse", "FuzzArcChallenge", "FuzzPartitionDocument",
    "FuzzFileBackend", "FuzzSQLiteRow", "FuzzEmulatorRequest", "FuzzCacheArguments", "FuzzBearerChallenge",
    "FuzzAzureCLIOutput",
]

let package = Package(
    name: "swift-managed-identity-fuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "swift-managed-identity", path: ".."),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
    ],
    targets: [
        .target(
            name: "FuzzSupport",
            dependencies: [.product(name: "ManagedIdentity", package: "swift-managed-identity")],
            swiftSettings: [.swiftLanguageMode(.v6)]
        )
    ]
        + fuzzTargets.map { name in
            .executableTarget(
                name: name,
                dependencies: [
                    "FuzzSupport",
                    .product(name: "ManagedIdentity", package: "swift-managed-identity"),
                    .product(name: "AuthenticatedHTTP", package: "swift-managed-identity"),
                    .product(name: "ManagedIdentityFileCache", package: "swift-managed-identity"),
                    .product(name: "ManagedIdentitySQLiteCache", package: "swift-managed-identity"),
                    .product(name: "ManagedIdentityPostgresCache", package: "swift-managed-identity"),
                    .product(name: "ManagedIdentityEmulator", package: "swift-managed-identity"),
                    .product(name: "ManagedIdentityTesting", package: "swift-managed-identity"),
                    .product(name: "GRDB", package: "GRDB.swift"),
                    .product(name: "Crypto", package: "swift-crypto"),
                    .product(name: "ArgumentParser", package: "swift-argument-parser"),
                ],
                swiftSettings: [.swiftLanguageMode(.v6)]
            )
        }
)
