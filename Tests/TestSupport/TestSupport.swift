import Foundation
import NIOCore
import RedisClient
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A loopback TCP port nothing listens on right now.
public func freePort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = 0
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr)
    _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
    return Int(UInt16(bigEndian: addr.sin_port))
}

/// A loopback port where nothing listens and that nothing else can take while this value holds
/// it: a socket bound to it that never listens, so connections are refused. `freePort()` leaves the
/// port free, and a server started by a test running in parallel could take it. `release()` frees
/// it for a server the test starts there itself.
public final class RefusingPort: Sendable {
    public let port: Int
    private let fd = Mutex<Int32>(-1)

    public init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = 0
        inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr)
        let bound = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        let port = Int(UInt16(bigEndian: addr.sin_port))
        guard fd >= 0, bound == 0, port != 0 else {
            if fd >= 0 { close(fd) }
            throw RedisServerError(description: "could not reserve a loopback port: errno \(errno)")
        }
        self.fd.withLock { $0 = fd }
        self.port = port
    }

    /// Frees the port (once).
    public func release() {
        fd.withLock { fd in
            if fd >= 0 { close(fd) }
            fd = -1
        }
    }

    deinit { release() }
}

public struct RedisServerError: Error, CustomStringConvertible {
    public let description: String
}

/// A real `redis-server` on a free loopback port, started by the test and stopped with it: no
/// persistence, no config file, nothing left behind.
public final class RedisServer: @unchecked Sendable {
    public let port: Int
    private var process: ChildProcess?
    private let logPath: String
    private let extraArguments: [String]

    /// `arguments` are added to the command line, e.g. `["--requirepass", "secret"]`.
    public init(port: Int? = nil, arguments: [String] = []) throws {
        self.port = try port ?? freePort()
        self.extraArguments = arguments
        logPath = NSTemporaryDirectory() + "redis-test-\(UUID().uuidString).log"
        try start()
    }

    deinit {
        process?.signal(SIGKILL)
    }

    public var url: String { "redis://127.0.0.1:\(port)" }

    /// Starts redis-server (again, after `kill`, on the same port) and waits until it answers PING.
    public func start() throws {
        guard let binary = ["/usr/bin/redis-server", "/usr/local/bin/redis-server"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw RedisServerError(description: "redis-server is not installed (apt-get install redis-server)")
        }
        let p = try ChildProcess(binary, ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                                          "--daemonize", "no", "--logfile", logPath, "--protected-mode", "no"] + extraArguments)
        process = p
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if let reply = try? command("PING"), reply == "+PONG" || reply.hasPrefix("-NOAUTH") { return }
            if !p.isRunning { throw RedisServerError(description: "redis-server exited at start; log: \(log)") }
            usleep(20_000)
        }
        throw RedisServerError(description: "redis-server did not answer on \(port); log: \(log)")
    }

    public var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// Kills the server at once (SIGKILL), as a crash would, and waits for it to be gone.
    public func kill() {
        guard let p = process else { return }
        p.signal(SIGKILL)
        p.wait()
        process = nil
    }

    /// Stops the server for good (SIGKILL: a test server has nothing to save) and removes its log.
    public func stop() {
        kill()
        try? FileManager.default.removeItem(atPath: logPath)
    }

    /// Sends one inline command and returns its reply as text (`+PONG`, `-ERR ...`, `:1`); for
    /// the start-up probe and simple commands.
    @discardableResult
    public func command(_ line: String) throws -> String {
        switch try call(line.split(separator: " ").map { Array($0.utf8) }) {
        case .simpleString(let s): return "+" + s
        case .error(let e): return "-" + e
        case .integer(let i): return ":" + String(i)
        case .bulk(let b): return String(buffer: b)
        case .array(let a): return "*" + String(a.count)
        case .null: return "(nil)"
        }
    }

    /// Sends one command over a fresh blocking socket (encoded and parsed with hiredis) and
    /// returns the reply.
    public func call(_ arguments: [[UInt8]]) throws -> RESPValue {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw RedisServerError(description: "socket() failed") }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = UInt16(port).bigEndian
        inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr)
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard rc == 0 else { throw RedisServerError(description: "connect failed") }
        guard let name = arguments.first else { throw RedisServerError(description: "empty command") }
        var command = RedisCommand(String(decoding: name, as: UTF8.self))
        for argument in arguments.dropFirst() { command.append(ByteBuffer(bytes: argument)) }
        var out = ByteBuffer()
        RedisCommandEncoder.encode(command, into: &out)
        let bytes = Array(out.readableBytesView)
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { throw RedisServerError(description: "send failed") }
            sent += n
        }
        let reader = RedisReplyReader()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            if let reply = try reader.next() { return reply }
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { throw RedisServerError(description: "connection closed before a reply") }
            try reader.feed(ByteBuffer(bytes: buffer[0..<n]))
        }
    }

    public func call(_ arguments: String...) throws -> RESPValue {
        try call(arguments.map { Array($0.utf8) })
    }

    /// Keys matching a pattern (tests only: KEYS is fine on a test server).
    public func keys(_ pattern: String) throws -> [String] {
        try call("KEYS", pattern).array?.compactMap(\.string) ?? []
    }

    /// The text of an INFO section.
    public func info(_ section: String) throws -> String {
        try call("INFO", section).string ?? ""
    }

    /// Rewrites every value of a hash through `transform`.
    public func rewriteHashValues(_ key: String, _ transform: ([UInt8]) -> [UInt8]) throws {
        guard let items = try call("HGETALL", key).array else { return }
        var i = 0
        while i + 1 < items.count {
            if let field = items[i].bytes, let value = items[i + 1].bytes {
                _ = try call([Array("HSET".utf8), Array(key.utf8), Array(field.readableBytesView), transform(Array(value.readableBytesView))])
            }
            i += 2
        }
    }
}

