import Foundation
import NIOConcurrencyHelpers
import NIOHTTP1
import Sidecache
import TestSupport
import Testing

/// The circuit breaker and retries end to end, against a real origin told to fail.
@Suite(.serialized) struct CircuitBreakerEndToEndTests {
    static let routes = """
    routes:
      - name: cached
        match: { path: "/cached/*" }
        ttl: 1m
      - name: writes
        match: { methods: [POST, PUT, DELETE], path: "/api/*" }
        cache: false
      - name: default
        match: { path: "/*" }
    """

    static let breaker = """
    upstream:
      url: "UPSTREAM"
      connect_timeout: 1s
      response_timeout: 2s
      circuit_breaker: { consecutive_failures: 3, min_requests: 100, open_for: 30s, half_open_probes: 2 }
    """

    /// These tests need an `upstream` section with a breaker.
    static func withBreaker(_ responder: @escaping TestOrigin.Responder, _ body: (TestOrigin, Sidecar) async throws -> Void) async throws {
        try await withProxy(upstream: { breaker.replacingOccurrences(of: "UPSTREAM", with: "http://127.0.0.1:\($0)") },
                            extra: "admin: { listen: \"127.0.0.1:0\" }", routes: routes, responder, body)
    }

    /// An origin that fails `/plain` until told otherwise, and keeps a validatable `/cached/a`.
    static func failingOrigin(_ failing: NIOLockedValueBox<Bool>) -> TestOrigin.Responder {
        { r in
            if r.path.hasPrefix("/cached/") { return .ok("kept", [("ETag", "\"k\"")]) }
            return failing.withLockedValue { $0 } ? OriginReply(status: .serviceUnavailable, body: "down") : .ok("up")
        }
    }

