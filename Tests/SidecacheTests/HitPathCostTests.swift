import Foundation
import NIOCore
import NIOHTTP1
@testable import Sidecache
import Testing

/// A long run of hits on one connection, through the client pipeline on an EmbeddedChannel: every
/// one is answered in full. With SIDECACHE_HITBENCH=<rounds> (a release build with
/// `-Xswiftc -enable-testing`) it also prints the thread CPU per hit, best of the rounds of 50,000:
/// the request path's own cost, without sockets or the kernel. Nothing is asserted on time.
@Suite struct HitPathCostTests {
    @Test func everyHitOfALongRunOnOneConnectionIsAnsweredInFull() throws {
        let benchRounds = ProcessInfo.processInfo.environment["SIDECACHE_HITBENCH"].flatMap(Int.init)
        let rounds = benchRounds ?? 1
        let c = try ProxyHandlerTests.Connection(stored: [], accessLog: true)
        defer { c.finish() }
        let body = String(repeating: "x", count: 512)
        try c.store("/items/1", body: body)
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
                try c.channel.writeInbound(request)
                while let out = try c.channel.readOutbound(as: IOData.self) {
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
            #expect(c.isOpen)
            #expect(c.runtime.cacheStatistics.entries == 1)
        }
    }
}
