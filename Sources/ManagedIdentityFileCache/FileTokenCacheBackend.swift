import CacheBackendSupport
import Crypto
import Foundation
import Logging
import ManagedIdentity
import ServiceLifecycle
import Synchronization

/// A cache backend that keeps one JSON file per partition in a directory.
///
/// - Writes are atomic and durable: a temporary file in the same directory, fsync, rename, directory
///   fsync. A reader sees the old file or the new one, never a torn one.
/// - A write merges the one new token into the partition as stored on disk, under an `flock` of the
///   partition's lock file and the cache's retention rule, so concurrent writers in any number of
///   processes lose nothing; the kernel releases the lock when a process dies, so a crash leaves no
///   stale lock.
/// - A read costs one `lstat` when the file has not changed since it was loaded. Reading a changed
///   file, writing, syncing and removing run on NIO's thread pool, never on the cooperative pool.
/// - Files are 0600 in a 0700 directory; a symbolic-link, foreign or group-writable directory is refused.
/// - A truncated, garbage, wrong-version or foreign file is moved aside as `.corrupt-<timestamp>`,
///   logged, and treated as empty.
/// - With an encryption key, files are sealed with AES-GCM; a wrong key is reported as such, not as corruption.
/// - File names are the partition keys (a hash), never user text.
/// - Created without I/O and opened in the background (``TokenCacheBackendService``): when its service
///   runs, at ``start(within:)``, or at first use. A directory that cannot be written for a moment is
///   a miss: the tokens fetched meanwhile stay in memory and are written once it can be.
public final class FileTokenCacheBackend: TokenCacheStorage, InspectableTokenCacheBackend, TokenCacheBackendService {
    /// Options of the backend.
    public struct Configuration: Sendable {
        /// A 256-bit key to encrypt files with, or `nil` for plain JSON.
        public var encryptionKey: SymmetricKey?
        /// How long a process waits for another that is fetching the same token before fetching itself.
        public var refreshLockTimeout: Duration
        /// How long a write waits for the partition's lock.
        public var writeLockTimeout: Duration

        /// Creates options; no encryption, 10 s for the refresh lock (another process is fetching the
        /// token meanwhile) and 1 s for the write lock by default (a write that waits longer is kept
        /// and written later: the caller has its token already). The partition cap is the cache's
        /// (``TokenCache/maximumEntriesPerPartition``).
        public init(
            encryptionKey: SymmetricKey? = nil, refreshLockTimeout: Duration = .seconds(10),
            writeLockTimeout: Duration = .seconds(1)
        ) {
            self.encryptionKey = encryptionKey
            self.refreshLockTimeout = refreshLockTimeout
            self.writeLockTimeout = writeLockTimeout
        }
    }

    /// The cache directory.
    public let directory: String
    let configuration: Configuration
    let cipher: AtRestCipher?
    let logger: Logger
    let lockDirectory: String
    /// Partition file paths, made once: building the string costs more than the `lstat` of a hit.
    private let paths = Mutex<[TokenCachePartitionKey: String]>([:])
    /// The partitions this instance last read or wrote, by the version of the file it saw: a write
    /// that finds the file unchanged merges into these instead of parsing the file again.
    private let lastSeen = Mutex<[TokenCachePartitionKey: (version: Version, entries: [TokenCacheEntry])]>([:])

    /// The version of a partition's file: its inode, size, modification and change times, which
    /// together change with every rename onto it. Opaque outside this backend.
    public struct Version: Hashable, Sendable {
        let inode, size, modified, changed: UInt64

        /// The version of a partition without a file.
        static let absent = Version(inode: 0, size: 0, modified: 0, changed: 0)
    }

    static let maximumFileSize = 8 << 20
    static let keyIDFile = ".encryption-key-id"

    /// Opening the directory, retrying it, and the writes kept while it cannot be written.
    private let lifecycle: StoreLifecycle