    /// Three failures in a row: the breaker (consecutive_failures: 3) opens.
    static func openBreaker(_ proxy: Sidecar) async throws {
        for _ in 0..<3 { #expect(try await get(proxy.port, "/plain").status == 503) }
    }

    /// Past the open period, two probes (half_open_probes: 2) that succeed close the breaker.
    static func closeBreaker(_ proxy: Sidecar, _ failing: NIOLockedValueBox<Bool>) async throws {
        failing.withLockedValue { $0 = false }
        proxy.monotonic.advance(.seconds(31))
        for _ in 0..<2 { #expect(try await get(proxy.port, "/plain").status == 200) }
    }

    @Test func anOpenBreakerAnswersAtOnceWithoutAskingTheOrigin() async throws {
        let failing = NIOLockedValueBox(true)
        try await Self.withBreaker(Self.failingOrigin(failing)) { origin, proxy in
            try await Self.openBreaker(proxy)
            #expect(origin.count("/plain") == 3)
            let refused = try await get(proxy.port, "/plain")
            #expect(refused.status == 503)
            // 30 s open (the test clock also runs in real time: a shorter period ran out under load).
            #expect(["29", "30"].contains(refused.header("Retry-After") ?? ""))
            #expect(refused.header("Cache-Status") == "sidecache; detail=circuit-open")
            #expect(try await request(proxy.port, "POST", "/api/w", body: "x").status == 503)
            #expect(origin.count("/plain") == 3 && origin.count("/api/w") == 0)
            let stats = try AdminTests.json(try await get(try #require(proxy.adminPort), "/stats"))
            let breakerStats = try #require(stats["circuit_breaker"] as? [String: Any])
            #expect(breakerStats["state"] as? String == "open")
        }
    }

    @Test func withTheBreakerOpenAStoredEntryIsServedHoweverStale() async throws {
        let failing = NIOLockedValueBox(true)
        try await Self.withBreaker(Self.failingOrigin(failing)) { origin, proxy in
            #expect(try await get(proxy.port, "/cached/a").xCache == "MISS")
            try await Self.openBreaker(proxy)
            proxy.clock.advance(seconds: 300)  // beyond any stale window
            let stale = try await get(proxy.port, "/cached/a")
            #expect(stale.status == 200 && stale.xCache == "STALE" && stale.text == "kept")
            #expect(stale.header("Cache-Status")?.hasPrefix("sidecache; hit; ttl=-") == true)
            #expect(stale.header("Cache-Status")?.hasSuffix("detail=circuit-open") == true)
            #expect(origin.count("/cached/a") == 1)
        }
    }

    @Test func afterItsOpenPeriodProbesThatSucceedCloseTheBreaker() async throws {
        let failing = NIOLockedValueBox(true)
        try await Self.withBreaker(Self.failingOrigin(failing)) { origin, proxy in
            try await Self.openBreaker(proxy)
            try await Self.closeBreaker(proxy, failing)
            for _ in 0..<3 { #expect(try await get(proxy.port, "/plain").status == 200) }
            #expect(origin.count("/plain") == 8)
        }
    }

    @Test func theBreakersTransitionsAreCountedAndLogged() async throws {
        let failing = NIOLockedValueBox(true)
        try await Self.withBreaker(Self.failingOrigin(failing)) { _, proxy in
            try await Self.openBreaker(proxy)
            for _ in 0..<3 { _ = try await get(proxy.port, "/plain") }  // refused
            try await Self.closeBreaker(proxy, failing)
            let metrics = AdminTests.samples(String(decoding: proxy.runtime.renderMetrics(), as: UTF8.self))
            #expect(AdminTests.value(metrics, "sidecache_circuit_breaker_state") == 0)
            #expect(AdminTests.value(metrics, "sidecache_circuit_breaker_transitions_total", ["to": "open"]) == 1)
            #expect(AdminTests.value(metrics, "sidecache_circuit_breaker_transitions_total", ["to": "half-open"]) == 1)
            #expect(AdminTests.value(metrics, "sidecache_circuit_breaker_transitions_total", ["to": "closed"]) == 1)
            #expect(AdminTests.value(metrics, "sidecache_circuit_breaker_rejected_total") == 3)
            let lines = proxy.logLines
            #expect(lines.contains { $0.contains("circuit breaker opened") })
            #expect(lines.contains { $0.contains("circuit breaker half-open") })
            #expect(lines.contains { $0.contains("circuit breaker closed") })
        }
    }

    @Test func aFailedProbeOpensItAgain() async throws {
        try await Self.withBreaker({ _ in OriginReply(status: .badGateway, body: "down") }) { origin, proxy in
            for _ in 0..<3 { _ = try await get(proxy.port, "/plain") }
            #expect(try await get(proxy.port, "/plain").header("Cache-Status") == "sidecache; detail=circuit-open")
            // A WebSocket upgrade is held back as well.
            let upgrade = try await get(proxy.port, "/ws", [("Upgrade", "websocket"), ("Connection", "Upgrade")])
            #expect(upgrade.status == 503 && upgrade.header("Retry-After") != nil)
            proxy.monotonic.advance(.seconds(31))
            #expect(try await get(proxy.port, "/plain").status == 502)  // the probe, relayed
            #expect(try await get(proxy.port, "/plain").header("Cache-Status") == "sidecache; detail=circuit-open")
            #expect(origin.count("/plain") == 4)
        }
    }

    @Test func serverErrorsOutsideTheListDoNotCount() async throws {
        let responder: TestOrigin.Responder = { _ in OriginReply(status: .internalServerError, body: "x") }
        try await Self.withBreaker(responder) { origin, proxy in
            // 500 is not in the default failure list (502, 503, 504).
            for _ in 0..<5 {
                let status = try await get(proxy.port, "/teapot").status
                #expect(status == 500)
            }
            #expect(origin.count("/teapot") == 5)
        }
    }

    @Test func connectFailuresCount() async throws {
        let refusing = try RefusingPort()
        let proxy = try await Sidecar.start(origin: nil, upstreamSection: Self.breaker.replacingOccurrences(of: "UPSTREAM", with: "http://127.0.0.1:\(refusing.port)"),
                                            routes: Self.routes)
        do {
            for _ in 0..<3 {
                let status = try await get(proxy.port, "/gone").status
                #expect(status == 502)
            }
            let open = try await get(proxy.port, "/gone")
            #expect(open.status == 503 && open.header("Cache-Status") == "sidecache; detail=circuit-open")
        } catch {
            await proxy.stop()
            throw error
        }
        await proxy.stop()
        withExtendedLifetime(refusing) {}
    }
}

@Suite(.serialized) struct RetryEndToEndTests {
    static func upstream(_ port: Int, retries: String = "{ attempts: 2, base: 1ms, max: 5ms }") -> String {
        """
        upstream:
          url: "http://127.0.0.1:\(port)"
          connect_timeout: 1s
          response_timeout: 300ms
          retries: \(retries)
        """
    }

    static let routes = """
    routes:
      - name: puts
        match: { methods: [PUT, DELETE], path: "/api/idem/*" }
        cache: false
        retry_unsafe_idempotent: true
      - name: writes
        match: { methods: [POST, PUT, PATCH, DELETE], path: "/api/*" }
        cache: false
      - name: default
        match: { path: "/*" }
        ttl: 1m
    """

    static func withRetries(retries: String = "{ attempts: 2, base: 1ms, max: 5ms }", _ responder: @escaping TestOrigin.Responder,
                            _ body: (TestOrigin, Sidecar) async throws -> Void) async throws {
        try await withProxy(upstream: { upstream($0, retries: retries) }, routes: routes, responder, body)
    }

    @Test func idempotentRequestsAreRetriedOnRetryableStatusesAndOthersAreNot() async throws {
        // A budget of 100% keeps the budget out of this test.
        try await Self.withRetries(retries: "{ attempts: 2, base: 1ms, max: 5ms, budget: 100% }", { r in
            r.path == "/bad" ? OriginReply(status: .internalServerError, body: "no") : OriginReply(status: .serviceUnavailable, body: "busy")
        }) { origin, proxy in
            let cached = try await get(proxy.port, "/busy")  // a cache fill
            #expect(cached.status == 503 && cached.text == "busy")
            #expect(origin.count("/busy") == 3)
            _ = try await request(proxy.port, "HEAD", "/head")
            #expect(origin.count("/head") == 3)
            _ = try await get(proxy.port, "/bad")  // 500 is not retried
            #expect(origin.count("/bad") == 1)
            _ = try await request(proxy.port, "POST", "/api/post", body: "x")  // POST never
            #expect(origin.count("/api/post") == 1)
            _ = try await request(proxy.port, "PUT", "/api/plain", body: "x")  // PUT only where the route allows
            #expect(origin.count("/api/plain") == 1)
            _ = try await request(proxy.port, "PUT", "/api/idem/1", body: "hello")
            let puts = origin.requests.filter { $0.path == "/api/idem/1" }
            #expect(puts.count == 3 && puts.allSatisfy { $0.bodyBytes == 5 })
            let metrics = AdminTests.samples(String(decoding: proxy.runtime.renderMetrics(), as: UTF8.self))
            #expect(AdminTests.value(metrics, "sidecache_upstream_retries_total") == 6)
        }
    }

    @Test func aRetryThatSucceedsAnswersTheClient() async throws {
        let calls = NIOLockedValueBox(0)
        try await Self.withRetries({ _ in
            let n = calls.withLockedValue { $0 += 1; return $0 }
            return n < 3 ? OriginReply(status: .badGateway, body: "no") : .ok("third time")
        }) { origin, proxy in
            let response = try await get(proxy.port, "/flaky")
            #expect(response.status == 200 && response.text == "third time")
            #expect(response.xCache == "MISS")
            #expect(origin.count("/flaky") == 3)
            #expect(try await get(proxy.port, "/flaky").xCache == "HIT")
        }
    }

    @Test func timeoutsAreRetried() async throws {
        let calls = NIOLockedValueBox(0)
        try await Self.withRetries({ _ in
            let n = calls.withLockedValue { $0 += 1; return $0 }
            return n == 1 ? OriginReply(status: .ok, body: "late", delay: .seconds(1)) : .ok("on time")
        }) { origin, proxy in
            let response = try await get(proxy.port, "/slow")
            #expect(response.status == 200 && response.text == "on time")
            #expect(origin.count("/slow") == 2)
        }
    }

    @Test func theBudgetCapsRetriesAtTwentyPercentPlusThree() async throws {
        try await Self.withRetries({ _ in OriginReply(status: .serviceUnavailable, body: "busy") }) { origin, proxy in
            for i in 0..<10 { _ = try await get(proxy.port, "/b\(i)") }
            // 10 requests allow 0.2 * 10 + 3 = 5 retries, not the 20 the attempts would.
            #expect(origin.requests.count == 15)
            let metrics = AdminTests.samples(String(decoding: proxy.runtime.renderMetrics(), as: UTF8.self))
            // Requests 2 to 10 each met a refusal (request 2 after one retry, 5 and 10 after one each).
            #expect(AdminTests.value(metrics, "sidecache_upstream_retry_budget_exhausted_total") == 9)
        }
    }
}
