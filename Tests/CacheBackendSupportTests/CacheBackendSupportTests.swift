import CacheBackendSupport
import Crypto
import Foundation
import Logging
import ManagedIdentity
import Synchronization
import Testing
import TestSupport

/// Each piece the persistent backends share, on its own.
struct FileLockTests {
    @Test func aHeldLockMakesAnotherAcquirerWaitThenGiveUp() async throws {
        let path = try TemporaryDirectory.make() + "/a.lock"
        let held = try #require(try await FileLock.acquire(path: path, timeout: .seconds(1)))
        // A second open file description conflicts, in this process as in another.
        #expect(try await FileLock.acquire(path: path, timeout: .milliseconds(30)) == nil)
        held.release()
        let again = try #require(try await FileLock.acquire(path: path, timeout: .seconds(1)))
        again.release()
        again.release()
    }

    @Test func releasingOnDeinitFreesTheLock() async throws {
        let path = try TemporaryDirectory.make() + "/b.lock"
        do { _ = try await FileLock.acquire(path: path, timeout: .seconds(1)) }
        #expect(try await FileLock.acquire(path: path, timeout: .milliseconds(100)) != nil)
    }

    @Test func aBlockingAcquireTakesAFreeLockAndGivesUpOnAHeldOneAtItsBound() async throws {
        let path = try TemporaryDirectory.make() + "/c.lock"
        let lock = try #require(try FileLock.acquireBlocking(path: path, timeout: .seconds(1)))
        #expect(POSIX.lstat(path).map { $0.st_mode & 0o777 } == 0o600)
        // Held: a second acquire (its own descriptor, so flock refuses it) returns nil at the bound.
        #expect(try FileLock.acquireBlocking(path: path, timeout: .milliseconds(50)) == nil)
        lock.release()
        #expect(try FileLock.acquireBlocking(path: path, timeout: .milliseconds(50)) != nil)
    }

    @Test func aSymbolicLinkAsLockFileIsRefused() async throws {
        let directory = try TemporaryDirectory.make()
        symlink(directory + "/elsewhere", directory + "/d.lock")
        await #expect(throws: BackendIOError.self) { try await FileLock.acquire(path: directory + "/d.lock", timeout: .seconds(1)) }
    }
}

struct AtomicFileTests {
    @Test func aWriteLeavesOnlyTheNewFileMode0600() throws {
        let directory = try TemporaryDirectory.make()
        let path = directory + "/file.json"
        _ = try AtomicFile.write(Array("one".utf8), to: path, directory: directory)
        _ = try AtomicFile.write(Array("two".utf8), to: path, directory: directory)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "two")
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["file.json"])
        #expect(POSIX.lstat(path).map { $0.st_mode & 0o777 } == 0o600)
    }

    @Test func aFailedWriteLeavesNoTemporaryFile() throws {
        let directory = try TemporaryDirectory.make()
        try FileManager.default.createDirectory(atPath: directory + "/target", withIntermediateDirectories: false)
        _ = FileManager.default.createFile(atPath: directory + "/target/inside", contents: Data())
        // Renaming a file onto a non-empty directory fails.
        #expect(throws: BackendIOError.self) { try AtomicFile.write([1], to: directory + "/target", directory: directory) }
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["target"])
    }
}

struct SecureDirectoryTests {
    @Test func aMissingDirectoryIsCreated0700() throws {
        let path = try TemporaryDirectory.make() + "/a/b"
        try SecureDirectory.prepare(path)
        #expect(POSIX.lstat(path).map { $0.st_mode & 0o777 } == 0o700)
    }

    @Test func aSymbolicLinkIsRefused() throws {
        let base = try TemporaryDirectory.make()
        try FileManager.default.createDirectory(atPath: base + "/real", withIntermediateDirectories: false)
        symlink(base + "/real", base + "/link")
        #expect { try SecureDirectory.prepare(base + "/link") } throws: {
            "\($0)".contains("symbolic link") && ($0 as? TokenCacheBackendError)?.kind == .insecureDirectory
        }
    }

    @Test func aDirectoryWritableByOthersIsRefusedWithTheFix() throws {
        let path = try TemporaryDirectory.make()
        chmod(path, 0o777)
        #expect { try SecureDirectory.prepare(path) } throws: { "\($0)".contains("chmod 700") }
    }

    @Test func aFileIsNotADirectory() throws {
        let path = try TemporaryDirectory.make() + "/file"
        _ = FileManager.default.createFile(atPath: path, contents: Data())
        #expect { try SecureDirectory.prepare(path) } throws: {
            "\($0)".contains("not a directory") && ($0 as? TokenCacheBackendError)?.isConfigurationError == true
        }
    }

    @Test func aPathUnderAFileIsAConfigurationErrorNoWaitMends() throws {
        let file = try TemporaryDirectory.make() + "/file"
        _ = FileManager.default.createFile(atPath: file, contents: Data())
        #expect { try SecureDirectory.prepare(file + "/cache") } throws: {
            ($0 as? TokenCacheBackendError)?.kind == .misconfigured && "\($0)".contains("not a directory")
        }
    }
}