/// A small seeded generator (SplitMix64): tests that draw random numbers repeat exactly, and a
/// failing fuzz run can be run again from its seed.
public struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64
    public init(seed: UInt64 = 0) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Waits until `condition` holds, asking every `interval` for at most `timeout`, and returns the
/// last answer: the one way tests wait for what happens asynchronously (a purge reaching another
/// instance, a pool settling, a process exiting).
public func eventually(timeout: Duration = .seconds(5), interval: Duration = .milliseconds(10),
                       _ condition: () async throws -> Bool) async rethrows -> Bool {
    let clock = ContinuousClock()
    let deadline = clock.now + timeout
    while clock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: interval)
    }
    return try await condition()
}

/// Reads `value` until `accept` takes it, every `interval` for at most `timeout`, and returns the
/// last value read (which the test then checks, so a failure shows what was seen).
public func eventually<T>(timeout: Duration = .seconds(5), interval: Duration = .milliseconds(10), _ value: () async throws -> T,
                          until accept: (T) -> Bool) async rethrows -> T {
    let clock = ContinuousClock()
    let deadline = clock.now + timeout
    var last = try await value()
    while !accept(last) && clock.now < deadline {
        try? await Task.sleep(for: interval)
        last = try await value()
    }
    return last
}

/// A child process started with `posix_spawn`, its output to /dev/null and none of this process's
/// other descriptors: for servers the tests start. Foundation's `Process.run()` on Linux reads
/// `/proc/self/fd` in a way that now and then crashes the test process (swift-corelibs-foundation
/// #5472), and a test suite that starts many servers met it.
public final class ChildProcess: @unchecked Sendable {  // `status` is guarded by its mutex
    public let pid: pid_t
    private let status = Mutex<Int32?>(nil)

    /// `descriptors` hands the child more than 0–2: child descriptor → this process's one (keep
    /// this process's above the highest child number, or the moves may overwrite them).
    /// `output`: a file that gets its stdout and stderr (appended), instead of /dev/null.
    /// `environment`: variables set or replaced in the child's copy of this process's environment.
    public init(_ executable: String, _ arguments: [String], descriptors: [Int32: Int32] = [:], output: String? = nil,
                environment: [String: String] = [:]) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        if let output {
            posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_APPEND, 0o644)
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        } else {
            posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
            posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        }
        for (child, parent) in descriptors { posix_spawn_file_actions_adddup2(&actions, parent, child) }
        for fd in ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []).compactMap({ Int32($0) })
            where fd > 2 && descriptors[fd] == nil {
            posix_spawn_file_actions_addclose(&actions, fd)
        }
        var argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var variables: [String: String] = [:]
        var e = environ
        while let entry = e.pointee {
            let text = String(cString: entry)
            if let eq = text.firstIndex(of: "=") { variables[String(text[..<eq])] = String(text[text.index(after: eq)...]) }
            e += 1
        }
        for (k, v) in environment { variables[k] = v }
        var envp: [UnsafeMutablePointer<CChar>?] = variables.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for p in envp { free(p) } }
        var child: pid_t = 0
        let result = posix_spawn(&child, executable, &actions, nil, &argv, &envp)
        guard result == 0 else { throw RedisServerError(description: "cannot start \(executable): error \(result)") }
        pid = child
    }

    /// Whether it has not exited yet (reaping it if it has).
    public var isRunning: Bool {
        status.withLock { known in
            guard known == nil else { return false }
            var code: Int32 = 0
            guard waitpid(pid, &code, WNOHANG) == pid else { return true }
            known = code
            return false
        }
    }

    public func signal(_ sig: Int32) {
        if isRunning { Glibc.kill(pid, sig) }
    }

    /// The exit code once it has exited normally; 128 + the signal if a signal ended it; nil while it runs.
    public var exitStatus: Int32? {
        guard !isRunning else { return nil }
        return status.withLock { known in
            guard let code = known else { return nil }
            let signal = code & 0x7F
            return signal == 0 ? (code >> 8) & 0xFF : 128 + signal
        }
    }

    /// Waits for it to exit.
    public func wait() {
        status.withLock { known in
            guard known == nil else { return }
            var code: Int32 = 0
            while waitpid(pid, &code, 0) == -1 && errno == EINTR {}
            known = code
        }
    }
}
