import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import TestSupport
import Testing

/// Proxying over real sockets: headers, keep-alive, pipelining, errors and limits.
@Suite struct ForwardingTests {
    @Test func forwardingHeadersAreAddedAndHopByHopOnesRemoved() async throws {
        try await withProxy({ _ in .ok("x", [("Connection", "X-Internal"), ("X-Internal", "1"), ("Keep-Alive", "timeout=5"), ("X-Kept", "yes")]) }) { origin, proxy in
            let r = try await request(proxy.port, "POST", "/api/things", headers: [
                ("Connection", "keep-alive, X-Hop"), ("X-Hop", "secret"), ("X-Forwarded-For", "10.0.0.9"), ("TE", "trailers"),
            ], body: "{}")
            let seen = try #require(origin.requests.last)
            #expect(seen.headers.first(name: "x-forwarded-for") == "10.0.0.9, 127.0.0.1")
            #expect(seen.headers.first(name: "x-forwarded-proto") == "http")
            #expect(seen.headers.first(name: "x-forwarded-host") == "test.local")
            #expect(seen.headers.first(name: "via") == "1.1 sidecache")
            #expect(seen.headers.first(name: "x-request-id") == r.header("X-Request-ID"))
            #expect(!seen.headers.contains(name: "x-hop"))
            #expect(!seen.headers.contains(name: "te"))
            #expect(seen.bodyBytes == 2)
            #expect(r.header("X-Internal") == nil && r.header("Keep-Alive") == nil)
            #expect(r.header("X-Kept") == "yes")
            #expect(r.header("Via") == "1.1 sidecache")
        }
    }

    /// A relayed response's head is written in one pass from the upstream's fields: the fields
    /// sidecache sets are its own, once, after the upstream's (which keep their order).
    @Test func aRelayedResponseCarriesSidecachesOwnFieldsOnce() async throws {
        try await withProxy({ _ in .ok("x", [("X-First", "1"), ("Cache-Status", "upstream; hit"), ("X-Cache", "HIT"), ("X-Request-ID", "up-1"),
                                              ("X-Invalidate-Tags", "a"), ("X-Last", "2"), ("Cache-Control", "no-store")]) }) { _, proxy in
            let r = try await request(proxy.port, "DELETE", "/api/things/1", headers: [("X-Request-ID", "mine-1")])
            #expect(r.headers.filter { $0.0.lowercased() == "cache-status" }.map(\.1) == ["sidecache; fwd=bypass"])
            #expect(r.headers.filter { $0.0.lowercased() == "x-cache" }.map(\.1) == ["BYPASS"])
            #expect(r.headers.filter { $0.0.lowercased() == "x-request-id" }.map(\.1) == ["mine-1"])
            #expect(r.header("X-Invalidate-Tags") == nil)
            let names = r.headers.map { $0.0.lowercased() }
            let first = try #require(names.firstIndex(of: "x-first"))
            let last = try #require(names.firstIndex(of: "x-last"))
            let via = try #require(names.firstIndex(of: "via"))
            #expect(first < last && last < via && via < (names.firstIndex(of: "cache-status") ?? 0))
        }
    }

    @Test func aClientRequestIDIsKeptAndForwarded() async throws {
        try await withProxy({ _ in .ok("x") }) { origin, proxy in
            let r = try await get(proxy.port, "/anything", [("X-Request-ID", "trace-123")])
            #expect(r.header("X-Request-ID") == "trace-123")
            #expect(origin.requests.last?.headers.first(name: "x-request-id") == "trace-123")
        }
    }

    @Test func generatedRequestIDsArePrefixAndCounterInHex() async throws {
        try await withProxy({ _ in .ok("x") }) { _, proxy in
            let first = try await get(proxy.port, "/a").header("X-Request-ID") ?? ""
            let second = try await get(proxy.port, "/b").header("X-Request-ID") ?? ""
            let a = first.split(separator: "-"), b = second.split(separator: "-")
            #expect(a.count == 2 && b.count == 2)
            #expect(a.first?.count == 16 && a.first == b.first)
            let hex = Set("0123456789abcdef")
            #expect(first.allSatisfy { hex.contains($0) || $0 == "-" })
            let n1 = UInt64(a.last ?? "", radix: 16), n2 = UInt64(b.last ?? "", radix: 16)
            #expect(n1 != nil && n2 == n1.map { $0 + 1 })
        }
    }