struct QuarantineTests {
    @Test func anUnreadableFileIsMovedAsideWithATimestamp() throws {
        let directory = try TemporaryDirectory.make()
        let path = directory + "/p.json"
        _ = FileManager.default.createFile(atPath: path, contents: Data("garbage".utf8))
        let target = try #require(Quarantine.moveAside(path))
        #expect(target.hasPrefix(path + ".corrupt-"))
        #expect(!FileManager.default.fileExists(atPath: path))
        #expect(try String(contentsOfFile: target, encoding: .utf8) == "garbage")
        #expect(Quarantine.moveAside(path) == nil)
    }
}

struct AtRestCipherTests {
    let cipher = AtRestCipher(key: SymmetricKey(size: .bits256))

    @Test func sealedDataOpensWithTheKeyAndContextOnly() throws {
        let sealed = try cipher.seal(Array("secret-token".utf8), context: "partition-a")
        #expect(AtRestCipher.isSealed(sealed))
        #expect(!sealed.containsSubsequence(Array("secret-token".utf8)))
        #expect(try cipher.open(sealed, context: "partition-a") == Array("secret-token".utf8))
        // Moved to another place, it fails as damaged data.
        #expect(throws: AtRestCipher.OpenError.corrupt) { try cipher.open(sealed, context: "partition-b") }
        // Another key is told apart from damage.
        #expect(throws: AtRestCipher.OpenError.wrongKey) {
            try AtRestCipher(key: SymmetricKey(size: .bits256)).open(sealed, context: "partition-a")
        }
        var tampered = sealed
        tampered[tampered.count - 1] ^= 1
        #expect(throws: AtRestCipher.OpenError.corrupt) { try cipher.open(tampered, context: "partition-a") }
        #expect(throws: AtRestCipher.OpenError.corrupt) { try cipher.open(Array("plain".utf8), context: "partition-a") }
    }

    @Test func theKeyIDIsStableForAKeyAndDiffersBetweenKeys() {
        let key = SymmetricKey(size: .bits256)
        #expect(AtRestCipher(key: key).keyID == AtRestCipher(key: key).keyID)
        #expect(AtRestCipher(key: key).keyID != cipher.keyID)
        #expect(cipher.keyID.count == 8)
    }
}

/// The row sealing and key settling the SQLite and PostgreSQL backends share.
struct TokenRowSealingTests {
    let key = SymmetricKey(size: .bits256)
    let partition = TokenCachePartitionKey(rawValue: "mi1-" + String(repeating: "a", count: 64))

