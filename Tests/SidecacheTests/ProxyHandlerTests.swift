import Foundation
import HTTPCaching
import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
@testable import Sidecache
import SidecacheConfig
import Testing

/// The client connection's handlers (decoder, encoder, `ProxyHandler`) on an `EmbeddedChannel`:
/// bytes in, bytes out, and time moved by hand. The entries are put in the memory cache first, so
/// no upstream is needed.
@Suite struct ProxyHandlerTests {
    static let config = """
    upstream: { url: "http://127.0.0.1:1" }
    limits: { header_read_timeout: 2s, idle_timeout: 5s }
    routes:
      - name: api
        match: { path: "/*" }
        ttl: 1m
    """

    /// A connection on its own embedded loop, with a runtime whose cache holds `paths`. With
    /// `accessLog`, every request is logged (to /dev/null), as in production.
    struct Connection {
        let loop = EmbeddedEventLoop()
        let channel: EmbeddedChannel
        let runtime: ProxyRuntime

        init(stored paths: [String] = ["/a", "/b"], accessLog: Bool = false) throws {
            let yaml = ProxyHandlerTests.config + (accessLog ? "\nlogging: { access: true }" : "")
            let snapshot = try ConfigSnapshot(configuration: ConfigParser.parse(yaml: yaml, file: "t.yaml"), version: 1, sourcePath: "t.yaml")
            let sink = LogSink(fileDescriptor: accessLog ? open("/dev/null", O_WRONLY) : -1)
            runtime = ProxyRuntime(snapshot: snapshot, group: loop, logger: Logger(label: "t"), logSink: sink, levelBox: LogLevelBox(.info))
            channel = EmbeddedChannel(loop: loop)
            try ClientPipeline.configure(channel, runtime: runtime)
            for path in paths { try store(path, body: "body of \(path)") }
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        }

        func store(_ path: String, body: String) throws {
            let now = runtime.now()
            let headers = HTTPHeaders([("Content-Type", "text/plain"), ("Content-Length", "\(body.utf8.count)"),
                                       ("Cache-Control", "max-age=60")])
            let decision = StorageRules.evaluate(requestMethod: .GET, requestHeaders: [:], status: .ok, responseHeaders: headers,
                                                 policy: CachePolicy(), responseTime: now)
            guard case .store(let terms) = decision else { throw CancellationError() }
            let entry = CachedResponse(status: .ok, headers: headers, body: ByteBuffer(string: body), requestTime: now, responseTime: now,
                                       terms: terms, varyNames: [], varyValues: [], tags: [])
            let route = try #require(runtime.config.route(method: .GET, path: Substring(path)))
            runtime.store.store(entry, for: route.keyPolicy.key(host: "h", path: Substring(path), query: nil, headers: [:]))
        }

        func send(_ text: String) throws {
            try channel.writeInbound(ByteBuffer(string: text))
        }

        /// Everything written to the client so far.
        func written() throws -> String {
            var out = ""
            while let data = try channel.readOutbound(as: IOData.self) {
                if case .byteBuffer(let buffer) = data { out += String(buffer: buffer) }
            }
            return out
        }

        var isOpen: Bool { channel.isActive }

        func finish() {
            _ = try? channel.finish()
            try? loop.syncShutdownGracefully()
        }
    }

    static func get(_ path: String, _ extra: String = "") -> String {
        "GET \(path) HTTP/1.1\r\nHost: h\r\n\(extra)\r\n"
    }

    /// The status lines and bodies of the responses in `text`, in order.
    static func statuses(_ text: String) -> [String] {
        text.components(separatedBy: "HTTP/1.1 ").dropFirst().map { "HTTP/1.1 " + ($0.components(separatedBy: "\r\n").first ?? "") }
    }

