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
