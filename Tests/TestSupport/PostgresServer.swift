import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A PostgreSQL server of a test's own: a private data directory, a free port on 127.0.0.1 only,
/// trust authentication for the user `mi`, stopped when the test process exits (or by ``stop()``).
/// Never a system-wide service. Statements are logged, so a test can tell what reached the server.
public final class PostgresServer: Sendable {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    public let port: Int
    public let directory: String
    public let user = "mi"
    private let binaries: String
    private let running = Mutex(false)

    /// The server shared by a test process's tests; each test makes its own database on it.
    /// Starting it waits for initdb and pg_ctl on a thread of its own, never the cooperative pool.
    public static func shared() async throws -> PostgresServer {
        try await onThreadOfItsOwn { try sharedBlocking() }
    }

    /// A server of the caller's own, started without blocking the cooperative pool.
    public static func started() async throws -> PostgresServer {
        try await onThreadOfItsOwn { try PostgresServer() }
    }

    private static func sharedBlocking() throws -> PostgresServer {
        try sharedServer.withLock { server in
            if let server { return server }
            let started = try PostgresServer()
            server = started
            atexit {
                guard let server = PostgresServer.sharedServer.withLock({ $0 }) else { return }
                try? server.stopBlocking()
                try? FileManager.default.removeItem(atPath: server.directory)
            }
            return started
        }
    }

    private static let sharedServer = Mutex<PostgresServer?>(nil)
    private static let databases = Atomic<Int>(0)

    /// Creates a data directory and starts a server on it, blocking the calling thread (see ``started()``).
    public init() throws {
        guard let binaries = Self.findBinaries() else {
            throw Failure(
                description: "PostgreSQL's server programs (initdb, pg_ctl) are not installed: run .ci/run, which installs "
                    + "Debian's postgresql package, or apt-get install postgresql-15")
        }
        self.binaries = binaries
        directory = try TemporaryDirectory.make()
        port = try Self.freePort()
        if geteuid() == 0 {
            // initdb refuses to run as root: the server runs as the postgres user, in a directory it owns.
            guard let account = getpwnam("postgres") else {
                throw Failure(description: "running as root, and there is no postgres user to run the server as")
            }
            chown(directory, account.pointee.pw_uid, account.pointee.pw_gid)
        }
        try run("initdb", ["-D", directory + "/data", "-U", user, "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"])
        try startBlocking()
        try watchOver()
    }

