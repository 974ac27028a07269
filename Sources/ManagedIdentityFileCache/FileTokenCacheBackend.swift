import CacheBackendSupport
import Crypto
import Foundation
import Logging
import ManagedIdentity
import Synchronization

/// A cache backend that keeps one JSON file per partition in a directory.
///
/// - Writes are atomic and durable: a temporary file in the same directory, fsync, rename, directory
///   fsync. A reader sees the old file or the new one, never a torn one.
/// - A write merges the one new token into the partition as stored on disk, under an `flock` of the
///   partition's lock file, so concurrent writers in any number of processes lose nothing; the kernel
///   releases the lock when a process dies, so a crash leaves no stale lock.
/// - A read costs one `lstat` when the file has not changed since it was loaded.
/// - Files are 0600 in a 0700 directory; a symbolic-link, foreign or group-writable directory is refused.
/// - A truncated, garbage, wrong-version or foreign file is moved aside as `.corrupt-<timestamp>`,
///   logged, and treated as empty.
/// - With an encryption key, files are sealed with AES-GCM; a wrong key is reported as such, not as corruption.
/// - File names are the partition keys (a hash), never user text.
public final class FileTokenCacheBackend: InspectableTokenCacheBackend {
    /// Options of the backend.
    public struct Configuration: Sendable {
        /// A 256-bit key to encrypt files with, or `nil` for plain JSON.
        public var encryptionKey: SymmetricKey?
        /// How long a process waits for another that is fetching the same token before fetching itself.
        public var refreshLockTimeout: Duration
        /// How long a write waits for the partition's lock.
        public var writeLockTimeout: Duration
        /// The most entries one partition file keeps.
        public var maximumEntriesPerPartition: Int

        /// Creates options; no encryption, 10 s lock timeouts and 1,000 entries per partition by default.
        public init(
            encryptionKey: SymmetricKey? = nil, refreshLockTimeout: Duration = .seconds(10),
            writeLockTimeout: Duration = .seconds(10), maximumEntriesPerPartition: Int = 1_000
        ) {
            self.encryptionKey = encryptionKey
            self.refreshLockTimeout = refreshLockTimeout
            self.writeLockTimeout = writeLockTimeout
            self.maximumEntriesPerPartition = maximumEntriesPerPartition
        }
    }

    /// The cache directory.
    public let directory: String
    let configuration: Configuration
    let cipher: AtRestCipher?
    let logger: Logger
    let lockDirectory: String
    /// How many times a partition was read from disk; tests use it to check unchanged files are not reread.
    let reloads = Atomic<Int>(0)
    /// Partition file paths, made once: building the string costs more than the `lstat` of a hit.
    private let paths = Mutex<[TokenCachePartitionKey: String]>([:])

    static let maximumFileSize = 8 << 20
    static let keyIDFile = ".encryption-key-id"
    /// The version recorded when a partition has no file.
    static let absent = TokenCacheVersion(0)

    /// Opens (creating if needed) a cache directory.
    /// - Throws: ``TokenCacheBackendError`` when the directory is unsafe, or the key does not match the cache's.
    public init(directory: String, configuration: Configuration = Configuration(), logger: Logger? = nil) throws(TokenCacheBackendError) {
        var directory = directory
        while directory.count > 1 && directory.hasSuffix("/") { directory.removeLast() }
        self.directory = directory
        self.configuration = configuration
        self.cipher = configuration.encryptionKey.map(AtRestCipher.init)
        self.logger = logger ?? Logger(label: "managed-identity.file-cache", factory: { _ in SwiftLogNoOpLogHandler() })
        self.lockDirectory = directory + "/.locks"
        do {
            try SecureDirectory.prepare(directory)
            try SecureDirectory.prepare(lockDirectory)
        } catch {
            throw TokenCacheBackendError(kind: .insecureDirectory, message: error.message)
        }
        try checkEncryptionKey()
    }

    /// The file of a partition.
    public func path(for key: TokenCachePartitionKey) -> String {
        if let path = paths.withLock({ $0[key] }) { return path }
        let path = "\(directory)/\(key.rawValue).json"
        paths.withLock { $0[key] = path }
        return path
    }

    // MARK: Hooks

    /// Loads the partition's file if it changed since it was loaded (one `lstat` when it did not).
    public func beforeAccess(_ notification: TokenCacheNotification) async throws {
        let key = notification.partitionKey
        let path = path(for: key)
        guard let info = POSIX.lstat(path) else {
            if notification.serializer.loadedVersion != Self.absent {
                notification.serializer.replaceEntries([], version: Self.absent)
            }
            return
        }
        if notification.serializer.loadedVersion == Self.version(of: info) { return }
        reloads.add(1, ordering: .relaxed)
        switch try load(key) {
        case .absent:
            notification.serializer.replaceEntries([], version: Self.absent)
        case .loaded(let document, let version):
            notification.serializer.replaceEntries(document.entries, version: version)
        case .corrupt(let reason, let inode):
            try await quarantine(key, inode: inode, reason: reason)
            notification.serializer.replaceEntries([], version: Self.absent)
        }
    }