    /// Creates the backend for a directory; nothing is touched until it opens (see ``TokenCacheBackendService``).
    public init(directory: String, configuration: Configuration = Configuration(), logger: Logger? = nil) {
        var directory = directory
        while directory.count > 1 && directory.hasSuffix("/") { directory.removeLast() }
        self.directory = directory
        self.configuration = configuration
        self.cipher = configuration.encryptionKey.map(AtRestCipher.init)
        let logger = logger ?? Logger(label: "managed-identity.file-cache", factory: { _ in SwiftLogNoOpLogHandler() })
        self.logger = logger
        self.lockDirectory = directory + "/.locks"
        self.lifecycle = StoreLifecycle(name: "the file token cache at \(directory)", logger: logger)
        lifecycle.bind(self) { backend in try await BlockingWork.run { try backend.prepare() } }
    }

    /// Creates the directory (0700) and checks it and the key: on the thread pool.
    /// - Throws: ``TokenCacheBackendError``: an unsafe directory or a wrong key fails for good; a
    ///   directory that cannot be created now is retried.
    private func prepare() throws(TokenCacheBackendError) {
        try SecureDirectory.prepare(directory)
        try SecureDirectory.prepare(lockDirectory)
        try checkEncryptionKey()
    }

    // MARK: Lifecycle

    /// Opens the directory and keeps retrying while it cannot be opened, until cancelled or a graceful shutdown.
    public func run() async throws {
        await cancelWhenGracefulShutdown { await self.lifecycle.run() }
        lifecycle.stop()
    }

    /// Starts opening the directory and waits for the first attempt, at most `within`.
    /// - Throws: ``TokenCacheBackendError`` when the directory is unsafe, not a directory, or the key
    ///   does not match the cache's.
    public func start(within: Duration = .seconds(1)) async throws(TokenCacheBackendError) {
        try await lifecycle.started(within: within)
    }

    /// Where the directory is: open, being opened, or failed for good.
    public var state: TokenCacheBackendState { lifecycle.publicState }

    /// The file of a partition.
    public func path(for key: TokenCachePartitionKey) -> String {
        if let path = paths.withLock({ $0[key] }) { return path }
        let path = "\(directory)/\(key.rawValue).json"
        paths.withLock { $0[key] = path }
        return path
    }

    // MARK: Storage

    /// The partition's file when it changed since `version` (one `lstat` when it did not).
    public func read(_ partition: TokenCachePartitionKey, version: inout Version?) async throws -> [TokenCacheEntry]? {
        try lifecycle.ensureOpen()
        let path = path(for: partition)
        guard let info = POSIX.lstat(path) else {
            defer { version = .absent }
            return version == .absent ? nil : []
        }
        if version == Version(info) { return nil }
        let loaded = try await BlockingWork.run { try self.load(partition) }
        switch loaded {
        case .absent:
            version = .absent
            return []
        case .loaded(let document, let current):
            remember(partition, version: current, entries: document.entries)
            version = current
            return document.entries
        case .corrupt(let reason, let inode):
            try await quarantine(partition, inode: inode, reason: reason)
            version = .absent
            return []
        }
    }

    /// Merges the token into the partition's file under its lock and the retention rule.
    public func write(
        _ entry: TokenCacheEntry, in partition: TokenCachePartitionDescriptor, retention: TokenCacheRetention
    ) async throws -> (entries: [TokenCacheEntry], version: Version) {
        do {
            try lifecycle.ensureOpen()
            return try await merge(entry, in: partition, retention: retention)
        } catch let error as TokenCacheBackendError where !error.isConfigurationError {
            // The directory cannot be written now: the token stays in memory and is written later.
            lifecycle.keep(partition.key.rawValue + "\n" + entry.resource + "\n" + entry.tokenType) { [weak self] in
                _ = try await self?.merge(entry, in: partition, retention: retention)
            }
            lifecycle.lost(error)
            throw error
        }
    }

    private func merge(
        _ entry: TokenCacheEntry, in partition: TokenCachePartitionDescriptor, retention: TokenCacheRetention
    ) async throws -> (entries: [TokenCacheEntry], version: Version) {
        try await withPartitionLock(partition.key) {
            let stored = try self.storedEntriesLocked(partition.key)
            let merged = retention.apply(to: stored, writing: entry, in: partition.key)
            return (merged, try self.store(merged, descriptor: partition))
        }
    }

