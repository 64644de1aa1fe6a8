import HTTPCaching
import Resilience
import SidecacheConfig
import Testing

@Suite struct ResilienceConfigTests {
    static let upstream = "upstream: { url: \"http://127.0.0.1:3000\" }\n"

    @Test func theIssuesExampleIsAcceptedWithItsDefaults() throws {
        let config = try parse("""
        upstream:
          url: "http://127.0.0.1:3000"
          circuit_breaker: { window: 10s, min_requests: 20, failure_rate: 50%, consecutive_failures: 5,
                             open_for: 5s, half_open_probes: 3 }
          retries: { attempts: 2, base: 25ms, max: 1s }
        trusted_proxies: [10.0.0.0/8, "fd00::/8", 192.168.1.7]
        routes:
          - name: list
            match: { path: "/api/items" }
            rate_limit: { requests: 100, per: 1s, burst: 20, key: client_ip, scope: local }
          - name: keyed
            match: { path: "/api/keyed" }
            rate_limit: { requests: 5, per: 1m, key: "header:X-Api-Key", mode: shadow }
            retry_unsafe_idempotent: true
        """)
        let breaker = try #require(config.upstream.circuitBreaker)
        #expect(breaker == SidecacheConfiguration.CircuitBreakerConfig())
        #expect(breaker.settings.failureRate == 0.5 && breaker.settings.openFor == 5_000_000_000)
        #expect(config.upstream.retries == SidecacheConfiguration.Retries())
        #expect(config.trustedProxies.map(\.description) == ["10.0.0.0/8", "fd00::/8", "192.168.1.7"])
        let list = try #require(config.routes[0].rateLimit)
        #expect(list.requests == 100 && list.per == .seconds(1) && list.burst == 20 && list.key == .clientIP && list.scope == .local && !list.shadow)
        #expect(list.gcra.interval == 10_000_000 && list.gcra.tolerance == 200_000_000)
        let keyed = try #require(config.routes[1].rateLimit)
        #expect(keyed.key == .header("x-api-key") && keyed.shadow && keyed.burst == 0)
        #expect(config.routes[1].retryUnsafeIdempotent && !config.routes[0].retryUnsafeIdempotent)
        let snapshot = ConfigSnapshot(configuration: config, version: 1, sourcePath: "t.yaml")
        #expect(snapshot.routes.map(\.index) == [0, 1])
        // Without the sections: no breaker, no retries, nothing trusted.
        let plain = try parse(Self.upstream)
        #expect(plain.upstream.circuitBreaker == nil && plain.upstream.retries == nil && plain.trustedProxies.isEmpty)
        #expect(try parse("upstream: { url: \"http://a:1\", circuit_breaker: true }").upstream.circuitBreaker != nil)
    }

    @Test func mistakesAreReportedWithPathAndLine() {
        let e = errors("""
        upstream:
          url: "http://127.0.0.1:3000"
          circuit_breaker: { failure_rate: 150%, open_for: soon, failure_statuses: [404], probes: 2 }
          retries: { attempts: 11, base: 2s, max: 1s }
        trusted_proxies: [10.0.0.0/33, "nonsense"]
        routes:
          - name: a
            match: { path: "/a" }
            rate_limit: { per: 0s, key: "cookie", scope: cluster, mode: loud }
          - name: b
            match: { path: "/b" }
            rate_limit: { requests: 10, scope: redis }
          - name: c
            match: { path: "/c" }
            rate_limit: { requests: 2000000, scope: redis }
        """)
        #expect(e.contains { $0.path == "upstream.circuit_breaker.failure_rate" && $0.line == 3 })
        #expect(e.contains { $0.path == "upstream.circuit_breaker.open_for" })
        #expect(e.contains { $0.path == "upstream.circuit_breaker.failure_statuses[0]" && $0.message.contains("500") })
        #expect(e.contains { $0.path == "upstream.circuit_breaker.probes" && $0.message.contains("half_open_probes") })
        #expect(e.contains { $0.path == "upstream.retries.attempts" && $0.line == 4 })
        #expect(e.contains { $0.path == "upstream.retries.max" && $0.message.contains("less than base") })
        #expect(e.contains { $0.path == "trusted_proxies[0]" && $0.line == 5 })
        #expect(e.contains { $0.path == "trusted_proxies[1]" && $0.message.contains("CIDR") })
        #expect(e.contains { $0.path == "routes[0].rate_limit.requests" && $0.message.contains("missing") && $0.line == 9 })
        #expect(e.contains { $0.path == "routes[0].rate_limit.per" })
        #expect(e.contains { $0.path == "routes[0].rate_limit.key" && $0.message.contains("header:<Name>") })
        #expect(e.contains { $0.path == "routes[0].rate_limit.scope" && $0.message.contains("local or redis") })
        #expect(e.contains { $0.path == "routes[0].rate_limit.mode" && $0.message.contains("shadow") })
        #expect(e.contains { $0.path == "routes[1].rate_limit.scope" && $0.message.contains("cache.redis") && $0.line == 12 })
        #expect(e.contains { $0.path == "routes[2].rate_limit.requests" && $0.message.contains("microsecond") && $0.line == 15 })
    }

    @Test func aReloadNamesTrustedProxiesAsChanged() throws {
        let old = try parse(Self.upstream)
        let new = try parse(Self.upstream + "trusted_proxies: [127.0.0.1]")
        #expect(ConfigChanges(from: old, to: new).changedSections == ["trusted_proxies"])
    }
}