    @Test func pipelinedHitsInOneReadAreAnsweredInOrder() throws {
        let c = try Connection()
        defer { c.finish() }
        try c.send(Self.get("/b") + Self.get("/a") + Self.get("/b"))
        let out = try c.written()
        #expect(Self.statuses(out) == ["HTTP/1.1 200 OK", "HTTP/1.1 200 OK", "HTTP/1.1 200 OK"])
        let bodies = ["body of /b", "body of /a", "body of /b"]
        var rest = Substring(out)
        for body in bodies {
            let found = try #require(rest.range(of: body))
            rest = rest[found.upperBound...]
        }
        #expect(out.components(separatedBy: "Cache-Status: sidecache; hit; ttl=").count == 4)
        #expect(c.isOpen)
    }

    @Test func aHeadThatNeverCompletesIsCutAtTheHeaderDeadline() throws {
        let c = try Connection()
        defer { c.finish() }
        try c.send("GET /a HTTP/1.1\r\nHo")
        c.loop.advanceTime(by: .milliseconds(1999))
        #expect(c.isOpen)
        c.loop.advanceTime(by: .milliseconds(1))
        #expect(!c.isOpen)
        #expect(!(try c.written()).contains("200 OK"))
    }

    @Test func aKeptAliveConnectionClosesAfterItsIdleTimeout() throws {
        let c = try Connection()
        defer { c.finish() }
        try c.send(Self.get("/a"))
        #expect(Self.statuses(try c.written()) == ["HTTP/1.1 200 OK"])
        c.loop.advanceTime(by: .seconds(4))
        #expect(c.isOpen)
        // A request meanwhile moves the deadline: idle time counts from its response.
        try c.send(Self.get("/b"))
        c.loop.advanceTime(by: .seconds(4))
        #expect(c.isOpen)
        c.loop.advanceTime(by: .seconds(1))
        #expect(!c.isOpen)
    }

    @Test func shutdownClosesAnIdleConnection() throws {
        let c = try Connection()
        defer { c.finish() }
        try c.send(Self.get("/a"))
        _ = try c.written()
        c.channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        #expect(!c.isOpen)
    }

    @Test func aClientThatHalfClosesGetsItsAnswersThenTheConnectionCloses() throws {
        let c = try Connection()
        defer { c.finish() }
        try c.send(Self.get("/a") + Self.get("/b"))
        c.channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        let out = try c.written()
        #expect(Self.statuses(out).count == 2)
        #expect(!c.isOpen)
    }

    @Test func aMalformedRequestBehindAHitIsAnswered400AfterItAndCloses() throws {
        let c = try Connection()
        defer { c.finish() }
        try c.send(Self.get("/a") + "GET /b HTTP/1.1\r\nHost: h\r\nBad Header: x\r\n\r\n")
        let out = try c.written()
        #expect(Self.statuses(out) == ["HTTP/1.1 200 OK", "HTTP/1.1 400 Bad Request"])
        #expect(out.hasSuffix("whitespace between a field name and its colon\n"))
        #expect(!c.isOpen)
    }

    @Test func anHTTP11RequestWithoutHostIsRefusedAndTheConnectionCloses() throws {
        let c = try Connection()
        defer { c.finish() }
        try c.send("GET /a HTTP/1.1\r\n\r\n" + Self.get("/b"))
        let out = try c.written()
        #expect(Self.statuses(out) == ["HTTP/1.1 400 Bad Request"])
        #expect(out.contains("Connection: close"))
        #expect(out.contains("exactly one Host header is required"))
        #expect(!c.isOpen)
    }

    @Test func aHitAskedWithConnectionCloseIsAnsweredThenTheConnectionCloses() throws {
        let c = try Connection()
        defer { c.finish() }
        try c.send(Self.get("/a", "Connection: close\r\n"))
        let out = try c.written()
        #expect(Self.statuses(out) == ["HTTP/1.1 200 OK"])
        #expect(out.contains("X-Cache: HIT") && out.contains("Connection: close"))
        #expect(!c.isOpen)
    }
}