    /// Removes tokens from the partition's file under its lock.
    public func remove(_ keys: [TokenCacheEntryKey], from partition: TokenCachePartitionKey) async throws {
        try lifecycle.ensureOpen()
        try await withPartitionLock(partition) {
            guard case .loaded(let document, _) = try self.load(partition) else { return }
            let removed = Set(keys)
            let kept = document.entries.filter { !removed.contains($0.key) }
            if kept.count != document.entries.count {
                _ = try self.store(kept, descriptor: document.descriptor)
            }
        }
    }

    /// Holds a per-token `flock` while `body` fetches, so other processes wait and read the result.
    public func withRefreshLock<Result: Sendable>(
        partition: TokenCachePartitionKey, resource: String, _ body: () async throws -> Result
    ) async throws -> Result {
        try lifecycle.ensureOpen()
        return try await RefreshCoordinator(directory: lockDirectory, timeout: configuration.refreshLockTimeout, logger: logger)
            .run(partition: partition, resource: resource, body)
    }

    /// Takes the partition's lock (waiting without blocking a thread), then runs `body` on the thread pool.
    private func withPartitionLock<T: Sendable>(
        _ key: TokenCachePartitionKey, _ body: @escaping @Sendable () throws -> T
    ) async throws -> T {
        guard let lock = try await FileLock.acquire(path: lockPath(for: key), timeout: configuration.writeLockTimeout) else {
            throw TokenCacheBackendError(kind: .lockTimeout, message: "another process held the lock of \(key) too long")
        }
        defer { lock.release() }
        return try await BlockingWork.run(body)
    }

    /// The partition as stored, read under its lock: from memory when the file is the one this
    /// instance last saw, else from the file (moving a corrupt one aside).
    private func storedEntriesLocked(_ key: TokenCachePartitionKey) throws -> [TokenCacheEntry] {
        guard let info = POSIX.lstat(path(for: key)) else { return [] }
        if let seen = lastSeen.withLock({ $0[key] }), seen.version == Version(info) { return seen.entries }
        switch try load(key) {
        case .absent: return []
        case .loaded(let document, _): return document.entries
        case .corrupt(let reason, let inode):
            quarantineLocked(key, inode: inode, reason: reason)
            return []
        }
    }

    private func remember(_ key: TokenCachePartitionKey, version: Version, entries: [TokenCacheEntry]) {
        lastSeen.withLock { $0[key] = (version, entries) }
    }

    // MARK: Inspection

    /// Lists the partition files, without tokens.
    public func storedPartitions() async throws -> [StoredTokenCachePartition] {
        try await start()
        return try await BlockingWork.run {
            var partitions: [StoredTokenCachePartition] = []
            for key in try self.partitionKeysOnDisk() {
                guard case .loaded(let document, _) = try self.load(key) else { continue }
                partitions.append(
                    StoredTokenCachePartition(
                        descriptor: document.descriptor, entries: document.entries.map(StoredTokenCacheEntry.init)))
            }
            return partitions.sorted { $0.descriptor.key < $1.descriptor.key }
        }
    }

    // MARK: Files

    enum Loaded: Sendable {
        case absent
        case loaded(PartitionDocument.Decoded, Version)
        case corrupt(reason: String, inode: UInt64)
    }

    func load(_ key: TokenCachePartitionKey) throws -> Loaded {
        let path = path(for: key)
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else {
            if errno == ENOENT { return .absent }
            if errno == ELOOP { return .corrupt(reason: "it is a symbolic link", inode: POSIX.lstat(path).map { UInt64($0.st_ino) } ?? 0) }
            throw TokenCacheBackendError(kind: .io, message: "cannot open \(path): \(POSIX.describeErrno())")
        }
        defer { close(fd) }
        guard let info = POSIX.fstat(fd) else { throw TokenCacheBackendError(kind: .io, message: "cannot examine \(path)") }
        let inode = UInt64(info.st_ino)
        guard info.st_mode & S_IFMT == S_IFREG else { return .corrupt(reason: "it is not a regular file", inode: inode) }
        let bytes: [UInt8]
        do {
            bytes = try POSIX.readAll(fd, limit: Self.maximumFileSize)
        } catch {
            return .corrupt(reason: error.message, inode: inode)
        }
        let json: [UInt8]
        switch AtRestCipher.openDocument(bytes, with: cipher, context: key.rawValue) {
        case .success(let plaintext): json = plaintext
        case .failure(.wrongKey):
            throw TokenCacheBackendError(
                kind: .wrongEncryptionKey,
                message: "\(path) is encrypted with another key; supply the key this cache was written with")
        case .failure(.corrupt(let reason)): return .corrupt(reason: reason, inode: inode)
        }
        do {
            let decoded = try PartitionDocument.decode(json)
            guard decoded.partitionKey == key else {
                return .corrupt(reason: "it holds partition \(decoded.partitionKey), not the one its name says", inode: inode)
            }
            return .loaded(decoded, Version(info))
        } catch {
            return .corrupt(reason: error.message, inode: inode)
        }
    }