    @Test func aSealedTokenOpensInItsOwnRowOnly() throws {
        let sealing = TokenRowSealing(encryptionKey: key, location: "in a test")
        let partition = try #require(partition)
        let row = TokenRowSealing.context(partition: partition, resource: "https://r", tokenType: "Bearer")
        let stored = try sealing.seal("secret-token", context: row)
        #expect(stored.hasPrefix("sealed:") && !stored.contains("secret-token"))
        #expect(try sealing.open(stored, context: row, logger: Logger(label: "test")) == "secret-token")
        // Copied into another resource's row, or another host's scope: ignored, never served.
        let otherResource = TokenRowSealing.context(partition: partition, resource: "https://other", tokenType: "Bearer")
        let otherScope = TokenRowSealing.context(scope: "host-b", partition: partition, resource: "https://r", tokenType: "Bearer")
        #expect(try sealing.open(stored, context: otherResource, logger: Logger(label: "test")) == nil)
        #expect(try sealing.open(stored, context: otherScope, logger: Logger(label: "test")) == nil)
        // A plain token in an encrypted cache is ignored; a sealed one without the key is a typed error.
        #expect(try sealing.open("plain", context: row, logger: Logger(label: "test")) == nil)
        #expect(throws: TokenCacheBackendError.self) {
            try TokenRowSealing(encryptionKey: nil, location: "x").open(stored, context: row, logger: Logger(label: "test"))
        }
    }

    @Test func theRowLayoutIsTheStoredFormat() throws {
        let partition = try #require(partition)
        #expect(TokenRowSealing.context(partition: partition, resource: "r", tokenType: "t") == partition.rawValue + "\nr\nt")
        #expect(TokenRowSealing.context(scope: "s", partition: partition, resource: "r", tokenType: "t") == "s\n" + partition.rawValue + "\nr\nt")
    }

    @Test func theFirstKeyIsRecordedAndAnotherIsRefused() throws {
        let recorded = Mutex<String?>(nil)
        let first = TokenRowSealing(encryptionKey: key, location: "in a test")
        try first.settleKey(recorded: { recorded.withLock { $0 } }, recordIfAbsent: { id in recorded.withLock { $0 = $0 ?? id } })
        #expect(recorded.withLock { $0 } == AtRestCipher(key: key).keyIDText)
        // Opened again with the same key: nothing changes.
        try first.settleKey(recorded: { recorded.withLock { $0 } }, recordIfAbsent: { _ in Issue.record("recorded twice") })

        let other = TokenRowSealing(encryptionKey: SymmetricKey(size: .bits256), location: "in a test")
        #expect(throws: TokenCacheBackendError.self) {
            try other.settleKey(recorded: { recorded.withLock { $0 } }, recordIfAbsent: { _ in })
        }
        let none = TokenRowSealing(encryptionKey: nil, location: "in a test")
        do {
            try none.settleKey(recorded: { recorded.withLock { $0 } }, recordIfAbsent: { _ in })
            Issue.record("an encrypted cache opened without its key")
        } catch let error as TokenCacheBackendError {
            #expect(error.kind == .missingEncryptionKey)
        }
    }

    @Test func anotherProcessRecordingItsKeyFirstIsCaught() throws {
        // Both read "nothing recorded"; the other process's insert wins, ours is ignored.
        let recorded = Mutex<String?>(nil)
        let sealing = TokenRowSealing(encryptionKey: key, location: "in a test")
        do {
            try sealing.settleKey(
                recorded: { recorded.withLock { $0 } },
                recordIfAbsent: { _ in recorded.withLock { $0 = AtRestCipher(key: SymmetricKey(size: .bits256)).keyIDText } })
            Issue.record("a cache first encrypted by another key was accepted")
        } catch let error as TokenCacheBackendError {
            #expect(error.kind == .wrongEncryptionKey)
        }
    }

    @Test func aStoreThatDoesNotKeepTheIDIsAnErrorNotALoop() async throws {
        let sealing = TokenRowSealing(encryptionKey: key, location: "in a test")
        do {
            try await sealing.settleKey(recorded: { () async throws -> String? in nil }, recordIfAbsent: { (_: String) async throws in })
            Issue.record("a store that forgets the key id was accepted")
        } catch let error as TokenCacheBackendError {
            #expect(error.kind == .io)
        }
    }
}

/// The lifecycle every backend shares, with a store that a test opens and breaks at will.
struct StoreLifecycleTests {
    final class Store: Sendable {
        let opens = Counter()
        let lifecycle = StoreLifecycle(name: "a test store", logger: Logger(label: "test"))
        init() { lifecycle.bind(self) { store in store.opens.increment() } }
    }

    /// Polls `condition` for at most `within` (a bound on a real wait, never what is measured).
    func eventually(within: Duration = .seconds(20), _ condition: () -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + within
        while !condition() {
            guard ContinuousClock.now < deadline else { return false }
            try await Task.sleep(for: .milliseconds(10))
        }
        return true
    }

    @Test func aWriteThatFailedWhileTheStoreStayedOpenIsStoredLaterWithoutAnOutage() async throws {
        let store = Store()
        try await store.lifecycle.started(within: .seconds(5))
        #expect(try await eventually { if case .open = store.lifecycle.phase { true } else { false } })
        let attempts = Counter()
        // A slow answer: the write fails twice more, then is stored; the store never closes.
        store.lifecycle.keep("k") {
            attempts.increment()
            if attempts.value < 3 { throw TokenCacheBackendError(kind: .io, message: "the database did not answer within 2 s") }
        }
        #expect(try await eventually { store.lifecycle.pendingWrites == 0 && attempts.value == 3 })
        #expect(store.opens.value == 1, "the store was not reopened for a slow write")
        guard case .open = store.lifecycle.phase else {
            Issue.record("the store closed: \(store.lifecycle.phase)")
            return
        }
        try store.lifecycle.ensureOpen()
    }

