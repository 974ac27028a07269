import Foundation
import NIOPosix
import Synchronization

/// Runs an executable with arguments (never through a shell) and collects what it prints, within a
/// bound, with nothing of the cooperative pool blocked.
///
/// Foundation's `Process` does not do here: a child started from one of NIO's threads inherits its
/// blocked signals (SIGTERM among them, seen in the tests: the child could not be stopped), and it
/// cannot put the child in a process group of its own. So the child is spawned with
/// `posix_spawn`: an empty signal mask, every signal at its default, its own process group (the
/// Azure CLI is a shell script that starts Python: stopping the group stops both), standard input
/// from `/dev/null`, and its two pipes (this process's other descriptors are close-on-exec, as NIO
/// and Foundation open them).
///
/// One job on NIO's thread pool reads both pipes (`poll`) and reaps the child. Past the bound, or
/// when the caller is cancelled, the caller stops waiting at once; the job sends SIGTERM to the
/// group, SIGKILL a second later if it still runs, and reaps it.
enum BoundedProcess {
    /// How a run ended.
    struct Outcome: Sendable {
        var exitStatus: Int32
        var standardOutput: [UInt8]
        var standardError: [UInt8]
    }

    /// Why a run has no outcome.
    enum Failure: Error {
        /// The executable could not be started (the `posix_spawn` error).
        case couldNotStart(String)
        /// It did not end within the bound, and was stopped.
        case timedOut
    }