    /// Writes a partition (or removes its file when empty); the caller holds the partition's lock.
    private func store(_ entries: [TokenCacheEntry], descriptor: TokenCachePartitionDescriptor) throws -> Version {
        let path = path(for: descriptor.key)
        if entries.isEmpty {
            unlink(path)
            lastSeen.withLock { $0[descriptor.key] = nil }
            return .absent
        }
        var bytes = PartitionDocument.encode(descriptor: descriptor, entries: entries)
        if let cipher { bytes = try cipher.seal(bytes, context: descriptor.key.rawValue) }
        do {
            _ = try AtomicFile.write(bytes, to: path, directory: directory)
        } catch {
            throw TokenCacheBackendError(kind: .io, message: error.message)
        }
        // Under the lock nobody else renames this file, so what is there now is what was written;
        // the rename changed its ctime, so take the version from the path.
        guard let info = POSIX.lstat(path) else { throw TokenCacheBackendError(kind: .io, message: "\(path) vanished") }
        let version = Version(info)
        remember(descriptor.key, version: version, entries: entries)
        return version
    }

    private func quarantine(_ key: TokenCachePartitionKey, inode: UInt64, reason: String) async throws {
        guard let lock = try await FileLock.acquire(path: lockPath(for: key), timeout: configuration.writeLockTimeout) else { return }
        defer { lock.release() }
        try await BlockingWork.run { self.quarantineLocked(key, inode: inode, reason: reason) }
    }

    /// Moves the file aside if it is still the one found corrupt (a writer may have replaced it meanwhile).
    private func quarantineLocked(_ key: TokenCachePartitionKey, inode: UInt64, reason: String) {
        let path = path(for: key)
        guard let info = POSIX.lstat(path), UInt64(info.st_ino) == inode else { return }
        let target = Quarantine.moveAside(path)
        logger.error(
            "a cache file was unreadable and has been moved aside; the cache goes on without it",
            metadata: ["managed-identity.file": "\(path)", "managed-identity.moved-to": "\(target ?? "nowhere")", "managed-identity.reason": "\(reason)"])
    }

    private func lockPath(for key: TokenCachePartitionKey) -> String {
        "\(lockDirectory)/\(key.rawValue).lock"
    }

    private func partitionKeysOnDisk() throws -> [TokenCachePartitionKey] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.compactMap { name in
            guard name.hasSuffix(".json") else { return nil }
            return TokenCachePartitionKey(rawValue: String(name.dropLast(5)))
        }
    }

    /// Compares the key with the one the cache was first written with, so a wrong key fails at
    /// start-up, with its own error, before any token request.
    private func checkEncryptionKey() throws(TokenCacheBackendError) {
        let path = "\(directory)/\(Self.keyIDFile)"
        let recorded = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
        guard let id = try AtRestCipher.checkKey(cipher, recorded: recorded, location: "in \(directory)") else { return }
        do {
            _ = try AtomicFile.write(Array((id + "\n").utf8), to: path, directory: directory)
        } catch {
            throw TokenCacheBackendError(kind: .io, message: error.message)
        }
    }
}


extension FileTokenCacheBackend.Version {
    init(_ info: stat) {
        self.init(
            inode: UInt64(info.st_ino), size: UInt64(info.st_size), modified: POSIX.nanoseconds(info.st_mtim),
            changed: POSIX.nanoseconds(info.st_ctim))
    }
}

extension TokenCacheSerializationError {
    var message: String { description }
}