    /// Starts a watchdog that stops the server and removes its directory once the test process is
    /// gone, so a test process that crashes or is killed (and runs no exit handler) leaves no server.
    private func watchOver() throws {
        let stop = (geteuid() == 0 ? "/usr/sbin/runuser -u postgres -- " : "") + "\(binaries)/pg_ctl -D \(directory)/data -m immediate stop"
        let script = "while kill -0 \(getpid()) 2>/dev/null; do sleep 1; done; kill -CONT -- $(cat \(directory)/data/postmaster.pid 2>/dev/null | head -1) 2>/dev/null; \(stop) >/dev/null 2>&1; rm -rf \(directory)"
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        Self.closeInheritedDescriptors(&actions)
        let argv = ["/bin/sh", "-c", script]
        var cArguments = argv.map { strdup($0) } + [nil]
        defer { for argument in cArguments { free(argument) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, "/bin/sh", &actions, nil, &cArguments, environ)
        guard spawned == 0 else { throw Failure(description: "cannot start the server's watchdog") }
    }

    /// Starts the server (again), waiting on a thread of its own: under load pg_ctl takes seconds, and a
    /// test that blocked one of the cooperative pool's threads for them (two on this machine) stalled
    /// every other task of the process, the code under test included.
    public func start() async throws { try await onThreadOfItsOwn { try self.startBlocking() } }

    /// Stops the server at once (`-m fast`), waiting on a thread of its own.
    public func stop() async throws { try await onThreadOfItsOwn { try self.stopBlocking() } }

    /// Starts the server (again), blocking the calling thread.
    public func startBlocking() throws {
        try run(
            "pg_ctl",
            [
                "-D", directory + "/data", "-l", directory + "/server.log", "-w", "-t", "60", "-o",
                "-p \(port) -c listen_addresses=127.0.0.1 -k \(directory) -c log_statement=all -c log_line_prefix=%d: -c max_connections=200", "start",
            ])
        running.withLock { $0 = true }
    }

    /// Stops the server at once (`-m fast`): open connections are closed, committed data stays. Blocks
    /// the calling thread: for a `defer` or an exit handler; a test's own code uses ``stop()``.
    public func stopBlocking() throws {
        guard running.withLock({ $0 }) else { return }
        try run("pg_ctl", ["-D", directory + "/data", "-m", "fast", "-w", "stop"])
        running.withLock { $0 = false }
    }

    /// Stops every process of the server with SIGSTOP: connections stay open and nothing answers,
    /// as when a database host hangs or its network drops packets. ``thaw()`` resumes them.
    public func freeze() throws { try signalServer(SIGSTOP) }

    /// Resumes a frozen server.
    public func thaw() throws { try signalServer(SIGCONT) }

    private func signalServer(_ signal: Int32) throws {
        let text = (try? String(contentsOfFile: directory + "/data/postmaster.pid", encoding: .utf8)) ?? ""
        guard let pid = text.split(separator: "\n").first.flatMap({ Int32($0) }) else {
            throw Failure(description: "the server is not running")
        }
        // Every server process calls setsid, so no process group holds them all: signal the
        // postmaster and each process whose parent it is (read from /proc).
        var pids = [pid]
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let child = Int32(entry),
                let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")")
            else { continue }
            // After "pid (name)": state, then the parent's pid.
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            if fields.count > 1, Int32(fields[1]) == pid { pids.append(child) }
        }
        for target in pids where kill(target, signal) != 0 {
            throw Failure(description: "cannot signal server process \(target): \(errno)")
        }
    }

    /// A new, empty database (psql on a thread of its own).
    public func makeDatabase() async throws -> String { try await onThreadOfItsOwn { try self.makeDatabaseBlocking() } }

    private func makeDatabaseBlocking() throws -> String {
        let name = "test_\(getpid())_\(Self.databases.add(1, ordering: .relaxed).newValue)"
        try sqlBlocking("CREATE DATABASE \(name)", database: "postgres")
        return name
    }

    /// The URL of a database, as the backend and the tool take it.
    public func url(_ database: String) -> String { "postgres://\(user)@127.0.0.1:\(port)/\(database)?sslmode=disable" }

    /// Runs SQL through psql (on a thread of its own) and returns its unaligned output.
    @discardableResult
    public func sql(_ statement: String, database: String) async throws -> String {
        try await onThreadOfItsOwn { try self.sqlBlocking(statement, database: database) }
    }

    @discardableResult
    private func sqlBlocking(_ statement: String, database: String) throws -> String {
        try run("psql", ["-h", "127.0.0.1", "-p", "\(port)", "-U", user, "-d", database, "-At", "-v", "ON_ERROR_STOP=1", "-c", statement])
    }

    /// The server's log so far (every statement it received).
    public var log: String { (try? String(contentsOfFile: directory + "/server.log", encoding: .utf8)) ?? "" }

    @discardableResult
    private func run(_ program: String, _ arguments: [String]) throws -> String {
        let path = binaries + "/" + program
        let argv = geteuid() == 0 ? ["/usr/sbin/runuser", "-u", "postgres", "--", path] + arguments : [path] + arguments
        let outputPath = directory + "/\(program)-\(UUID().uuidString).out"
        defer { unlink(outputPath) }
        let status = try Self.spawnAndWait(argv, output: outputPath)
        let text = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        guard status == 0 else {
            throw Failure(description: "\(program) failed (\(status)): \(text)\n\(log.suffix(2000))")
        }
        return text
    }

    /// Runs a program with its output in a file and waits for it with `waitpid`. Foundation's
    /// `Process` learns of an exit through a descriptor the child inherits, which the server that
    /// `pg_ctl start` leaves running would hold open for ever.
    /// Keeps every descriptor but 0, 1 and 2 out of a spawned process. Without it the watchdog (which
    /// lives as long as the test process) and the server inherit whatever pipes other tests have open
    /// at that moment; a test that closes its child's standard input to say "go on" then waits forever,
    /// as the write end stays open in the watchdog (seen: the SQLite lock-holder test hung in full runs).
    private static func closeInheritedDescriptors(_ actions: inout posix_spawn_file_actions_t) {
        // glibc 2.34+ has posix_spawn_file_actions_addclosefrom_np, which Swift's Glibc module does not
        // declare; it closes everything at once, so a pipe made by another thread meanwhile is covered.
        typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
        if let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") {
            _ = unsafeBitCast(symbol, to: CloseFrom.self)(&actions, 3)
            return
        }
        let open = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        for descriptor in open.compactMap(Int32.init) where descriptor > 2 {
            posix_spawn_file_actions_addclose(&actions, descriptor)
        }
    }

    private static func spawnAndWait(_ argv: [String], output: String) throws -> Int32 {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        closeInheritedDescriptors(&actions)
        var cArguments = argv.map { strdup($0) } + [nil]
        defer { for argument in cArguments { free(argument) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, argv[0], &actions, nil, &cArguments, environ)
        guard spawned == 0 else { throw Failure(description: "cannot start \(argv[0]): \(String(cString: strerror(spawned)))") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            guard errno == EINTR else { throw Failure(description: "waitpid failed for \(argv[0])") }
        }
        // WIFEXITED / WEXITSTATUS, which Swift does not import.
        return status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }

    private static func findBinaries() -> String? {
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []).sorted().reversed()
        for version in versions where FileManager.default.isExecutableFile(atPath: "/usr/lib/postgresql/\(version)/bin/initdb") {
            return "/usr/lib/postgresql/\(version)/bin"
        }
        return nil
    }

    /// A port nothing listens on now: bound to 0 on 127.0.0.1, read back, released.
    private static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "cannot open a socket") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw Failure(description: "cannot find a free port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
