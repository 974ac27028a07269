import Foundation
import Logging
import Synchronization
import TokenCredentials

/// A credential for a developer's machine: tokens of the account signed in to the Azure CLI
/// (`az account get-access-token --output json --resource R`, with `--tenant T` when given), as
/// Azure's other SDKs fall back to where no managed identity endpoint exists.
///
/// ```swift
/// let credential = AzureCLICredential()
/// let token = try await credential.token(for: TokenRequestContext(scopes: ["https://vault.azure.net/.default"]))
/// ```
///
/// - The CLI is found on `PATH` and run with its arguments as an array, never through a shell; the
///   scope and tenant are checked to hold only the characters a resource URI or tenant id has.
/// - A run that takes longer than ``Configuration/processTimeout`` is killed (SIGTERM, then SIGKILL).
/// - Its errors become ``AzureCLICredentialError`` with what to do (`az login`); not installed and
///   not signed in say the credential is unavailable, so a chain moves on.
/// - Tokens are kept in memory per resource and tenant and served while valid for more than the
///   expiry margin (5 minutes), as the managed identity client does; concurrent requests for one
///   resource share one run of the CLI.
/// - A claims challenge cannot be answered by the CLI without a person; it throws an error naming the
///   `az login --claims-challenge` command to run.
public final class AzureCLICredential: TokenCredential {
    /// How the CLI is found and run.
    public struct Configuration: Sendable {
        /// The tenant to get tokens from; the CLI's default tenant when `nil`. A request's own tenant wins.
        public var tenantID: String?
        /// How long one run of the CLI may take before it is killed.
        public var processTimeout: Duration
        /// The environment the CLI runs in, and whose `PATH` it is found on.
        public var environment: [String: String]
        /// Tokens are served from memory only while valid for longer than this.
        public var expiryMargin: Duration
        /// The time source for expiry.
        public var clock: any ManagedIdentityClock

        /// Creates a configuration.
        public init(
            tenantID: String? = nil, processTimeout: Duration = .seconds(10),
            environment: [String: String] = ProcessInfo.processInfo.environment,
            expiryMargin: Duration = .seconds(300), clock: any ManagedIdentityClock = SystemClock()
        ) {
            self.tenantID = tenantID
            self.processTimeout = processTimeout
            self.environment = environment
            self.expiryMargin = expiryMargin
            self.clock = clock
        }
    }

    /// How the CLI is found and run.
    public let configuration: Configuration
    private let logger: Logger
    private let tokens = Mutex<[String: AccessTokenInfo]>([:])
    private let runs = SingleFlight<String, AccessTokenInfo>()

    /// Creates a credential; nothing runs until the first token is asked for.
    public init(configuration: Configuration = Configuration(), logger: Logger? = nil) {
        self.configuration = configuration
        self.logger = logger ?? ManagedIdentityClient.silentLogger
    }

    /// Gets a token for the one scope of `context`, from memory or from the CLI.
    /// - Throws: ``AzureCLICredentialError``, or `CancellationError` when the task is cancelled.
    public func token(for context: TokenRequestContext) async throws -> AccessTokenInfo {
        let resource = try AzureCLIInvocation.resource(of: context)
        let tenantID = try AzureCLIInvocation.validTenant(context.tenantID ?? configuration.tenantID)
        if let claims = context.claims {
            throw AzureCLIInvocation.claimsChallenge(claims, scope: context.scopes[0])
        }
        let key = (tenantID ?? "") + " " + resource
        let margin = ManagedIdentityClient.seconds(configuration.expiryMargin)
        if let cached = tokens.withLock({ $0[key] }), cached.expiresOn.timeIntervalSince(configuration.clock.now) > margin {
            return cached
        }
        let (token, _) = try await runs.run(key) { [self] in
            let token = try await self.runCLI(resource: resource, tenantID: tenantID)
            tokens.withLock { $0[key] = token }
            return token
        }
        return token
    }

    /// One run of `az account get-access-token`.
    private func runCLI(resource: String, tenantID: String?) async throws -> AccessTokenInfo {
        guard let executable = Self.executable(named: "az", path: configuration.environment["PATH"]) else {
            throw AzureCLICredentialError(
                code: .notInstalled,
                message: "The Azure CLI (az) is not on PATH. Install it (https://aka.ms/azure-cli), then run az login.")
        }
        logger.debug("asking the Azure CLI for a token", metadata: ["resource": "\(resource)"])
        let outcome: BoundedProcess.Outcome
        do {
            outcome = try await BoundedProcess.run(
                executable: executable, arguments: AzureCLIInvocation.arguments(resource: resource, tenantID: tenantID),
                environment: configuration.environment, timeout: configuration.processTimeout)
        } catch BoundedProcess.Failure.timedOut {
            throw AzureCLICredentialError(
                code: .timedOut,
                message: "The Azure CLI did not answer within \(configuration.processTimeout) and was stopped. "
                    + "Run az account get-access-token yourself to see why (a prompt, a proxy, a stale login).")
        } catch BoundedProcess.Failure.couldNotStart(let reason) {
            throw AzureCLICredentialError(
                code: .notInstalled, message: "The Azure CLI at \(executable) could not be started (\(reason)). Reinstall it, then run az login.")
        }
        guard outcome.exitStatus == 0 else {
            let failure = AzureCLIInvocation.failure(
                exitStatus: outcome.exitStatus, standardError: String(decoding: outcome.standardError, as: UTF8.self))
            logger.debug("the Azure CLI gave no token", metadata: ["code": "\(failure.code)"])
            throw failure
        }
        return try AzureCLIInvocation.token(fromOutput: outcome.standardOutput)
    }

    /// The first executable file named `name` in the directories of `path`.
    static func executable(named name: String, path: String?) -> String? {
        for directory in (path ?? "").split(separator: ":") where !directory.isEmpty {
            let candidate = String(directory.hasSuffix("/") ? directory + name : directory + "/" + name)
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: candidate, isDirectory: &isDirectory), !isDirectory.boolValue,
                FileManager.default.isExecutableFile(atPath: candidate)
            {
                return candidate
            }
        }
        return nil
    }
}
