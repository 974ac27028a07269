import Foundation

/// A loopback server written in a few lines of Python's standard library (which every machine of
/// this kind has), run as a child process: for network behaviour the in-process servers cannot show,
/// such as a peer that accepts a connection and then says nothing for a while, or a listener whose
/// accept queue is full. The script must bind 127.0.0.1 only and print its port as its first line.
public struct PythonServer: Sendable {
    public let child: ChildProcess
    public let port: Int

    /// Starts `script` with `arguments` and waits for the port it prints.
    public static func start(_ script: String, arguments: [String] = []) async throws -> PythonServer {
        // First, close every descriptor but the three standard ones: `Process` lets a child inherit
        // the pipes other tests are opening at that moment, and a server that lives on holding one
        // keeps that test's reader waiting for an end of file that never comes.
        let prologue = "import os\nos.closerange(3, 65536)\n"
        let child = ChildProcess("/usr/bin/env", ["python3", "-u", "-c", prologue + script] + arguments)
        try child.start()
        let text = await child.readOutput { $0.contains("\n") }
        guard let line = text.split(separator: "\n").first, let port = Int(line.trimmingCharacters(in: .whitespaces)) else {
            kill(child.process.processIdentifier, SIGKILL)
            throw PythonServerError(message: "the Python server printed no port: \(text)")
        }
        return PythonServer(child: child, port: port)
    }

    /// Kills the server. SIGKILL, not SIGTERM: a test process that runs a swift-service-lifecycle
    /// group ignores SIGTERM to handle it itself, and its children inherit that.
    public func stop() {
        kill(child.process.processIdentifier, SIGKILL)
    }

    /// Accepts connections and relays each to 127.0.0.1:`target` after `delay` seconds of silence:
    /// the TCP connect completes at once (the kernel accepts), but no byte moves, a TLS handshake
    /// included, until the delay has passed, as with a peer whose process is busy.
    public static func slowRelay(to target: Int, delay: Double) async throws -> PythonServer {
        try await start(
            """
            import socket, sys, threading, time
            target, delay = int(sys.argv[1]), float(sys.argv[2])
            server = socket.socket(); server.bind(("127.0.0.1", 0)); server.listen(64)
            print(server.getsockname()[1], flush=True)
            def pipe(a, b):
                try:
                    while data := a.recv(65536): b.sendall(data)
                except OSError: pass
                finally:
                    for s in (a, b):
                        try: s.shutdown(socket.SHUT_RDWR)
                        except OSError: pass
            def serve(client):
                time.sleep(delay)
                upstream = socket.create_connection(("127.0.0.1", target))
                threading.Thread(target=pipe, args=(client, upstream), daemon=True).start()
                pipe(upstream, client)
            while True:
                client, _ = server.accept()
                threading.Thread(target=serve, args=(client,), daemon=True).start()
            """, arguments: [String(target), String(delay)])
    }

    /// A listener that never accepts and whose accept queue is already full, so the kernel drops
    /// every new SYN: to a client it is an address nothing answers, as a blackholed IMDS is.
    public static func fullBacklog() async throws -> PythonServer {
        try await start(
            """
            import socket, time
            server = socket.socket(); server.bind(("127.0.0.1", 0)); server.listen(0)
            port = server.getsockname()[1]
            fillers = []
            for _ in range(8):
                s = socket.socket(); s.setblocking(False)
                try: s.connect(("127.0.0.1", port))
                except BlockingIOError: pass
                fillers.append(s)
            time.sleep(0.5)
            print(port, flush=True)
            time.sleep(3600)
            """)
    }
}

public struct PythonServerError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}