    /// Runs `executable` and waits for it to end, at most `timeout`.
    /// - Parameter outputLimit: bytes kept of each stream; the rest is read and dropped.
    static func run(
        executable: String, arguments: [String], environment: [String: String], timeout: Duration, outputLimit: Int = 1 << 20
    ) async throws -> Outcome {
        let child = try spawn(executable: executable, arguments: arguments, environment: environment)
        let run = Run()
        NIOThreadPool.singleton.submit { state in
            guard state == .active else {
                child.stop(run: run)
                return
            }
            child.supervise(run: run, outputLimit: outputLimit)
        }
        let watchdog = Task {
            try await Task.sleep(for: timeout)
            run.finish(.failure(Failure.timedOut))
        }
        defer { watchdog.cancel() }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { run.install($0) }
        } onCancel: {
            run.finish(.failure(CancellationError()))
        }
    }

    /// The child gets no descriptor but its three standard ones: the service's sockets and files that
    /// were opened without close-on-exec are none of the CLI's business.
    private static func closeInheritedDescriptors(_ actions: inout posix_spawn_file_actions_t) {
        // glibc 2.34+ has posix_spawn_file_actions_addclosefrom_np, which Swift's Glibc module does not
        // declare; on an older libc the descriptors made with close-on-exec are still not inherited.
        typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") else { return }
        _ = unsafeBitCast(symbol, to: CloseFrom.self)(&actions, 3)
    }

    /// Starts the child with its pipes.
    private static func spawn(executable: String, arguments: [String], environment: [String: String]) throws -> Child {
        var output: [Int32] = [-1, -1]
        var errors: [Int32] = [-1, -1]
        guard pipe(&output) == 0 else { throw Failure.couldNotStart(String(cString: strerror(errno))) }
        guard pipe(&errors) == 0 else {
            let reason = String(cString: strerror(errno))
            close(output[0])
            close(output[1])
            throw Failure.couldNotStart(reason)
        }
        // Close-on-exec, so a child spawned elsewhere meanwhile does not keep these pipes open (the
        // reader would wait for that child's end to see its own child's). Glibc's module does not
        // declare pipe2; the children spawned here close every inherited descriptor anyway.
        for descriptor in output + errors { _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, output[1], 1)
        posix_spawn_file_actions_adddup2(&actions, errors[1], 2)
        closeInheritedDescriptors(&actions)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var everySignal = sigset_t()
        sigfillset(&everySignal)
        posix_spawnattr_setsigdefault(&attributes, &everySignal)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(
            &attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP))

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup($0.key + "=" + $0.value) } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var pid = pid_t()
        let status = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        close(output[1])
        close(errors[1])
        guard status == 0 else {
            close(output[0])
            close(errors[0])
            throw Failure.couldNotStart(String(cString: strerror(status)))
        }
        return Child(pid: pid, output: output[0], errors: errors[0])
    }

    /// A started child: its pid (also its process group) and the read ends of its pipes.
    private struct Child: Sendable {
        let pid: pid_t
        let output: Int32
        let errors: Int32

        /// Reads both pipes until they end and the child exits, or until the run is finished by
        /// the bound or a cancellation; then stops the child. Runs on a thread of the pool.
        func supervise(run: Run, outputLimit: Int) {
            var collected: [[UInt8]] = [[], []]
            var open = [true, true]
            var exitStatus: Int32?
            var exitedAt: ContinuousClock.Instant?
            var buffer = [UInt8](repeating: 0, count: 65_536)
            while !run.isFinished {
                if exitStatus == nil {
                    var status: Int32 = 0
                    if waitpid(pid, &status, WNOHANG) == pid {
                        exitStatus = Self.exitStatus(status)
                        exitedAt = .now
                    }
                }
                // A child of the child may keep the pipes open after it exits: stop reading soon after.
                if let exitedAt, ContinuousClock.now - exitedAt > .milliseconds(500) { open = [false, false] }
                if let exitStatus, !open[0], !open[1] {
                    run.finish(.success(Outcome(exitStatus: exitStatus, standardOutput: collected[0], standardError: collected[1])))
                    break
                }
                var descriptors = [pollfd(fd: open[0] ? output : -1, events: Int16(POLLIN), revents: 0),
                                   pollfd(fd: open[1] ? errors : -1, events: Int16(POLLIN), revents: 0)]
                _ = poll(&descriptors, 2, 50)
                for index in 0..<2 where open[index] && descriptors[index].revents != 0 {
                    let count = read(descriptors[index].fd, &buffer, buffer.count)
                    if count > 0 {
                        collected[index] += buffer[0..<min(count, max(0, outputLimit - collected[index].count))]
                    } else if count == 0 || (errno != EINTR && errno != EAGAIN) {
                        open[index] = false
                    }
                }
            }
            close(output)
            close(errors)
            if exitStatus == nil { stop(run: run) }
        }

        /// Stops the child's process group (SIGTERM, then SIGKILL after a second) and reaps it.
        func stop(run: Run) {
            kill(-pid, SIGTERM)
            let deadline = ContinuousClock.now + .seconds(1)
            var status: Int32 = 0
            while ContinuousClock.now < deadline {
                if waitpid(pid, &status, WNOHANG) == pid {
                    kill(-pid, SIGKILL)
                    return
                }
                usleep(10_000)
            }
            kill(-pid, SIGKILL)
            _ = waitpid(pid, &status, 0)
        }

        private static func exitStatus(_ status: Int32) -> Int32 {
            // WIFEXITED / WEXITSTATUS, and 128 + the signal as a shell reports it.
            (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        }
    }

    /// One run's outcome and who waits for it: the first of the child's end, the bound and a
    /// cancellation is delivered, once.
    private final class Run: Sendable {
        private struct State {
            var result: Result<Outcome, any Error>?
            var waiter: CheckedContinuation<Outcome, any Error>?
        }

        private let state = Mutex(State())

        var isFinished: Bool { state.withLock { $0.result != nil } }

        func install(_ waiter: CheckedContinuation<Outcome, any Error>) {
            let ready = state.withLock { state -> Result<Outcome, any Error>? in
                if let result = state.result { return result }
                state.waiter = waiter
                return nil
            }
            if let ready { waiter.resume(with: ready) }
        }

        func finish(_ result: Result<Outcome, any Error>) {
            let waiter = state.withLock { state -> CheckedContinuation<Outcome, any Error>? in
                guard state.result == nil else { return nil }
                state.result = result
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume(with: result)
        }
    }
}
