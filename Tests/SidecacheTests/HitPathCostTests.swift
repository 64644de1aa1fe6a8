import Foundation
import HTTPCaching
import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
@testable import Sidecache
import SidecacheConfig
import Testing

/// A long run of hits on one connection, through the client pipeline on an EmbeddedChannel: every
/// one is answered in full. With SIDECACHE_HITBENCH=<rounds> (a release build with
/// `-Xswiftc -enable-testing`) it also prints the thread CPU per hit, best of the rounds of 50,000:
/// the request path's own cost, without sockets or the kernel. Nothing is asserted on time.
@Suite struct HitPathCostTests {
    @Test func everyHitOfALongRunOnOneConnectionIsAnsweredInFull() throws {
        let benchRounds = ProcessInfo.processInfo.environment["SIDECACHE_HITBENCH"].flatMap(Int.init)
        let rounds = benchRounds ?? 1
        let yaml = """
        upstream: { url: "http://127.0.0.1:1" }
        logging: { access: true }
        routes:
          - name: api
            match: { path: "/*" }
            ttl: 1m
        """
        let loop = EmbeddedEventLoop()
        let snapshot = try ConfigSnapshot(configuration: ConfigParser.parse(yaml: yaml, file: "t.yaml"), version: 1, sourcePath: "t.yaml")
        let devnull = open("/dev/null", O_WRONLY)
        let runtime = ProxyRuntime(snapshot: snapshot, group: loop, logger: Logger(label: "t"), logSink: LogSink(fileDescriptor: devnull),
                                   levelBox: LogLevelBox(.info))
        let channel = EmbeddedChannel(loop: loop)
        try ClientPipeline.configure(channel, runtime: runtime)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        let now = runtime.now()
        let body = String(repeating: "x", count: 512)
        let headers = HTTPHeaders([("Content-Type", "application/json"), ("Content-Length", "\(body.utf8.count)"), ("Cache-Control", "max-age=600")])
        guard case .store(let terms) = StorageRules.evaluate(requestMethod: .GET, requestHeaders: [:], status: .ok, responseHeaders: headers,
                                                             policy: CachePolicy(), responseTime: now) else { return }
        let entry = CachedResponse(status: .ok, headers: headers, body: ByteBuffer(string: body), requestTime: now, responseTime: now,
                                   terms: terms, varyNames: [], varyValues: [], tags: [])
        let route = try #require(runtime.config.route(method: .GET, path: "/items/1"))
        runtime.store.store(entry, for: route.keyPolicy.key(host: "h", path: "/items/1", query: nil, headers: [:]))
        let request = ByteBuffer(string: "GET /items/1 HTTP/1.1\r\nHost: h\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n")
        func cpu() -> Double {
            var ts = timespec()
            clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
            return Double(ts.tv_sec) * 1e9 + Double(ts.tv_nsec)
        }
        let perRound = benchRounds == nil ? 2_000 : 50_000
        var best = Double.infinity
        var answered = 0
        for _ in 0..<rounds {
            let t0 = cpu()
            for _ in 0..<perRound {
                try channel.writeInbound(request)
                while let out = try channel.readOutbound(as: IOData.self) {
                    // Outside a benchmark run, each response is checked: head, then the whole body.
                    if benchRounds == nil, case .byteBuffer(let b) = out {
                        let text = String(buffer: b)
                        if text.hasPrefix("HTTP/1.1 200 OK\r\n"), text.contains("\r\nX-Cache: HIT\r\n"), text.hasSuffix(body) { answered += 1 }
                    }
                }
            }
            best = min(best, (cpu() - t0) / Double(perRound))
        }
        if let benchRounds {
            print("HITBENCH ns/hit best of \(benchRounds) x \(perRound): \(Int(best))")
        } else {
            #expect(answered == perRound)
            #expect(channel.isActive)
            #expect(runtime.cacheStatistics.entries == 1)
        }
        _ = try? channel.finish()
    }
}