    @Test func writesKeptDuringAnOutageAreStoredOnceItIsBackNewestPerKey() async throws {
        let store = Store()
        try await store.lifecycle.started(within: .seconds(5))
        #expect(try await eventually { if case .open = store.lifecycle.phase { true } else { false } })
        let stored = Mutex<[String]>([])
        store.lifecycle.keep("a") { stored.withLock { $0.append("a-old") } }
        store.lifecycle.keep("a") { stored.withLock { $0.append("a-new") } }
        store.lifecycle.keep("b") { stored.withLock { $0.append("b") } }
        store.lifecycle.lost(TokenCacheBackendError(kind: .io, message: "connection refused"))
        #expect(try await eventually { store.lifecycle.pendingWrites == 0 && stored.withLock { $0.count } == 2 })
        #expect(stored.withLock { $0 } == ["a-new", "b"])
        store.lifecycle.stop()
    }
}

struct RefreshCoordinatorTests {
    let partition = TokenCachePartitionKey(source: .imds, endpoint: "http://e", identity: .systemAssigned, hostDiscriminator: "h")

    @Test func twoRunsForOneTokenTakeTurns() async throws {
        // A timeout no loaded machine reaches: past it a waiter would run anyway, by design.
        let coordinator = RefreshCoordinator(
            directory: try TemporaryDirectory.make(), timeout: .seconds(600), logger: Logger(label: "test"))
        let inside = Overlap()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<4 {
                group.addTask {
                    try await coordinator.run(partition: partition, resource: "R") {
                        inside.enter()
                        for _ in 0..<20 { await Task.yield() }
                        inside.leave()
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(inside.most == 1)
    }

    @Test func aHolderPastTheTimeoutDoesNotStopTheWaiter() async throws {
        let directory = try TemporaryDirectory.make()
        let patient = RefreshCoordinator(directory: directory, timeout: .seconds(10), logger: Logger(label: "test"))
        let impatient = RefreshCoordinator(directory: directory, timeout: .milliseconds(20), logger: Logger(label: "test"))
        let release = AsyncStream<Void>.makeStream()
        let holding = AsyncStream<Void>.makeStream()
        let holder = Task {
            try await patient.run(partition: partition, resource: "R") {
                holding.continuation.yield()
                for await _ in release.stream { break }
            }
        }
        for await _ in holding.stream { break }
        #expect(try await impatient.run(partition: partition, resource: "R") { "ran anyway" } == "ran anyway")
        release.continuation.yield()
        try await holder.value
    }
}

struct BlockingWorkTests {
    @Test func workRunsOnAThreadPoolThreadAndReturnsItsValueOrError() async throws {
        struct Failure: Error {}
        // NIO names a pool's threads TP-#n (SGLTN-TP-#n for its shared singleton); the cooperative
        // pool's threads have other names.
        let name = try await BlockingWork.run { Thread.current.name ?? "" }
        #expect(name.contains("TP-#"))
        #expect(!name.contains("SGLTN"), "blocking work ran on NIO's shared pool, which other libraries use")
        #expect(try await BlockingWork.run { 6 * 7 } == 42)
        await #expect(throws: Failure.self) { try await BlockingWork.run { throw Failure() } }
    }
}

struct HexTests {
    @Test func roundTripsAndRefusesBadText() {
        #expect(Hex.encode([0x00, 0x0f, 0xa0, 0xff]) == "000fa0ff")
        #expect(Hex.encode([0xab], uppercase: true) == "AB")
        #expect(Hex.decode("000FA0ff") == [0x00, 0x0f, 0xa0, 0xff])
        #expect(Hex.decode("abc") == nil)
        #expect(Hex.decode("zz") == nil)
        #expect(Hex.sha256(Array("test_token".utf8)) == "cc0af97287543b65da2c7e1476426021826cab166f1e063ed012b855ff819656")
    }
}

extension Array where Element == UInt8 {
    func containsSubsequence(_ other: [UInt8]) -> Bool {
        guard other.count <= count else { return false }
        return (0...(count - other.count)).contains { Array(self[$0..<$0 + other.count]) == other }
    }
}

/// How many runs were inside at once, at most.
final class Overlap: Sendable {
    private let state = Mutex((now: 0, most: 0))
    var most: Int { state.withLock { $0.most } }
    func enter() { state.withLock { $0.now += 1; $0.most = max($0.most, $0.now) } }
    func leave() { state.withLock { $0.now -= 1 } }
}