    /// After a write: under the partition's lock, merges the written token into the file on disk.
    public func afterAccess(_ notification: TokenCacheNotification) async throws {
        guard notification.hasStateChanged else { return }
        let key = notification.partitionKey
        guard let lock = try await FileLock.acquire(path: lockPath(for: key), timeout: configuration.writeLockTimeout) else {
            throw TokenCacheBackendError(kind: .lockTimeout, message: "another process held the lock of \(key) too long")
        }
        defer { lock.release() }
        var stored: [TokenCacheEntry] = []
        let onDisk = POSIX.lstat(path(for: key)).map(Self.version(of:)) ?? Self.absent
        if onDisk == notification.serializer.loadedVersion {
            // Under the lock, a file that has not changed since it was loaded is what memory holds.
            stored = notification.serializer.entries
        } else {
            switch try load(key) {
            case .absent: break
            case .loaded(let document, _): stored = document.entries
            case .corrupt(let reason, let inode): quarantineLocked(key, inode: inode, reason: reason)
            }
        }
        let merged = TokenCacheEntry.merge(
            stored: stored, notification: notification, now: Date(), cap: configuration.maximumEntriesPerPartition)
        let version = try store(merged, descriptor: notification.serializer.descriptor)
        notification.serializer.replaceEntries(merged, version: version)
    }

    /// Holds a per-token `flock` while `body` fetches, so other processes wait and read the result.
    public func coordinateRefresh<Result: Sendable>(
        _ notification: TokenCacheNotification, _ body: () async throws -> Result
    ) async throws -> Result {
        try await RefreshCoordinator(directory: lockDirectory, timeout: configuration.refreshLockTimeout, logger: logger)
            .run(notification, body)
    }

    // MARK: Inspection

    /// Lists the partition files, without tokens.
    public func storedPartitions() async throws -> [StoredTokenCachePartition] {
        var partitions: [StoredTokenCachePartition] = []
        for key in try partitionKeysOnDisk() {
            guard case .loaded(let document, _) = try load(key) else { continue }
            partitions.append(
                StoredTokenCachePartition(
                    descriptor: document.descriptor, entries: document.entries.map(StoredTokenCacheEntry.init)))
        }
        return partitions.sorted { $0.descriptor.key < $1.descriptor.key }
    }

    /// Removes tokens from the files.
    public func purge(expiredOnly: Bool) async throws -> Int {
        var removed = 0
        for key in try partitionKeysOnDisk() {
            guard let lock = try await FileLock.acquire(path: lockPath(for: key), timeout: configuration.writeLockTimeout)
            else { continue }
            defer { lock.release() }
            switch try load(key) {
            case .absent: continue
            case .corrupt(let reason, let inode): quarantineLocked(key, inode: inode, reason: reason)
            case .loaded(let document, _):
                let now = Date()
                let kept = expiredOnly ? document.entries.filter { $0.expiresOn > now } : []
                removed += document.entries.count - kept.count
                if kept.count != document.entries.count {
                    _ = try store(kept, descriptor: document.descriptor)
                }
            }
        }
        return removed
    }

    // MARK: Files

    enum Loaded {
        case absent
        case loaded(PartitionDocument.Decoded, TokenCacheVersion)
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
        switch decrypt(bytes, key: key) {
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
            return .loaded(decoded, Self.version(of: info))
        } catch {
            return .corrupt(reason: error.message, inode: inode)
        }
    }

    enum DecryptFailure: Error {
        case wrongKey
        case corrupt(String)
    }

    private func decrypt(_ bytes: [UInt8], key: TokenCachePartitionKey) -> Result<[UInt8], DecryptFailure> {
        guard let cipher else {
            return AtRestCipher.isSealed(bytes) ? .failure(.wrongKey) : .success(bytes)
        }
        do {
            return .success(try cipher.open(bytes, context: key.rawValue))
        } catch .wrongKey {
            return .failure(.wrongKey)
        } catch {
            return .failure(.corrupt(AtRestCipher.isSealed(bytes) ? "it fails authentication" : "it is not encrypted"))
        }
    }

    /// Writes a partition (or removes its file when empty); the caller holds the partition's lock.
    private func store(_ entries: [TokenCacheEntry], descriptor: TokenCachePartitionDescriptor) throws -> TokenCacheVersion {
        let path = path(for: descriptor.key)
        if entries.isEmpty {
            unlink(path)
            return Self.absent
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
        return Self.version(of: info)
    }

    private func quarantine(_ key: TokenCachePartitionKey, inode: UInt64, reason: String) async throws {
        guard let lock = try await FileLock.acquire(path: lockPath(for: key), timeout: configuration.writeLockTimeout) else { return }
        defer { lock.release() }
        quarantineLocked(key, inode: inode, reason: reason)
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

    static func version(of info: stat) -> TokenCacheVersion {
        TokenCacheVersion(
            UInt64(info.st_ino), UInt64(info.st_size), POSIX.nanoseconds(info.st_mtim), POSIX.nanoseconds(info.st_ctim))
    }

    /// Compares the key with the one the cache was first written with, so a wrong key fails at
    /// start-up, with its own error, before any token request.
    private func checkEncryptionKey() throws(TokenCacheBackendError) {
        let path = "\(directory)/\(Self.keyIDFile)"
        let stored = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
        switch (cipher, stored) {
        case (nil, nil): return
        case (nil, .some):
            throw TokenCacheBackendError(
                kind: .missingEncryptionKey, message: "the cache in \(directory) is encrypted; supply its encryption key")
        case (let cipher?, let stored):
            let id = cipher.keyID.map { String(format: "%02x", $0) }.joined()
            if let stored {
                guard stored == id else {
                    throw TokenCacheBackendError(
                        kind: .wrongEncryptionKey,
                        message: "the encryption key does not match the one the cache in \(directory) was written with")
                }
            } else {
                do {
                    _ = try AtomicFile.write(Array((id + "\n").utf8), to: path, directory: directory)
                } catch {
                    throw TokenCacheBackendError(kind: .io, message: error.message)
                }
            }
        }
    }
}


extension TokenCacheSerializationError {
    var message: String { description }
}