    @Test func keepAliveAndPipelinedRequestsAreAnsweredInOrder() async throws {
        try await withProxy({ r in .ok("you asked \(r.path)") }) { _, proxy in
            let bodies = try await offloaded { () -> [String] in
                let c = try TestConnection(port: proxy.port)
                var text = ""
                for i in 1...5 { text += "GET /api/items/\(i) HTTP/1.1\r\nHost: x\r\n\r\n" }
                text += "POST /api/items/9 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi"
                text += "GET /api/items/1 HTTP/1.1\r\nHost: x\r\n\r\n"
                try c.send(text)
                return try (0..<7).map { _ in try c.readResponse().text }
            }
            #expect(bodies == (1...5).map { "you asked /api/items/\($0)" } + ["you asked /api/items/9", "you asked /api/items/1"])
        }
    }

    /// Relayed responses with a length are written below the HTTP encoder, the others through it:
    /// mixed on one connection, each keeps its status line, fields and framing.
    @Test func relayedResponsesKeepTheirFramingWhetherOrNotTheyHaveALength() async throws {
        let responder: TestOrigin.Responder = { r in
            switch r.path {
            case "/api/created": OriginReply(status: .created, headers: [("X-Origin", "a")], body: "made")
            case "/api/chunked": OriginReply(status: .ok, headers: [("Cache-Control", "no-store")], streamBytes: 100_000)
            case "/plain/empty": OriginReply(status: .noContent, headers: [("Cache-Control", "no-store")])
            default: OriginReply(status: .ok, headers: [("Cache-Control", "no-store")], body: "fresh")
            }
        }
        try await withProxy(responder) { _, proxy in
            let responses = try await offloaded { () -> [(TestResponse, Int)] in
                let c = try TestConnection(port: proxy.port)
                try c.send("POST /api/created HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
                    + "POST /api/chunked HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
                    + "GET /plain/nostore HTTP/1.1\r\nHost: x\r\n\r\n"
                    + "HEAD /plain/nostore HTTP/1.1\r\nHost: x\r\n\r\n"
                    + "GET /plain/empty HTTP/1.1\r\nHost: x\r\n\r\n"
                    + "GET /plain/nostore HTTP/1.1\r\nHost: x\r\n\r\n")
                var read = [try c.readResponse(), try c.readResponseCountingBody().0]
                read.append(contentsOf: [try c.readResponse(), try c.readResponse(forHead: true), try c.readResponse(), try c.readResponse()])
                return read.map { ($0, $0.body.count) }
            }
            let created = responses[0].0
            #expect(created.status == 201 && created.reason == "Created" && created.text == "made")
            #expect(created.header("Content-Length") == "4" && created.header("X-Origin") == "a" && created.header("Transfer-Encoding") == nil)
            #expect(created.header("X-Cache") == "BYPASS" && created.header("Via") == "1.1 sidecache")
            #expect(responses[1].0.header("Transfer-Encoding") == "chunked" && responses[1].0.header("Content-Length") == nil)
            let plain = responses[2].0
            #expect(plain.reason == "OK" && plain.text == "fresh" && plain.header("Content-Length") == "5")
            #expect(plain.header("Cache-Status")?.hasPrefix("sidecache; fwd=miss") == true && plain.header("X-Request-ID") != nil)
            #expect(responses[3].0.status == 200 && responses[3].0.header("Content-Length") == "5" && responses[3].1 == 0)
            #expect(responses[4].0.status == 204 && responses[4].1 == 0)
            #expect(responses[5].0.text == "fresh")
        }
    }

    /// A cache fill sends no body, so it must not announce one: a GET with content (which the
    /// cache does not forward) would otherwise leave the origin waiting for bytes that never come.
    @Test func aFillForAGetWithContentAnnouncesNoBody() async throws {
        try await withProxy({ r in .ok("body of \(r.path)") }) { origin, proxy in
            let started = ContinuousClock.now
            let (first, second) = try await offloaded { () -> (TestResponse, TestResponse) in
                let c = try TestConnection(port: proxy.port)
                try c.send("GET /api/items/7 HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\n\r\nignored")
                let first = try c.readResponse()
                // The same connection goes on: the request's content was read and dropped.
                try c.send("GET /api/items/7 HTTP/1.1\r\nHost: x\r\n\r\n")
                return (first, try c.readResponse())
            }
            #expect(first.status == 200 && first.text == "body of /api/items/7" && first.xCache == "MISS")
            // Under the 2 s response timeout an origin waiting for announced bytes would run into.
            #expect(ContinuousClock.now - started < .milliseconds(1800))
            let seen = try #require(origin.requests.last)
            #expect(seen.headers.first(name: "content-length") == nil && seen.headers.first(name: "transfer-encoding") == nil)
            #expect(seen.bodyBytes == 0)
            #expect(second.xCache == "HIT" && second.text == first.text)
        }
    }

