import SidecacheConfig
import Testing

@Suite struct WarmingConfigTests {
    static func yaml(warming: String?, warm: String) -> String {
        """
        upstream: { url: "http://127.0.0.1:3000" }
        \(warming.map { "warming: \($0)" } ?? "")
        routes:
          - name: items
            match: { path: "/api/items/{id}" }
            ttl: 5m
            warm: \(warm)
        """
    }

    @Test func theSectionsAndTheirDefaults() throws {
        let c = try parse(Self.yaml(warming: "{ max_rps: 20, max_concurrent: 3, max_tracked_keys: 5000, state_file: /var/lib/sidecache/hot }",
                                    warm: "{ min_rate: 12/m, refresh_ahead: 10% }"))
        #expect(c.warming?.maxRequestsPerSecond == 20 && c.warming?.maxConcurrent == 3 && c.warming?.maxTrackedKeys == 5000)
        #expect(c.warming?.stateFile == "/var/lib/sidecache/hot")
        #expect(c.routes[0].warm?.minRate == 0.2 && c.routes[0].warm?.refreshAhead == 0.1)
        let defaults = try parse(Self.yaml(warming: "{}", warm: "{}"))
        #expect(defaults.warming == SidecacheConfiguration.Warming())
        #expect(defaults.warming?.maxRequestsPerSecond == 50 && defaults.warming?.maxConcurrent == 8 && defaults.warming?.maxTrackedKeys == 100_000)
        #expect(defaults.routes[0].warm?.minRate == 0.1 && defaults.routes[0].warm?.refreshAhead == nil)
        #expect(try parse(Self.yaml(warming: "{}", warm: "{ min_rate: 0.5/s }")).routes[0].warm?.minRate == 0.5)
        #expect(try parse(Self.yaml(warming: "{}", warm: "{ min_rate: 3600/h }")).routes[0].warm?.minRate == 1)
        #expect(try parse(Self.yaml(warming: "{}", warm: "{ min_rate: 2 }")).routes[0].warm?.minRate == 2)
        #expect(try parse(Self.yaml(warming: "{}", warm: "{ prefetch: [\"/api/items/{id}/reviews\"] }")).routes[0].warm?.prefetch.map(\.source)
            == ["/api/items/{id}/reviews"])
        let learned = try parse(Self.yaml(warming: "{}", warm: "{ predict: on, session: \"cookie:sid\", min_confidence: 0.7 }")).routes[0].warm
        #expect(learned?.predict == .on && learned?.session == .cookie("sid") && learned?.minConfidence == 0.7)
        #expect(try parse(Self.yaml(warming: "{}", warm: "{ predict: shadow, session: \"header:X-Session\" }")).routes[0].warm?.session == .header("x-session"))
        #expect(try parse(Self.yaml(warming: "{}", warm: "{}")).routes[0].warm?.predict == .off)
        // No warming section: nothing in the background at all.
        #expect(try parse(Self.yaml(warming: nil, warm: "null")).warming == nil)
    }

    @Test func everyMistakeNamesItsPathAndLine() {
        let e = errors(Self.yaml(warming: "{ max_rps: 0, max_concurrent: many, extra: 1, state_file: \"\" }",
                                 warm: "{ min_rate: fast, refresh_ahead: 95%, prefetch_everything: true, prefetch: [\"reviews\", \"/x/{nope}\"] }"))
        #expect(e.contains { $0.path == "warming.max_rps" && $0.line == 2 })
        #expect(e.contains { $0.path == "warming.max_concurrent" && $0.line == 2 })
        #expect(e.contains { $0.path == "warming.extra" })
        #expect(e.contains { $0.path == "warming.state_file" })
        let learned = errors(Self.yaml(warming: "{}", warm: "{ predict: maybe, session: \"ip\", min_confidence: 2 }"))
        #expect(learned.map(\.path).sorted() == ["routes[0].warm.min_confidence", "routes[0].warm.predict", "routes[0].warm.session"])
        #expect(e.contains { $0.path == "routes[0].warm.min_rate" && $0.line == 7 && $0.message.contains("0.2/s") })
        #expect(e.contains { $0.path == "routes[0].warm.refresh_ahead" && $0.message.contains("90%") })
        #expect(e.contains { $0.path == "routes[0].warm.prefetch_everything" })
        #expect(e.contains { $0.path == "routes[0].warm.prefetch[0]" && $0.message.contains("path on this origin") })
        #expect(e.contains { $0.path == "routes[0].warm.prefetch[1]" && $0.message.contains("{nope}") })
    }

    @Test func aWarmRouteNeedsTheBudgetAndACachedRoute() {
        let alone = errors(Self.yaml(warming: nil, warm: "{ refresh_ahead: 10% }"))
        #expect(alone.count == 1 && alone.first?.path == "routes[0].warm" && alone.first?.message.contains("warming") == true)
        let uncached = errors("""
            upstream: { url: "http://127.0.0.1:3000" }
            warming: {}
            routes:
              - name: writes
                match: { path: "/api/*" }
                cache: false
                warm: { refresh_ahead: 10% }
            """)
        #expect(uncached.contains { $0.path == "routes[0].warm" && $0.message.contains("cache: false") })
    }
}
