import Foundation
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

public struct RedisServerError: Error, CustomStringConvertible {
    public let description: String
}

/// A real `redis-server` on a free loopback port, started by the test and stopped with it: no
/// persistence, no config file, nothing left behind.
public final class RedisServer: @unchecked Sendable {
    public let port: Int
    private var process: Process?
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
        if let p = process { Glibc.kill(p.processIdentifier, SIGKILL) }
    }

    public var url: String { "redis://127.0.0.1:\(port)" }

    /// Starts redis-server (again, after `kill`, on the same port) and waits until it answers PING.
    public func start() throws {
        guard let binary = ["/usr/bin/redis-server", "/usr/local/bin/redis-server"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw RedisServerError(description: "redis-server is not installed (apt-get install redis-server)")
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        p.arguments = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                       "--daemonize", "no", "--logfile", logPath, "--protected-mode", "no"] + extraArguments
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
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
        Glibc.kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        process = nil
    }

    /// Stops the server for good (SIGKILL: a test server has nothing to save) and removes its log.
    public func stop() {
        kill()
        try? FileManager.default.removeItem(atPath: logPath)
    }

    /// Sends one inline command over a fresh blocking socket and returns the first reply line.
    @discardableResult
    public func command(_ line: String) throws -> String {
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
        let bytes = Array((line + "\r\n").utf8)
        _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        var reply: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !reply.contains(UInt8(ascii: "\n")) {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { break }
            reply.append(contentsOf: buffer[0..<n])
        }
        return String(decoding: reply, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
