import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import Sidecache
import TestSupport
import Testing

/// Every way an exchange can end early, over real sockets: the client closing (FIN) or resetting
/// (RST) at each point, half-closing after its requests, the upstream closing, resetting, stalling
/// or sending garbage. After each, no upstream connection stays lent out and the next miss is
/// served.
@Suite struct DisconnectTests {
    /// How a test client ends its side.
    enum ClientEnd: CaseIterable, CustomStringConvertible {
        case fin
        case rst

        var description: String { self == .fin ? "FIN" : "RST" }

        func apply(_ c: TestConnection) {
            switch self {
            case .fin: c.close()
            case .rst: c.reset()
            }
        }
    }

    // MARK: - Half-closed clients are answered

    @Test func halfClosedPostsAreAnsweredAndReturnTheirConnections() async throws {
        try await withProxy({ _ in .ok("posted") }) { origin, proxy in
            for _ in 0..<200 {
                let responses = try await halfClosed(proxy.port, "POST /api/items/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
                #expect(responses.map(\.status) == [200])
            }
            try await expectPoolSettles(proxy)
            #expect(origin.requests.count == 200)
            try await expectAMissIsServed(proxy)
        }
    }

    @Test func halfClosedGetsAreAnsweredForHitsAndMisses() async throws {
        try await withProxy({ r in .ok("item \(r.path)") }) { origin, proxy in
            for round in 0..<2 {
                let r = try await halfClosed(proxy.port, "GET /api/items/7 HTTP/1.1\r\nHost: x\r\n\r\n")
                #expect(r.map(\.status) == [200])
                #expect(r.first?.header("X-Cache") == (round == 0 ? "MISS" : "HIT"))
                #expect(r.first.map { String(decoding: $0.body, as: UTF8.self) } == "item /api/items/7")
            }
            #expect(origin.count("/api/items/7") == 1)
            try await expectPoolSettles(proxy)
        }
    }

    @Test func halfClosedPipelinedRequestsAreAllAnsweredInOrderThenClosed() async throws {
        try await withProxy({ r in .ok("p \(r.path)") }) { _, proxy in
            let bodies = try await offloaded { () -> [String] in
                let c = try TestConnection(port: proxy.port)
                var text = "GET /api/items/1 HTTP/1.1\r\nHost: x\r\n\r\n"
                text += "POST /api/items/2 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi"
                text += "GET /api/items/1 HTTP/1.1\r\nHost: x\r\n\r\n"
                text += "GET /other/3 HTTP/1.1\r\nHost: x\r\n\r\n"
                try c.send(text)
                c.halfClose()
                let responses = try c.readResponsesUntilClose()
                return responses.map { String(decoding: $0.body, as: UTF8.self) }
            }
            #expect(bodies == ["p /api/items/1", "p /api/items/2", "p /api/items/1", "p /other/3"])
            try await expectPoolSettles(proxy)
        }
    }

    @Test func aMalformedRequestAfterAHalfClosedOneIsAnsweredAfterIt() async throws {
        try await withProxy({ _ in .init(status: .ok, body: "slow", delay: .milliseconds(100)) }) { _, proxy in
            let statuses = try await halfClosed(proxy.port, "GET /api/items/1 HTTP/1.1\r\nHost: x\r\n\r\nNOT HTTP AT ALL\r\n\r\n").map(\.status)
            #expect(statuses == [200, 400])
            try await expectPoolSettles(proxy)
        }
    }

    @Test func aShortBodyBeforeAHalfCloseGets400AndReleasesTheUpstream() async throws {
        try await withProxy({ _ in .ok("posted") }) { _, proxy in
            for _ in 0..<50 {
                let statuses = try await halfClosed(proxy.port, "POST /api/items/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhel").map(\.status)
                #expect(statuses == [400])
            }
            try await expectPoolSettles(proxy)
            try await expectAMissIsServed(proxy)
        }
    }

    @Test func abortModeAbandonsHalfClosedForwardsButStillAnswersHits() async throws {
        let extra = "limits: { client_half_close: abort }"
        try await withProxy(extra: extra, { r in .init(status: .ok, body: "x", delay: r.method == .POST ? .milliseconds(100) : .zero) }) { origin, proxy in
            _ = try await get(proxy.port, "/api/items/1")
            for _ in 0..<20 {
                let posted = try await halfClosed(proxy.port, "POST /api/items/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi")
                #expect(posted.isEmpty)
            }
            let hit = try await halfClosed(proxy.port, "GET /api/items/1 HTTP/1.1\r\nHost: test.local\r\n\r\n")
            #expect(hit.map { $0.header("X-Cache") } == ["HIT"])
            try await expectPoolSettles(proxy)
            #expect(await eventually { origin.connections <= proxy.runtime.upstreamPoolCounts.open })
        }
    }

    // MARK: - Clients that close or reset at every point

    @Test(arguments: ClientEnd.allCases)
    func clientsEndingAtEveryPointLeaveNoConnectionInUse(_ end: ClientEnd) async throws {
        try await withProxy({ r in
            if r.path.hasPrefix("/slow") { return .init(status: .ok, body: "late", delay: .milliseconds(60)) }
            if r.path.hasPrefix("/stream") || r.path.hasPrefix("/api/stream") {
                return .init(status: .ok, headers: [("Cache-Control", "no-store")], streamBytes: 4 << 20)
            }
            return .ok("fine")
        }) { _, proxy in
            // Each step: the bytes sent, then how long to wait before ending (for the answer to be
            // under way), and whether to read a little of the response first.
            let steps: [(String, String, Double, Bool)] = [
                ("mid-head", "GET /api/items/1 HTTP/1.1\r\nHost: x\r\nX-Half", 0, false),
                ("mid-body", "POST /api/items/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789", 0.01, false),
                ("after-request", "POST /api/items/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi", 0, false),
                ("forward-awaiting-upstream", "POST /api/slow HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi", 0.02, false),
                ("fill-awaiting-upstream", "GET /slow/fill/{n} HTTP/1.1\r\nHost: x\r\n\r\n", 0.02, false),
                ("forward-streaming", "POST /api/stream HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 0, true),
                ("fill-streaming", "GET /stream/big HTTP/1.1\r\nHost: x\r\n\r\n", 0, true),
                ("expect-continue", "POST /api/items/1 HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n", 0.01, false),
            ]
            for (name, bytes, wait, readSome) in steps {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for _ in 0..<8 {
                        group.addTask {
                            try await offloaded {
                                for _ in 0..<25 {
                                    let c = try TestConnection(port: proxy.port)
                                    try c.send(bytes.replacingOccurrences(of: "{n}", with: UUID().uuidString))
                                    if readSome { _ = try? c.readSomeBytes() }
                                    if wait > 0 { Thread.sleep(forTimeInterval: wait) }
                                    end.apply(c)
                                }
                            }
                        }
                    }
                    try await group.waitForAll()
                }
                try await expectPoolSettles(proxy, "\(name) with \(end)")
                try await expectAMissIsServed(proxy)
            }
        }
    }

    /// Issue 18: a background fetch is retried at most once; a client's fill as the policy says.
    @Test func aBackgroundRefreshIsRetriedAtMostOnce() async throws {
        let upstream = Self.upstream("retries: { attempts: 3, base: 10ms, max: 20ms, budget: 100% }")
        let failing = NIOLockedValueBox(false)
        try await withProxy(upstream: upstream, { _ in
            failing.withLockedValue { $0 } ? .init(status: .serviceUnavailable, body: "busy") : .ok("fresh", [("ETag", "\"e1\"")])
        }) { origin, proxy in
            #expect(try await get(proxy.port, "/api/items/1").xCache == "MISS")
            failing.withLockedValue { $0 = true }
            // Past the 5 m ttl, within stale-while-revalidate: served stale, refreshed in the background.
            proxy.clock.advance(seconds: 301)
            #expect(try await get(proxy.port, "/api/items/1").xCache == "STALE")
            let refreshes = await eventually(timeout: .seconds(3)) { origin.count("/api/items/1") } until: { $0 >= 3 }
            try await Task.sleep(for: .milliseconds(300))
            #expect(refreshes == 3 && origin.count("/api/items/1") == 3, "the fill, then the refresh and its one retry")
            // A client's own miss is tried 1 + 3 times.
            _ = try await get(proxy.port, "/api/items/2")
            #expect(origin.count("/api/items/2") == 4)
        }
    }

    @Test func aClientLeavingDuringARetryWaitReleasesEverything() async throws {
        let upstream = Self.upstream("retries: { attempts: 3, base: 200ms, max: 400ms, budget: 100% }")
        try await withProxy(upstream: upstream, { r in r.path == "/fine" ? .ok("ok") : .init(status: .serviceUnavailable, body: "busy") }) { _, proxy in
            for _ in 0..<10 {
                try await offloaded {
                    let c = try TestConnection(port: proxy.port)
                    try c.send("GET /retry/\(UUID().uuidString) HTTP/1.1\r\nHost: x\r\n\r\n")
                    Thread.sleep(forTimeInterval: 0.05)
                    c.reset()
                }
            }
            try await expectPoolSettles(proxy)
            #expect(try await get(proxy.port, "/fine").status == 200)
        }
    }

    @Test(arguments: ClientEnd.allCases)
    func aTunnelWhoseClientLeavesClosesItsUpstreamSide(_ end: ClientEnd) async throws {
        try await withProxy({ _ in .ok("no") }) { origin, proxy in
            let baseline = origin.connections
            for _ in 0..<20 {
                try await offloaded {
                    let c = try TestConnection(port: proxy.port)
                    try c.send("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                               + "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
                    _ = try c.readResponse()
                    try c.send("frame")
                    _ = try c.readSomeBytes()
                    end.apply(c)
                }
            }
            #expect(await eventually { origin.connections == baseline }, "origin still has \(origin.connections - baseline) tunnel connections")
            try await expectPoolSettles(proxy)
            try await expectAMissIsServed(proxy)
        }
    }

    @Test func clientsLeavingWhileTheBreakerRefusesLeaveNothingBehind() async throws {
        // open_for is long and passed by moving the clock: on a loaded machine the requests before
        // the check could otherwise outlast it and find the breaker half-open already.
        let upstream = Self.upstream("circuit_breaker: { consecutive_failures: 2, min_requests: 100, open_for: 30s, half_open_probes: 1 }")
        try await withProxy(upstream: upstream, { r in r.path.hasPrefix("/api/fail") ? .init(status: .badGateway, body: "down") : .ok("ok") }) { _, proxy in
            for i in 0..<3 { _ = try await request(proxy.port, "POST", "/api/fail/\(i)", body: "x") }
            let refused = try await request(proxy.port, "POST", "/api/items/1", body: "x")
            #expect(refused.status == 503)
            for end in ClientEnd.allCases {
                for i in 0..<20 {
                    try await offloaded {
                        let c = try TestConnection(port: proxy.port)
                        try c.send("POST /api/items/\(i) HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx")
                        end.apply(c)
                    }
                }
            }
            try await expectPoolSettles(proxy)
            // Half-open after open_for: the probe is not held by a client that left.
            proxy.monotonic.advance(.seconds(31))
            #expect(try await eventually(interval: .milliseconds(200)) { try await request(proxy.port, "POST", "/api/after", body: "ok").status == 200 })
        }
    }

    @Test func followersOfAFillWhoseClientLeftGetTheStoredResponse() async throws {
        try await withProxy({ r in .init(status: .ok, body: "shared \(r.path)", delay: .milliseconds(150)) }) { origin, proxy in
            for round in 0..<10 {
                let path = "/api/items/lead\(round)"
                let leader = try TestConnection(port: proxy.port)
                try leader.send("GET \(path) HTTP/1.1\r\nHost: test.local\r\n\r\n")
                try await Task.sleep(for: .milliseconds(20))
                let followers = Task {
                    try await withThrowingTaskGroup(of: Int.self) { group in
                        for _ in 0..<4 { group.addTask { try await get(proxy.port, path).status } }
                        return try await group.reduce(into: [Int]()) { $0.append($1) }
                    }
                }
                try await Task.sleep(for: .milliseconds(20))
                if round % 2 == 0 { leader.reset() } else { leader.close() }
                #expect(try await followers.value == [200, 200, 200, 200])
                #expect(origin.count(path) == 1, "one upstream request for \(path)")
                #expect(try await get(proxy.port, path).header("X-Cache") == "HIT")
            }
            try await expectPoolSettles(proxy)
        }
    }

    // MARK: - Upstreams that end at every point

    @Test func upstreamsEndingAtEveryPointAnswerTheClientAndReleaseTheSlot() async throws {
        let cases: [(String, OriginReply, Int)] = [
            ("hang-up", OriginReply(hangUp: true), 502),
            ("reset", OriginReply(reset: true), 502),
            ("garbage", OriginReply(raw: Array("SPDY/9 what\r\n\r\n".utf8)), 502),
            ("cut-head", OriginReply(raw: Array("HTTP/1.1 200 OK\r\nContent-Le".utf8)), 502),
            ("stall", OriginReply(status: .ok, body: "late", delay: .seconds(3)), 504),
        ]
        // 1 s: the failing upstreams answer at once, but on a loaded machine not always within
        // 300 ms (a 504 instead of the 502); the stall still outlasts it.
        let upstream = Self.upstream(response: "1s")
        for (name, reply, status) in cases {
            try await withProxy(upstream: upstream, { r in r.path == "/fine" ? .ok("ok") : reply }) { _, proxy in
                for i in 0..<(name == "stall" ? 3 : 200) {
                    let forwarded = try await request(proxy.port, "POST", "/api/\(name)/\(i)", body: "x")
                    #expect(forwarded.status == status, "\(name): forward")
                    let filled = try await get(proxy.port, "/\(name)/\(i)")
                    #expect(filled.status == status, "\(name): fill")
                }
                try await expectPoolSettles(proxy, name)
                #expect(try await get(proxy.port, "/fine").status == 200)
            }
        }
    }

    /// Upstream responses outside the strict profile (issue 21 §2) are answered 502, never stored,
    /// and their connections closed, as nginx does; a body delimited by the close is relayed and stored.
    @Test func upstreamResponsesOutsideTheProfileAre502AndNeverStored() async throws {
        let cacheable = "Cache-Control: max-age=60\r\n"
        let cases: [(String, String)] = [
            ("te-and-length", "HTTP/1.1 200 OK\r\n\(cacheable)Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
            ("length-twice", "HTTP/1.1 200 OK\r\n\(cacheable)Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello"),
            ("length-list", "HTTP/1.1 200 OK\r\n\(cacheable)Content-Length: 5, 5\r\n\r\nhello"),
            ("obs-fold", "HTTP/1.1 200 OK\r\n\(cacheable)X-A: b\r\n c\r\nContent-Length: 5\r\n\r\nhello"),
            ("bare-lf", "HTTP/1.1 200 OK\n\(cacheable)Content-Length: 5\r\n\r\nhello"),
            ("nul-in-value", "HTTP/1.1 200 OK\r\n\(cacheable)X-A: b\u{0}\r\nContent-Length: 5\r\n\r\nhello"),
        ]
        let replies = Dictionary(uniqueKeysWithValues: cases.map { ("/profile/\($0.0)", OriginReply(raw: Array($0.1.utf8))) })
        let untilClose = OriginReply(raw: Array("HTTP/1.0 200 OK\r\n\(cacheable)\r\nto the end".utf8))
        try await withProxy({ r in r.path == "/until-close" ? untilClose : (replies[r.path] ?? .ok("ok")) }) { origin, proxy in
            for (name, _) in cases {
                for _ in 0..<2 {
                    let answer = try await get(proxy.port, "/profile/\(name)")
                    #expect(answer.status == 502, "\(name)")
                    #expect(answer.text.contains("malformed response"), "\(name): \(answer.text)")
                }
                #expect(origin.count("/profile/\(name)") == 2, "\(name) is not stored")
            }
            let first = try await get(proxy.port, "/until-close")
            #expect(first.status == 200 && first.text == "to the end")
            let second = try await get(proxy.port, "/until-close")
            #expect(second.text == "to the end" && second.xCache == "HIT")
            try await expectPoolSettles(proxy)
        }
    }

    @Test func anUpstreamCuttingABodyShortCutsTheClientAndReleasesTheSlot() async throws {
        let cut = OriginReply(raw: Array("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten..".utf8))
        try await withProxy({ r in r.path == "/fine" ? .ok("ok") : cut }) { _, proxy in
            for i in 0..<200 {
                let outcome = try await offloaded { () -> String in
                    let c = try TestConnection(port: proxy.port)
                    try c.send("GET /cut/\(i) HTTP/1.1\r\nHost: x\r\n\r\n")
                    do {
                        return "status \(try c.readResponse().status)"
                    } catch {
                        return "cut"
                    }
                }
                // Buffered for the cache, the fill fails before the client saw anything: 502.
                #expect(outcome == "status 502")
            }
            try await expectPoolSettles(proxy)
            #expect(try await get(proxy.port, "/fine").status == 200)
        }
    }

    @Test func aPooledConnectionTheUpstreamClosedAfterItsLastByteIsNotUsedAgain() async throws {
        // One connection per event loop: every request but one waits for it, and is handed it as
        // the previous response ends, when the upstream's FIN may not have been read yet.
        let upstream = Self.upstream(connect: "2s", "max_connections: 2")
        try await withProxy(upstream: upstream, { r in
            var reply = OriginReply.ok("short lived \(r.path)")
            reply.closeAfterReply = true
            return reply
        }) { origin, proxy in
            let failures = try await withThrowingTaskGroup(of: [String].self) { group in
                for client in 0..<6 {
                    group.addTask {
                        var failed: [String] = []
                        for i in 0..<40 {
                            // Requests that may be retried (a fill's GET, a forwarded DELETE): one
                            // that still meets a connection closing under it is retried once.
                            let r = i % 2 == 0
                                ? try await get(proxy.port, "/closing/\(client)/\(i)")
                                : try await request(proxy.port, "DELETE", "/api/closing/\(client)/\(i)")
                            if r.status != 200 { failed.append("\(r.status) \(String(decoding: r.body, as: UTF8.self))") }
                        }
                        return failed
                    }
                }
                var all: [String] = []
                for try await f in group { all += f }
                return all
            }
            #expect(failures.isEmpty, "\(failures.count) failed: \(failures.prefix(3))")
            try await expectPoolSettles(proxy)
            #expect(origin.requests.count == 240)
        }
    }

    // MARK: - Helpers

    /// Sends `bytes` on a new connection, half-closes it, and reads every response until the
    /// proxy closes.
    func halfClosed(_ port: Int, _ bytes: String) async throws -> [TestResponse] {
        try await offloaded {
            let c = try TestConnection(port: port)
            try c.send(bytes)
            c.halfClose()
            return try c.readResponsesUntilClose()
        }
    }

    /// The `upstream:` section for `withProxy(upstream:)`, with one more setting line if given.
    static func upstream(connect: String = "1s", response: String = "2s", _ line: String? = nil) -> (Int) -> String {
        { port in
            """
            upstream:
              url: "http://127.0.0.1:\(port)"
              connect_timeout: \(connect)
              response_timeout: \(response)
            \(line.map { "  " + $0 } ?? "")
            """
        }
    }

    /// No connection stays lent to an exchange, none waits for one, and no fill is left behind.
    func expectPoolSettles(_ proxy: Sidecar, _ what: String = "", sourceLocation: SourceLocation = #_sourceLocation) async throws {
        // The counts are separate atomics, read one at a time: poll until they agree.
        let settled = await eventually {
            let c = proxy.runtime.upstreamPoolCounts
            return c.inUse == 0 && c.waiting == 0 && c.open == c.idle && proxy.runtime.fillsInFlight == 0
        }
        let counts = proxy.runtime.upstreamPoolCounts
        #expect(settled, "\(what): pool \(counts), fills \(proxy.runtime.fillsInFlight)", sourceLocation: sourceLocation)
        #expect(counts.open <= 64 && counts.open == counts.idle, "\(what): pool \(counts)", sourceLocation: sourceLocation)
    }

    /// A miss that needs the upstream is answered (a leaked pool would make it wait and fail).
    func expectAMissIsServed(_ proxy: Sidecar, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let r = try await request(proxy.port, "POST", "/api/after", body: "ok")
        #expect(r.status == 200, "\(String(decoding: r.body, as: UTF8.self))", sourceLocation: sourceLocation)
    }
}