    @Test func anHTTP10ClientGetsAResponseItCanDelimit() async throws {
        try await withProxy({ _ in OriginReply(status: .ok, headers: [("Cache-Control", "no-store")], streamBytes: 100_000) }) { _, proxy in
            let (head, count, closed) = try await offloaded { () -> (TestResponse, Int, Bool) in
                let c = try TestConnection(port: proxy.port)
                try c.send("GET /chunked HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
                let (r, n) = try c.readResponseCountingBody()
                return (r, n, c.closedByPeer)
            }
            #expect(head.status == 200)
            #expect(head.header("Transfer-Encoding") == nil)
            #expect(head.header("Connection")?.lowercased() == "close")
            #expect(count == 100_000 && closed)
        }
    }

    @Test func pipelinedRequestsWaitForASlowMissAndKeepTheirOrder() async throws {
        try await withProxy({ r in OriginReply(status: .ok, headers: [("Cache-Control", "max-age=60")], body: "body of \(r.path)", delay: .milliseconds(150)) }) { origin, proxy in
            let responses = try await offloaded { () -> [TestResponse] in
                let c = try TestConnection(port: proxy.port)
                try c.send("GET /api/items/1 HTTP/1.1\r\nHost: x\r\n\r\n"
                    + "GET /api/items/1 HTTP/1.1\r\nHost: x\r\n\r\n"
                    + "HEAD /api/items/1 HTTP/1.1\r\nHost: x\r\n\r\n"
                    + "GET /api/items/2 HTTP/1.1\r\nHost: x\r\n\r\n"
                    + "GET /api/items/1 HTTP/1.1\r\nHost: x\r\n\r\n")
                return [try c.readResponse(), try c.readResponse(), try c.readResponse(forHead: true), try c.readResponse(), try c.readResponse()]
            }
            #expect(responses.map(\.xCache) == ["MISS", "HIT", "HIT", "MISS", "HIT"])
            #expect(responses.map(\.text) == ["body of /api/items/1", "body of /api/items/1", "", "body of /api/items/2", "body of /api/items/1"])
            #expect(responses[2].header("Content-Length") == "20")
            #expect(origin.count("/api/items/1") == 1)
        }
    }

    @Test func upstreamConnectionsAreKeptAliveAndReused() async throws {
        try await withProxy({ _ in .ok("x") }) { origin, proxy in
            for i in 0..<20 { _ = try await request(proxy.port, "POST", "/api/items/\(i)", body: "a") }
            #expect(origin.connections <= 2)  // one per event loop at most
        }
    }

    @Test func idleUpstreamConnectionsCloseAfterTheKeepaliveTimeout() async throws {
        // Margins of 1.4 s against the timeout: the whole suite runs in parallel on two cores.
        let upstream = { (port: Int) in "upstream:\n  url: \"http://127.0.0.1:\(port)\"\n  keepalive_timeout: 2s" }
        try await withProxy(upstream: upstream, { _ in .ok("x") }) { origin, proxy in
            _ = try await request(proxy.port, "POST", "/api/a", body: "a")
            #expect(origin.connections == 1)
            // Used again within the timeout: the same connection, and its idle time starts over.
            try await Task.sleep(for: .milliseconds(600))
            _ = try await request(proxy.port, "POST", "/api/b", body: "b")
            try await Task.sleep(for: .milliseconds(600))
            #expect(origin.connections >= 1)
            #expect(await eventually({ origin.connections }, until: { $0 == 0 }) == 0)
        }
    }

    @Test func anUnreachableUpstreamIs502NamingTheCause() async throws {
        let refusing = try RefusingPort()
        let port = refusing.port
        let proxy = try await Sidecar.start(origin: nil, upstreamPort: port)
        let r = try await get(proxy.port, "/anything")
        #expect(r.status == 502)
        #expect(r.text.contains("unreachable") && r.text.contains("127.0.0.1:\(port)"))
        await proxy.stop()
        withExtendedLifetime(refusing) {}
    }

    @Test func aSlowUpstreamIs504() async throws {
        try await withProxy({ _ in OriginReply(status: .ok, body: "late", delay: .seconds(4)) }) { _, proxy in
            let r = try await request(proxy.port, "POST", "/api/slow", body: "x")
            #expect(r.status == 504)
            #expect(r.text.contains("did not respond within 2s"))
        }
    }

    @Test func aClientPausingLongerThanTheResponseTimeoutStillGetsTheWholeBody() async throws {
        // response_timeout is 2s in the test config; backpressure pauses the upstream, not the clock.
        let size = 16 << 20
        try await withProxy({ _ in OriginReply(status: .ok, headers: [("Cache-Control", "no-store")], streamBytes: size) }) { _, proxy in
            let received = try await offloaded { () -> Int in
                let c = try TestConnection(port: proxy.port, timeoutSeconds: 20)
                try c.send("GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
                sleep(3)
                return try c.readResponseCountingBody().1
            }
            #expect(received == size)
        }
    }

    @Test func anUpstreamHangingUpIs502() async throws {
        try await withProxy({ _ in OriginReply(hangUp: true) }) { _, proxy in
            let r = try await request(proxy.port, "POST", "/api/x", body: "x")
            #expect(r.status == 502)
        }
    }

    @Test func malformedRequestsGet400AndOversizedHeads431() async throws {
        try await withProxy({ _ in .ok("x") }) { _, proxy in
            let bad = try await offloaded { () -> TestResponse in
                let c = try TestConnection(port: proxy.port)
                try c.send("GARBAGE\r\n\r\n")
                return try c.readResponse()
            }
            #expect(bad.status == 400)
            let noHost = try await offloaded { () -> TestResponse in
                let c = try TestConnection(port: proxy.port)
                try c.send("GET /x HTTP/1.1\r\n\r\n")
                return try c.readResponse()
            }
            #expect(noHost.status == 400)
            let big = String(repeating: "a", count: 20_000)
            let configured = try await get(proxy.port, "/x", [("X-Big", big)])
            #expect(configured.status == 431)
            let huge = String(repeating: "b", count: 120_000)
            let overflow = try await offloaded { () -> TestResponse in
                let c = try TestConnection(port: proxy.port)
                try c.send("GET /x HTTP/1.1\r\nHost: x\r\nX-Huge: \(huge)\r\n\r\n")
                return try c.readResponse()
            }
            #expect(overflow.status == 431)
            #expect(try await get(proxy.port, "/x").status == 200)  // the server is fine
        }
    }

    /// The wire layer's statuses over a real socket, each answer with `Connection: close` and the
    /// reason in its body; the next connection is served.
    @Test(arguments: [
        ("POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nhi", 400, "Content-Length"),
        ("POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501, "transfer coding"),
        ("GET /x HTTP/2.0\r\nHost: x\r\n\r\n", 505, "version"),
        ("GET /\(String(repeating: "a", count: 9000)) HTTP/1.1\r\nHost: x\r\n\r\n", 414, "too long"),
        ("GET /x HTTP/1.1\r\nHost: x\r\nA: b\r\n folded\r\n\r\n", 400, "folded"),
        ("GET /x HTTP/1.1\nHost: x\n\n", 400, "bare"),
        // Not the wire layer's: the Host's syntax is checked when the request is admitted.
        ("GET /x HTTP/1.1\r\nHost: a/b\r\n\r\n", 400, "Host header is not a host name"),
    ])
    func theStrictProfileAnswersWithItsStatus(request: String, status: Int, reason: String) async throws {
        try await withProxy({ _ in .ok("x") }) { origin, proxy in
            let answer = try await offloaded { () -> TestResponse in
                let c = try TestConnection(port: proxy.port)
                try c.send(request)
                return try c.readResponse()
            }
            #expect(answer.status == status)
            #expect(answer.header("Connection") == "close")
            #expect(String(decoding: answer.body, as: UTF8.self).contains(reason))
            #expect(origin.requests.isEmpty)
            #expect(try await get(proxy.port, "/x").status == 200)
        }
    }

    /// RFC 9110 §15.2, RFC 9111 §3: interim responses reach the client before the final one, and
    /// are never stored nor merged into what is stored.
    @Test func interimResponsesAreRelayedBeforeTheFinalOneAndNeverStored() async throws {
        var early = OriginReply.ok("final", [("Cache-Control", "max-age=60")])
        early.interim = [(103, [("Link", "</app.css>; rel=preload"), ("X-Hint", "early")]), (102, [])]
        let reply = early
        try await withProxy({ _ in reply }) { _, proxy in
            for (method, path) in [("POST", "/api/items/1"), ("GET", "/api/items/2")] {
                let responses = try await offloaded { () -> [TestResponse] in
                    let c = try TestConnection(port: proxy.port)
                    try c.send("\(method) \(path) HTTP/1.1\r\nHost: test.local\r\nContent-Length: 0\r\n\r\n")
                    return [try c.readResponse(), try c.readResponse(), try c.readResponse()]
                }
                #expect(responses.map(\.status) == [103, 102, 200], "\(method)")
                #expect(responses[0].header("Link") == "</app.css>; rel=preload")
                #expect(responses[2].text == "final" && responses[2].header("X-Hint") == nil)
            }
            // The stored entry: no interim response, none of its fields.
            let hit = try await get(proxy.port, "/api/items/2")
            #expect(hit.status == 200 && hit.xCache == "HIT", "\(hit.status) \(hit.xCache ?? "-") \(hit.header("Cache-Status") ?? "-")")
            #expect(hit.header("Link") == nil && hit.header("X-Hint") == nil)
            // HTTP/1.0 clients get no 1xx.
            let old = try await offloaded { () -> TestResponse in
                let c = try TestConnection(port: proxy.port)
                try c.send("GET /api/items/3 HTTP/1.0\r\nHost: x\r\n\r\n")
                return try c.readResponse()
            }
            #expect(old.status == 200 && old.text == "final")
        }
    }

    @Test func aHostThatIsNoHostNameAddressOrPortIs400() async throws {
        try await withProxy({ _ in .ok("x") }) { origin, proxy in
            for host in ["a/b", "a?b", "user@host", "a b", "h\u{7f}", "ex\u{e4}mple", "a#b"] {
                let r = try await offloaded { () -> TestResponse in
                    let c = try TestConnection(port: proxy.port)
                    try c.send("GET /api/items/1 HTTP/1.1\r\nHost: \(host)\r\n\r\n")
                    return try c.readResponse()
                }
                #expect(r.status == 400, "Host: \(host)")
            }
            for host in ["example.com", "EXAMPLE.com:8080", "127.0.0.1:1", "[::1]:8080", "xn--bcher-kva.example", ""] {
                let r = try await offloaded { () -> TestResponse in
                    let c = try TestConnection(port: proxy.port)
                    try c.send("GET /api/items/1 HTTP/1.1\r\nHost: \(host)\r\n\r\n")
                    return try c.readResponse()
                }
                #expect(r.status == 200, "Host: \(host)")
            }
            #expect(origin.count("/api/items/1") == 6, "one fill per valid host")
        }
    }

    @Test func slowHeadersAndIdleConnectionsAreClosed() async throws {
        let extra = "limits: { header_read_timeout: 300ms, idle_timeout: 400ms }"
        try await withProxy(extra: extra, { _ in .ok("x") }) { _, proxy in
            let slowloris = try await offloaded { () -> Bool in
                let c = try TestConnection(port: proxy.port)
                try c.send("GET /x HTTP/1.1\r\nHost: x\r\n")
                usleep(150_000)
                try c.send("X-A: 1\r\n")  // still trickling
                return c.waitForClose(seconds: 3)
            }
            #expect(slowloris)
            let idle = try await offloaded { () -> (Int, Bool) in
                let c = try TestConnection(port: proxy.port)
                try c.send("GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
                let status = try c.readResponse().status
                return (status, c.waitForClose(seconds: 3))
            }
            #expect(idle.0 == 200 && idle.1)
        }
    }

    @Test func aKeptAliveConnectionIsHeldToTheHeaderDeadlineOnceItsNextHeadBegins() async throws {
        let extra = "limits: { header_read_timeout: 300ms, idle_timeout: 5s }"
        try await withProxy(extra: extra, { _ in .ok("x") }) { _, proxy in
            let seen = try await offloaded { () -> (first: Int, afterIdle: Int, trickleClosed: Bool) in
                let c = try TestConnection(port: proxy.port)
                try c.send("GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
                let first = try c.readResponse().status
                usleep(700_000)  // idle past the header deadline: idle time is governed by idle_timeout
                try c.send("GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
                let afterIdle = try c.readResponse().status
                try c.send("GET /x HTTP/1.1\r\nHost: x\r\n")
                usleep(150_000)
                try c.send("X-A: 1\r\n")  // trickling: cut by the 300 ms header deadline, not the 5 s idle one
                return (first, afterIdle, c.waitForClose(seconds: 3))
            }
            #expect(seen.first == 200 && seen.afterIdle == 200)
            #expect(seen.trickleClosed)
        }
    }

    @Test func connectionsBeyondTheLimitAreRefusedCleanly() async throws {
        try await withProxy(extra: "limits: { max_connections: 2 }", { _ in .ok("x") }) { _, proxy in
            let refused = try await offloaded { () -> (TestResponse, TestResponse) in
                let a = try TestConnection(port: proxy.port)
                let b = try TestConnection(port: proxy.port)
                try a.send("GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
                try b.send("GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
                _ = try a.readResponse()
                _ = try b.readResponse()
                let c = try TestConnection(port: proxy.port)
                let third = try c.readResponse()
                a.close()
                b.close()
                // Closed connections free their slots as soon as the server sees them go.
                var last = TestResponse(status: 0, headers: [], body: [])
                for _ in 0..<50 {
                    let d = try TestConnection(port: proxy.port)
                    try d.send("GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
                    last = try d.readResponse()
                    if last.status == 200 { break }
                    usleep(50_000)
                }
                return (third, last)
            }
            #expect(refused.0.status == 503)
            #expect(refused.1.status == 200)
        }
    }

    @Test func webSocketUpgradesAreTunnelledBothWays() async throws {
        try await withProxy({ _ in .ok("not upgraded") }) { _, proxy in
            let (status, echoed) = try await offloaded { () -> (Int, String) in
                let c = try TestConnection(port: proxy.port)
                try c.send("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
                let head = try c.readResponse()
                try c.send("ping-frame-bytes")
                var got: [UInt8] = []
                var chunk = [UInt8](repeating: 0, count: 64)
                while got.count < 16 {
                    let n = recv(c.fd, &chunk, 64, 0)
                    if n <= 0 { break }
                    got += chunk[0..<n]
                }
                return (head.status, String(decoding: got, as: UTF8.self))
            }
            #expect(status == 101)
            #expect(echoed == "ping-frame-bytes")
        }
    }

    @Test func everyRequestWritesOneAccessLogLine() async throws {
        try await withProxy(access: true, { _ in .ok("x") }) { _, proxy in
            _ = try await get(proxy.port, "/api/items/1", [("X-Request-ID", "log-me")])
            _ = try await get(proxy.port, "/api/items/1")
            let lines = proxy.logLines.filter { $0.contains("\"type\":\"access\"") }
            #expect(lines.count == 2)
            let first = try #require(lines.first)
            let json = try #require(try JSONSerialization.jsonObject(with: Data(first.utf8)) as? [String: Any])
            #expect(json["request_id"] as? String == "log-me")
            #expect(json["method"] as? String == "GET")
            #expect(json["path"] as? String == "/api/items/1")
            #expect(json["route"] as? String == "items")
            #expect(json["status"] as? Int == 200)
            #expect(json["cache"] as? String == "miss")
            #expect(json["upstream_ms"] != nil && json["total_ms"] != nil && json["bytes"] as? Int == 1)
            #expect(lines[1].contains("\"cache\":\"hit\""))
        }
    }

    @Test func aReloadSwapsTheConfigAndKeepsTheCache() async throws {
        try await withProxy({ r in .ok("x \(r.path)") }) { origin, proxy in
            _ = try await get(proxy.port, "/api/items/1")
            let original = try String(contentsOfFile: proxy.configPath, encoding: .utf8)
            // An invalid file: the old config keeps serving and every error is reported.
            try (original + "\nbogus_key: 1\n").write(toFile: proxy.configPath, atomically: true, encoding: .utf8)
            guard case .failure(let errors) = proxy.runtime.reload() else { Issue.record("reload should fail"); return }
            #expect(errors.errors.first?.path == "bogus_key")
            #expect(try await get(proxy.port, "/api/items/1").xCache == "HIT")
            // A valid change: the items route stops caching; the entry survives in the store.
            let changed = original.replacingOccurrences(of: "  - name: items\n    match: { methods: [GET, HEAD], path: \"/api/items/{id}\" }\n    ttl: 5m",
                                                        with: "  - name: items\n    match: { methods: [GET, HEAD], path: \"/api/items/{id}\" }\n    cache: false\n  - name: extra\n    match: { path: \"/extra\" }\n    ttl: 5m")
                .replacingOccurrences(of: "    stale_while_revalidate: 30s\n    stale_if_error: 10m\n    key: { query: [lang], headers: [X-Tenant] }\n    tags: [\"items\", \"item:{id}\"]\n", with: "")
            try changed.write(toFile: proxy.configPath, atomically: true, encoding: .utf8)
            guard case .success(let changes) = proxy.runtime.reload() else { Issue.record("reload should succeed"); return }
            #expect(changes.addedRoutes == ["extra"])
            #expect(changes.changedRoutes == ["items"])
            #expect(proxy.runtime.config.version == 2)
            #expect(try await get(proxy.port, "/api/items/1").xCache == "BYPASS")
            #expect(proxy.runtime.cacheStatistics.entries == 1)
            #expect(proxy.logLines.contains { $0.contains("config reloaded") && $0.contains("routes added: extra") })
            #expect(proxy.logLines.contains { $0.contains("config reload failed") })
        }
    }
}


/// Methods sidecache has no rules for (RFC 9110 §9.1 lets a server see any token).
@Suite struct ExtensionMethodTests {
    @Test(arguments: ["PROPFIND", "MKCOL", "M-SEARCH", "PURGE", "LINK"])
    func anExtensionMethodIsForwardedAndASuccessInvalidatesItsTarget(method: String) async throws {
        // SwiftNIO names M-SEARCH `.MSEARCH` (raw value "MSEARCH"); on the wire it must stay
        // M-SEARCH, or the origin's parser refuses it (it answered 400 before sidecache mapped it).
        let seen = method == "M-SEARCH" ? "MSEARCH" : method
        try await withProxy({ r in .ok("\(r.method.rawValue) seen", [("Cache-Control", "max-age=300")]) }) { origin, proxy in
            #expect(try await get(proxy.port, "/api/items/1").xCache == "MISS")
            #expect(try await get(proxy.port, "/api/items/1").xCache == "HIT")
            let answered = try await request(proxy.port, method, "/api/items/1", body: "")
            #expect(answered.status == 200 && answered.text == "\(seen) seen", "\(answered.status) \(answered.text)")
            #expect(answered.header("Cache-Status") == "sidecache; fwd=method")
            #expect(origin.requests.contains { $0.method.rawValue == seen })
            // RFC 9111 §4.4: a non-error response to an unsafe method invalidates the target.
            #expect(try await get(proxy.port, "/api/items/1").xCache == "MISS")
        }
    }

    /// A token no parser has a name for (NIO's decoder refused these with 400 before sidecache
    /// parsed requests itself) reaches the origin as it was sent. The test origin is NIO too and
    /// would refuse it, so a raw one answers with the request line it read.
    @Test func aMethodNoParserKnowsIsForwardedAsSent() async throws {
        let origin = try await RawLineOrigin.start()
        let proxy = try await Sidecar.start(origin: nil, upstreamPort: origin.port)
        let answered = try await request(proxy.port, "FROB-IT", "/api/items/1", body: "")
        #expect(answered.status == 200)
        #expect(answered.text == "FROB-IT /api/items/1 HTTP/1.1")
        #expect(answered.header("Cache-Status") == "sidecache; fwd=method")
        await proxy.stop()
        try await origin.stop()
    }
    /// The head goes upstream as the client's own field lines (spacing, case and order kept), less
    /// the hop-by-hop ones and those `Connection` names, then the forwarding fields; a fill also
    /// drops the client's preconditions (issue 21 §2).
    @Test func requestHeadsAreRelayedAsTheirOwnLinesPlusTheForwardingFields() async throws {
        let origin = try await RawLineOrigin.start(wholeHead: true, cacheControl: "max-age=60")
        let proxy = try await Sidecar.start(origin: nil, upstreamPort: origin.port)
        let sent = try await offloaded {
            let c = try TestConnection(port: proxy.port)
            try c.send("DELETE /api/things/7?x=1 HTTP/1.1\r\nHost: example.test\r\nuser-agent:  raw/1 \r\nConnection: keep-alive, X-Hop\r\n"
                       + "X-Hop: secret\r\nKeep-Alive: 5\r\nX-Forwarded-For: 10.0.0.9\r\nTE: trailers\r\nX-Request-ID: abc-123\r\n"
                       + "Accept: */*\r\nContent-Length: 0\r\n\r\n")
            let forwarded = try c.readResponse().text
            try c.send("GET /origin/echo HTTP/1.1\r\nHost: example.test\r\nIf-None-Match: \"v1\"\r\nif-modified-since: Tue, 01 Dec 2026 00:00:00 GMT\r\n"
                       + "X-Request-ID: def-456\r\nAccept: */*\r\n\r\n")
            return (forwarded, try c.readResponse().text)
        }
        #expect(sent.0 == "DELETE /api/things/7?x=1 HTTP/1.1\r\nHost: example.test\r\nuser-agent:  raw/1 \r\nAccept: */*\r\nContent-Length: 0\r\n"
                + "X-Forwarded-For: 10.0.0.9, 127.0.0.1\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: example.test\r\nVia: 1.1 sidecache\r\n"
                + "X-Request-ID: abc-123")
        // The route gzips: sidecache asks for the coding it serves (identity for this client).
        #expect(sent.1 == "GET /origin/echo HTTP/1.1\r\nHost: example.test\r\nAccept: */*\r\nAccept-Encoding: identity\r\nX-Forwarded-For: 127.0.0.1\r\n"
                + "X-Forwarded-Proto: http\r\nX-Forwarded-Host: example.test\r\nVia: 1.1 sidecache\r\nX-Request-ID: def-456")
        await proxy.stop()
        try await origin.stop()
    }

    /// A head with no field lines at all (HTTP/1.0 needs no Host) goes up with the forwarding fields.
    @Test func aRequestWithNoFieldsIsRelayedWithTheForwardingFields() async throws {
        let origin = try await RawLineOrigin.start(wholeHead: true)
        let proxy = try await Sidecar.start(origin: nil, upstreamPort: origin.port)
        let sent = try await offloaded {
            let c = try TestConnection(port: proxy.port)
            try c.send("DELETE /api/things/9 HTTP/1.0\r\n\r\n")
            return try c.readResponse().text
        }
        #expect(sent.hasPrefix("DELETE /api/things/9 HTTP/1.1\r\nX-Forwarded-For: 127.0.0.1\r\nX-Forwarded-Proto: http\r\n"
                               + "Via: 1.1 sidecache\r\nX-Request-ID: "), "\(sent)")
        await proxy.stop()
        try await origin.stop()
    }
}

/// An origin that answers every request with its request line (or its whole head), read as bytes
/// (no HTTP parser).
struct RawLineOrigin {
    let channel: any Channel
    var port: Int { channel.localAddress?.port ?? 0 }

    static func start(wholeHead: Bool = false, cacheControl: String = "no-store") async throws -> RawLineOrigin {
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(Handler(wholeHead: wholeHead, cacheControl: cacheControl)) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return RawLineOrigin(channel: server)
    }

    func stop() async throws { try await channel.close() }

    final class Handler: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        private var pending = ""
        let wholeHead: Bool
        let cacheControl: String
        init(wholeHead: Bool, cacheControl: String) {
            self.wholeHead = wholeHead
            self.cacheControl = cacheControl
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            pending += String(buffer: unwrapInboundIn(data))
            while let end = pending.range(of: "\r\n\r\n") {
                let head = pending[..<end.lowerBound]
                let line = wholeHead ? String(head) : head.split(separator: "\r\n", maxSplits: 1).first.map(String.init) ?? ""
                pending = String(pending[end.upperBound...])
                let reply = "HTTP/1.1 200 OK\r\nContent-Length: \(line.utf8.count)\r\nCache-Control: \(cacheControl)\r\n\r\n\(line)"
                context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: reply)), promise: nil)
            }
        }
    }
}
