import Dispatch
import Foundation

/// A parsed HTTP response as the test client saw it on the wire.
struct TestResponse: Sendable {
    var status: Int
    var headers: [(String, String)]
    var body: [UInt8]
    /// The status line's reason phrase.
    var reason = ""

    var text: String { String(decoding: body, as: UTF8.self) }

    func header(_ name: String) -> String? {
        headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }

    func headers(_ name: String) -> [String] {
        headers.filter { $0.0.lowercased() == name.lowercased() }.map(\.1)
    }

    var xCache: String? { header("X-Cache") }
}

struct TestClientError: Error, CustomStringConvertible {
    var description: String
}

/// A deliberately simple blocking HTTP/1.1 client over a POSIX socket, so tests can send exactly
/// the bytes they want (pipelining, malformed requests, slow heads) and see exactly what came back.
/// Its blocking calls run on Dispatch threads, never on Swift's cooperative pool or an event loop.
final class TestConnection: @unchecked Sendable {
    let fd: Int32
    private var buffer: [UInt8] = []
    private(set) var closedByPeer = false

    init(port: Int, timeoutSeconds: Int = 10) throws {
        fd = try Self.connected(port: port, timeoutSeconds: timeoutSeconds)
    }

    /// A connected socket, or an error with nothing left open. (Closing in a throwing init would
    /// close twice: a class whose properties are all set runs deinit when its init throws, and the
    /// second close may hit a descriptor another thread has been given in the meantime.)
    private static func connected(port: Int, timeoutSeconds: Int) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestClientError(description: "socket failed") }
        var tv = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr)
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else {
            let error = errno
            Foundation.close(fd)
            throw TestClientError(description: "connect to \(port) failed: errno \(error)")
        }
        return fd
    }

    deinit { Foundation.close(fd) }

    func close() { shutdown(fd, Int32(SHUT_RDWR)) }

    static let closedBeforeResponse = "connection closed before a response"

    /// Shuts the sending side only (a FIN): what `nc -N` and many health checkers do after a request.
    func halfClose() { shutdown(fd, Int32(SHUT_WR)) }

    /// Closes with a reset (RST) instead of a FIN: SO_LINGER with a zero timeout.
    func reset() {
        var l = linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, socklen_t(MemoryLayout<linger>.size))
        shutdown(fd, Int32(SHUT_RDWR))
    }

    /// Reads what has arrived (at least one byte, or EOF) and returns how many bytes it was;
    /// `waitingAtMost` shortens the receive timeout for this read and the ones after it.
    func readSomeBytes(waitingAtMost milliseconds: Int? = nil) throws -> Int {
        if let milliseconds {
            var tv = timeval(tv_sec: milliseconds / 1000, tv_usec: Int(milliseconds % 1000) * 1000)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        }
        let before = buffer.count
        _ = try fill()
        let n = buffer.count - before
        buffer.removeAll()
        return n
    }

    /// Every response the peer sends until it closes the connection.
    func readResponsesUntilClose(forHead: Bool = false) throws -> [TestResponse] {
        var responses: [TestResponse] = []
        while true {
            do {
                responses.append(try readResponse(forHead: forHead))
            } catch let error as TestClientError where closedByPeer && buffer.isEmpty && error.description == Self.closedBeforeResponse {
                return responses
            }
        }
    }

    func send(_ text: String) throws { try send(Array(text.utf8)) }

    func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Foundation.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw TestClientError(description: "send failed: errno \(errno)") }
            offset += n
        }
    }

    /// Reads more bytes; false at EOF.
    private func fill() throws -> Bool {
        var chunk = [UInt8](repeating: 0, count: 65536)
        let n = recv(fd, &chunk, chunk.count, 0)
        if n == 0 {
            closedByPeer = true
            return false
        }
        if n < 0 {
            if errno == ECONNRESET { closedByPeer = true; return false }
            throw TestClientError(description: "recv failed: errno \(errno) (timeout?)")
        }
        buffer.append(contentsOf: chunk[0..<n])
        return true
    }

    private func readLine() throws -> String? {
        while true {
            if let i = indexOfCRLF() {
                let line = String(decoding: buffer[0..<i], as: UTF8.self)
                buffer.removeFirst(i + 2)
                return line
            }
            guard try fill() else { return nil }
        }
    }

    private func indexOfCRLF() -> Int? {
        guard buffer.count >= 2 else { return nil }
        for i in 0..<(buffer.count - 1) where buffer[i] == 13 && buffer[i + 1] == 10 { return i }
        return nil
    }

    private func readExactly(_ n: Int, keep: Bool) throws -> [UInt8] {
        var out: [UInt8] = []
        var left = n
        while left > 0 {
            if buffer.isEmpty { guard try fill() else { throw TestClientError(description: "EOF with \(left) body bytes missing") } }
            let take = min(left, buffer.count)
            if keep { out.append(contentsOf: buffer[0..<take]) }
            buffer.removeFirst(take)
            left -= take
        }
        return out
    }

    /// Reads one response. `keepBody: false` counts the body without keeping it (large downloads);
    /// the count is then in `body.count` as zero-filled... no: use `readResponseCountingBody`.
    func readResponse(forHead: Bool = false) throws -> TestResponse {
        let (status, reason, headers) = try readHead()
        let body = try readBody(status: status, headers: headers, forHead: forHead, keep: true)
        return TestResponse(status: status, headers: headers, body: body.bytes, reason: reason)
    }

    /// Reads one response, discarding the body; returns the response (empty body) and the body size.
    func readResponseCountingBody(pauseEveryMiB: Double = 0) throws -> (TestResponse, Int) {
        let (status, reason, headers) = try readHead()
        let body = try readBody(status: status, headers: headers, forHead: false, keep: false, pause: pauseEveryMiB)
        return (TestResponse(status: status, headers: headers, body: [], reason: reason), body.count)
    }

    private func readHead() throws -> (Int, String, [(String, String)]) {
        var statusLine: String
        repeat {
            guard let line = try readLine() else { throw TestClientError(description: Self.closedBeforeResponse) }
            statusLine = line
        } while statusLine.isEmpty
        let parts = statusLine.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, let status = Int(parts[1]) else { throw TestClientError(description: "bad status line \(statusLine)") }
        var headers: [(String, String)] = []
        while let line = try readLine(), !line.isEmpty {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers.append((String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
        }
        if status == 100 { return try readHead() }
        return (status, parts.count > 2 ? String(parts[2]) : "", headers)
    }

    private func readBody(status: Int, headers: [(String, String)], forHead: Bool, keep: Bool, pause: Double = 0) throws -> (bytes: [UInt8], count: Int) {
        func header(_ n: String) -> String? { headers.first { $0.0.lowercased() == n }?.1 }
        if forHead || status == 204 || status == 304 || status == 101 || (100..<200).contains(status) { return ([], 0) }
        if let cl = header("content-length"), let n = Int(cl) {
            return (try readExactly(n, keep: keep), n)
        }
        if header("transfer-encoding")?.lowercased().contains("chunked") == true {
            var out: [UInt8] = []
            var total = 0
            var sincePause = 0
            while true {
                guard let sizeLine = try readLine(), let size = Int(sizeLine.split(separator: ";")[0], radix: 16) else {
                    throw TestClientError(description: "bad chunk size")
                }
                if size == 0 {
                    while let trailer = try readLine(), !trailer.isEmpty {}
                    return (out, total)
                }
                let chunk = try readExactly(size, keep: keep)
                if keep { out += chunk }
                total += size
                sincePause += size
                if pause > 0, Double(sincePause) > pause * 1_048_576 {
                    sincePause = 0
                    usleep(2000)
                }
                _ = try readLine()
            }
        }
        var out: [UInt8] = []
        while try fill() {}
        out = buffer
        buffer = []
        return (keep ? out : [], out.count)
    }

    /// True when the peer closes the connection within `seconds` (reading and discarding data).
    func waitForClose(seconds: Double) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            var tv = timeval(tv_sec: 0, tv_usec: 100_000)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            var chunk = [UInt8](repeating: 0, count: 4096)
            let n = recv(fd, &chunk, chunk.count, 0)
            if n == 0 { return true }
            if n < 0 && errno == ECONNRESET { return true }
        }
        return false
    }
}

/// Runs blocking client work on a thread of its own (libdispatch's global queue runs only about
/// one block per core at once, which would serialise "concurrent" clients on this 2-core machine).
func offloaded<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread {
            continuation.resume(with: Result { try body() })
        }
        thread.stackSize = 1 << 20
        thread.start()
    }
}

/// One request on a new connection.
func request(_ port: Int, _ method: String = "GET", _ path: String, headers: [(String, String)] = [], body: String? = nil) async throws -> TestResponse {
    try await offloaded {
        let c = try TestConnection(port: port)
        var text = "\(method) \(path) HTTP/1.1\r\nHost: test.local\r\n"
        for (k, v) in headers { text += "\(k): \(v)\r\n" }
        if let body { text += "Content-Length: \(body.utf8.count)\r\n" }
        text += "\r\n"
        if let body { text += body }
        try c.send(text)
        return try c.readResponse(forHead: method == "HEAD")
    }
}

func get(_ port: Int, _ path: String, _ headers: [(String, String)] = []) async throws -> TestResponse {
    try await request(port, "GET", path, headers: headers)
}
