import Foundation
import Sidecache
import TestSupport
import Testing

/// The dashboard over real sockets: its page and `GET /stats/series` on the admin port of a real
/// sidecache in front of a real origin, and, in `DashboardBrowserTests`, a real browser.
@Suite struct DashboardTests {
    static let token = "dash-board-token"
    static let bearer = [("Authorization", "Bearer \(token)")]

    static let routes = """
    routes:
      - name: items
        match: { methods: [GET, HEAD], path: "/api/items/{id}" }
        ttl: 5m
        tags: ["items", "item:{id}"]
      - name: limited
        match: { path: "/limited/*" }
        ttl: 1m
        rate_limit: { requests: 2, per: 1m, burst: 1, key: route }
      - name: default
        match: { path: "/*" }
        ttl: 1m
    """

    /// A sidecache with a token-guarded admin port; `/api/items/broken` answers 502.
    static func withDashboard(_ body: (TestOrigin, Sidecar, Int) async throws -> Void) async throws {
        let file = NSTemporaryDirectory() + "admin-token-\(UUID().uuidString)"
        try "\(token)\n".write(toFile: file, atomically: true, encoding: .utf8)
        let extra = "admin:\n  listen: \"127.0.0.1:0\"\n  token_file: \"\(file)\""
        try await withProxy(extra: extra, routes: routes, { request in
            request.path.hasSuffix("/broken") ? OriginReply(status: .badGateway, body: "down") : .ok(#"{"id":1}"#)
        }) { origin, proxy in
            try await body(origin, proxy, try #require(proxy.adminPort))
        }
    }

    /// Misses, hits, a 5xx and rate-limit refusals.
    static func scriptedLoad(_ port: Int) async throws {
        for round in 0..<3 {
            for id in 0..<10 {
                let r = try await get(port, "/api/items/\(id)")
                #expect(r.status == 200 && r.xCache == (round == 0 ? "MISS" : "HIT"))
            }
        }
        #expect(try await get(port, "/api/items/broken").status == 502)
        let limited = try await RateLimitTests.burst(port, "/limited/x", count: 5)
        #expect(limited.filter { $0.status == 429 }.count == 3)
    }

    static func json(_ response: TestResponse) throws -> [String: Any] {
        try #require(JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any])
    }

    static func sum(_ values: Any?) -> Int {
        ((values as? [Any]) ?? []).compactMap { $0 as? Int }.reduce(0, +)
    }

    @Test func theSeriesAddUpToWhatStatsCounts() async throws {
        try await Self.withDashboard { _, proxy, admin in
            try await Self.scriptedLoad(proxy.port)
            let stats = try Self.json(try await get(admin, "/stats", Self.bearer))
            let totals = try #require(stats["totals"] as? [String: Any])
            let requests = try #require(totals["requests"] as? Int)
            #expect(requests == 36)
            // Once a reading was taken after the load, the points add up to /stats.
            let series = try await eventually(timeout: .seconds(10), interval: .milliseconds(200), {
                try Self.json(try await get(admin, "/stats/series", Self.bearer))
            }, until: { Self.sum(($0["series"] as? [String: Any])?["requests"]) == requests })
            let global = try #require(series["series"] as? [String: Any])
            #expect(Self.sum(global["hit"]) == totals["hits"] as? Int)
            // 20 item hits and the second admitted /limited request; 10 item misses, the first
            // /limited one and the 502, which counts as an error instead.
            #expect(Self.sum(global["hit"]) == 21)
            #expect(Self.sum(global["miss"]) == 11)
            #expect(Self.sum(global["errors"]) == 1)
            #expect(Self.sum(global["rate_limited"]) == 3)
            let stacked = ["hit", "miss", "stale", "revalidated", "coalesced", "bypass", "local", "rate_limited", "errors"]
                .map { Self.sum(global[$0]) }.reduce(0, +)
            #expect(stacked == requests)
            let cache = try #require(stats["cache"] as? [String: Any])
            #expect((global["cache_bytes"] as? [Any])?.last as? Int == cache["bytes"] as? Int)
            #expect((global["max_bytes"] as? [Any])?.last as? Int == cache["max_bytes"] as? Int)
            let routes = try #require(series["routes"] as? [String: [String: Any]])
            let items = try #require(routes["items"])
            #expect(Self.sum(items["requests"]) == 31)
            #expect(Self.sum(routes["limited"]?["rate_limited"]) == 3)
            // Every request took some time: a point has a p50 and a p99.
            let p99 = ((global["p99_ms"] as? [Any]) ?? []).compactMap { $0 as? Double ?? ($0 as? Int).map(Double.init) }
            #expect(!p99.isEmpty && p99.allSatisfy { $0 >= 0 })
            let times = try #require(series["times"] as? [Int])
            #expect(times.count == (global["requests"] as? [Any])?.count && times == times.sorted())
            #expect(series["capacity"] as? Int == 900)

            // `since` gives only what came after.
            let last = try #require(times.last)
            let newer = try Self.json(try await get(admin, "/stats/series?since=\(last)", Self.bearer))
            #expect(((newer["times"] as? [Int]) ?? []).allSatisfy { $0 > last })
            #expect(try await get(admin, "/stats/series?since=yesterday", Self.bearer).status == 400)
            #expect(try await get(admin, "/stats/series").status == 401)
        }
    }

    @Test func thePageIsServedWithoutTheTokenAndOnlyItsOwnScriptMayRun() async throws {
        try await Self.withDashboard { _, _, admin in
            for path in ["/", "/dashboard"] {
                let page = try await get(admin, path)
                #expect(page.status == 200 && page.header("Content-Type") == "text/html; charset=utf-8")
                #expect(page.text.contains("<script src=\"/dashboard.js\"") && !page.text.contains("<script>"))
                let policy = try #require(page.header("Content-Security-Policy"))
                #expect(policy.contains("default-src 'none'") && policy.contains("script-src 'self'") && policy.contains("connect-src 'self'"))
                #expect(page.header("X-Frame-Options") == "DENY" && page.header("X-Content-Type-Options") == "nosniff")
            }
            let script = try await get(admin, "/dashboard.js")
            #expect(script.status == 200 && script.header("Content-Type") == "text/javascript; charset=utf-8")
            // The token goes in a header, kept for the tab only; never in a URL or a cookie.
            #expect(script.text.contains("\"Authorization\"") && script.text.contains("sessionStorage"))
            #expect(!script.text.contains("localStorage") && !script.text.contains("document.cookie") && !script.text.contains("token="))
            #expect(!script.text.contains("http://") || script.text.contains("http://www.w3.org/2000/svg"))
            let styles = try await get(admin, "/dashboard.css")
            #expect(styles.status == 200 && styles.header("Content-Type") == "text/css; charset=utf-8" && !styles.text.contains("url("))
            #expect(try await request(admin, "POST", "/dashboard.js", headers: Self.bearer).status == 405)
            // Data still needs the token.
            #expect(try await get(admin, "/stats").status == 401)
            #expect(try await request(admin, "POST", "/purge", body: #"{"all": true}"#).status == 401)
        }
    }

    @Test func aReloadIsShownWithItsResultAndErrors() async throws {
        try await Self.withDashboard { _, proxy, admin in
            #expect((try Self.json(try await get(admin, "/stats", Self.bearer))["config"] as? [String: Any])?["last_reload"] is NSNull)
            let good = try String(contentsOfFile: proxy.configPath, encoding: .utf8)
            try (good + "\nbogus_key: 1\n").write(toFile: proxy.configPath, atomically: true, encoding: .utf8)
            #expect(try await request(admin, "POST", "/reload", headers: Self.bearer).status == 422)
            let config = try #require(try Self.json(try await get(admin, "/stats", Self.bearer))["config"] as? [String: Any])
            let reload = try #require(config["last_reload"] as? [String: Any])
            #expect(reload["result"] as? String == "rejected" && config["version"] as? Int == 1)
            let errors = try #require(reload["errors"] as? [[String: Any]])
            #expect(errors.first?["path"] as? String == "bogus_key" && errors.first?["line"] as? Int != nil)
            try good.write(toFile: proxy.configPath, atomically: true, encoding: .utf8)
            #expect(try await request(admin, "POST", "/reload", headers: Self.bearer).status == 200)
            let after = try #require(try Self.json(try await get(admin, "/stats", Self.bearer))["config"] as? [String: Any])
            #expect((after["last_reload"] as? [String: Any])?["result"] as? String == "reloaded" && after["version"] as? Int == 2)
        }
    }
}
