import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Sidecache
import SidecacheConfig
import TestSupport
import Testing

/// The admin port over real sockets: a real origin, a real sidecache with its admin listener.
@Suite struct AdminTests {
    static let item = #"{"id":1}"#

    static func withAdmin(token: String? = nil, _ body: (TestOrigin, Sidecar, Int) async throws -> Void) async throws {
        var extra = "admin:\n  listen: \"127.0.0.1:0\""
        if let token {
            let file = NSTemporaryDirectory() + "admin-token-\(UUID().uuidString)"
            try "\(token)\n".write(toFile: file, atomically: true, encoding: .utf8)
            extra += "\n  token_file: \"\(file)\""
        }
        try await withProxy(extra: extra, { _ in .ok(Self.item) }) { origin, proxy in
            let adminPort = try #require(proxy.adminPort)
            try await body(origin, proxy, adminPort)
        }
    }

    static func json(_ response: TestResponse) throws -> [String: Any] {
        try #require(JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any])
    }

    static func removed(_ response: TestResponse) throws -> Int {
        let removed = try #require(try json(response)["removed"] as? [String: Any])
        return try #require(removed["memory"] as? Int)
    }

    @Test func healthAndReadiness() async throws {
        try await Self.withAdmin(token: "t0k") { _, _, admin in
            let health = try await get(admin, "/healthz")
            #expect(health.status == 200 && health.header("Content-Type") == "application/json")
            #expect(try Self.json(health)["status"] as? String == "ok")
            let ready = try await get(admin, "/readyz")
            let readyStatus = try Self.json(ready)["status"] as? String
            #expect(ready.status == 200 && readyStatus == "ready")
        }
        // No upstream listening: not ready.
        let dead = try RefusingPort()
        let proxy = try await Sidecar.start(origin: nil, upstreamPort: dead.port, extra: "admin: { listen: \"127.0.0.1:0\" }")
        let notReady = try await get(try #require(proxy.adminPort), "/readyz")
        #expect(notReady.status == 503)
        let reason = try Self.json(notReady)["reason"] as? String
        #expect(reason?.contains("unreachable") == true)
        await proxy.stop()
        withExtendedLifetime(dead) {}
    }

    @Test func everyOtherEndpointNeedsTheToken() async throws {
        try await Self.withAdmin(token: "s3cret-token") { _, _, admin in
            #expect(try await get(admin, "/config").status == 401)
            #expect(try await get(admin, "/config", [("Authorization", "Bearer wrong")]).status == 401)
            #expect(try await get(admin, "/config", [("Authorization", "Bearer s3cret-token-and-more")]).status == 401)
            #expect(try await request(admin, "POST", "/purge", body: #"{"all": true}"#).status == 401)
            let ok = try await get(admin, "/config", [("Authorization", "Bearer s3cret-token")])
            #expect(ok.status == 200)
            #expect(!ok.text.contains("s3cret-token"))
        }
    }

    @Test func aNonLoopbackAdminPortRefusesToStartWithoutAToken() throws {
        let admin = SidecacheConfiguration.Admin(listen: .init(host: "0.0.0.0", port: 9901))
        let group = MultiThreadedEventLoopGroup.singleton
        let snapshot = try ConfigSnapshot(configuration: ConfigParser.parse(yaml: "upstream: { url: \"http://127.0.0.1:1\" }", file: "t.yaml"),
                                          version: 1, sourcePath: "t.yaml")
        let sink = LogSink(fileDescriptor: -1)
        let runtime = ProxyRuntime(snapshot: snapshot, group: group, logger: .init(label: "t"), logSink: sink, levelBox: LogLevelBox(.info))
        #expect(throws: (any Error).self) { try AdminServer(runtime: runtime, group: group, admin: admin, environment: [:]) }
        _ = try AdminServer(runtime: runtime, group: group, admin: admin, environment: ["SIDECACHE_ADMIN_TOKEN": "x"])
    }

    @Test func purgeByURLRemovesEveryVariantAndPurgeShorthandToo() async throws {
        try await Self.withAdmin { origin, proxy, admin in
            _ = try await get(proxy.port, "/api/items/1")
            _ = try await get(proxy.port, "/api/items/1?lang=de")
            _ = try await get(proxy.port, "/api/items/2")
            #expect(try await get(proxy.port, "/api/items/1?lang=de").xCache == "HIT")
            let purged = try await request(admin, "POST", "/purge", body: #"{"url": "http://example.com/api/items/1?x=1"}"#)
            #expect(purged.status == 200)
            #expect(try Self.removed(purged) == 2)
            #expect(try await get(proxy.port, "/api/items/1?lang=de").xCache == "MISS")
            #expect(try await get(proxy.port, "/api/items/2").xCache == "HIT")
            let shorthand = try await request(admin, "PURGE", "/api/items/2")
            let shorthandRemoved = try Self.removed(shorthand)
            #expect(shorthand.status == 200 && shorthandRemoved == 1)
            #expect(try await get(proxy.port, "/api/items/2").xCache == "MISS")
        }
    }

    @Test func purgeByTagsAndAll() async throws {
        try await Self.withAdmin { origin, proxy, admin in
            for id in 1...3 { _ = try await get(proxy.port, "/api/items/\(id)") }
            _ = try await get(proxy.port, "/plain/x")
            let tag = try await request(admin, "POST", "/purge", body: #"{"tags": ["item:2", "item:3"]}"#)
            let tagRemoved = try Self.removed(tag)
            #expect(tag.status == 200 && tagRemoved == 2)
            #expect(try await get(proxy.port, "/api/items/1").xCache == "HIT")
            #expect(try await get(proxy.port, "/api/items/2").xCache == "MISS")
            let all = try await request(admin, "POST", "/purge", body: #"{"all": true}"#)
            let allRemoved = try Self.removed(all)
            #expect(all.status == 200 && allRemoved == 3)  // items 1 and 2 (stored again) and /plain/x
            #expect(try await get(proxy.port, "/plain/x").xCache == "MISS")
        }
    }

    @Test func purgeByPatternAndRegexTouchesOnlyTheMatchingPaths() async throws {
        try await Self.withAdmin { _, proxy, admin in
            for id in 1...3 { _ = try await get(proxy.port, "/api/items/\(id)") }
            _ = try await get(proxy.port, "/api/items/2?lang=fr")
            _ = try await get(proxy.port, "/plain/a")
            _ = try await get(proxy.port, "/plain/bb")
            let glob = try await request(admin, "POST", "/purge", body: #"{"pattern": "/api/items/*"}"#)
            let globRemoved = try Self.removed(glob)
            #expect(glob.status == 200 && globRemoved == 4)
            #expect(try Self.json(glob)["purged"] as? String == "pattern")
            #expect(try await get(proxy.port, "/api/items/2").xCache == "MISS")
            #expect(try await get(proxy.port, "/plain/a").xCache == "HIT")
            let regex = try await request(admin, "POST", "/purge", body: #"{"regex": "^/plain/[a-z]$"}"#)
            let regexRemoved = try Self.removed(regex)
            #expect(regex.status == 200 && regexRemoved == 1)
            #expect(try await get(proxy.port, "/plain/a").xCache == "MISS")
            #expect(try await get(proxy.port, "/plain/bb").xCache == "HIT")
            let unknownTag = try await request(admin, "POST", "/purge", body: #"{"tags": ["no-such-tag"]}"#)
            let unknownRemoved = try Self.removed(unknownTag)
            #expect(unknownTag.status == 200 && unknownRemoved == 0)
        }
    }

    @Test func aSoftPurgeServesTheOldEntryStaleWhileItRefreshes() async throws {
        let version = NIOLockedValueBox(1)
        try await withProxy(extra: "admin: { listen: \"127.0.0.1:0\" }", { _ in .ok("v\(version.withLockedValue { $0 })") }) { origin, proxy in
            let admin = try #require(proxy.adminPort)
            _ = try await get(proxy.port, "/api/items/5")
            _ = try await get(proxy.port, "/api/items/6")
            version.withLockedValue { $0 = 2 }
            let soft = try await request(admin, "POST", "/purge", body: #"{"tags": ["item:5"], "soft": true}"#)
            let json = try Self.json(soft)
            let marked = try #require(json["marked_stale"] as? [String: Any])
            #expect(soft.status == 200 && marked["memory"] as? Int == 1 && json["soft"] as? Bool == true)
            // The route has stale_while_revalidate: the old body is served at once, and refreshed.
            let stale = try await get(proxy.port, "/api/items/5")
            #expect(stale.xCache == "STALE" && stale.text == "v1")
            let fresh = try await eventually({ try await get(proxy.port, "/api/items/5") }, until: { $0.text == "v2" })
            #expect(fresh.text == "v2" && fresh.xCache == "HIT")
            #expect(try await get(proxy.port, "/api/items/6").text == "v1")  // not purged
            #expect(origin.count("/api/items/5") == 2)
        }
    }

    @Test func badPurgeBodiesAre400WithAMessage() async throws {
        try await Self.withAdmin { _, _, admin in
            for (body, fragment) in [
                ("not json", "JSON object"), (#"{"url": "/a", "colour": 1}"#, "unknown field \"colour\""),
                (#"{"url": "/a", "all": true}"#, "exactly one"), (#"{"tags": []}"#, "non-empty"), (#"{"all": false}"#, "must be true"),
                (#"{"url": "ftp://x/y"}"#, "url must be"), (#"{"regex": "([a-z"}"#, "does not compile"),
                (#"{"pattern": ""}"#, "empty"), (#"{"all": true, "soft": "yes"}"#, "soft must be"),
            ] {
                let response = try await request(admin, "POST", "/purge", body: body)
                #expect(response.status == 400, "\(body)")
                let message = try Self.json(response)["error"] as? String
                #expect(message?.contains(fragment) == true, "\(body): \(response.text)")
            }
            #expect(try await get(admin, "/nothing").status == 404)
            #expect(try await get(admin, "/purge").status == 405)
        }
    }

    @Test func reloadAnswersWhatChangedOrEveryErrorAndConfigShowsTheActiveFile() async throws {
        try await Self.withAdmin { _, proxy, admin in
            let original = try String(contentsOfFile: proxy.configPath, encoding: .utf8)
            try original.replacingOccurrences(of: "ttl: 1m", with: "ttl: 2m").write(toFile: proxy.configPath, atomically: true, encoding: .utf8)
            let ok = try await request(admin, "POST", "/reload")
            #expect(ok.status == 200)
            let okBody = try Self.json(ok)
            #expect((okBody["changes"] as? String)?.contains("routes changed: default") == true)
            #expect(okBody["config_version"] as? Int == 2)

            try (original + "\nbogus_key: 1\n").write(toFile: proxy.configPath, atomically: true, encoding: .utf8)
            let bad = try await request(admin, "POST", "/reload")
            #expect(bad.status == 422)
            let errors = try #require(try Self.json(bad)["errors"] as? [[String: Any]])
            #expect(errors.first?["path"] as? String == "bogus_key")
            #expect(proxy.runtime.config.version == 2)

            let config = try await get(admin, "/config")
            let body = try Self.json(config)
            #expect(body["config_version"] as? Int == 2)
            let routes = try #require((body["config"] as? [String: Any])?["routes"] as? [[String: Any]])
            #expect(routes.last?["ttl"] as? String == "2m")
        }
    }

    @Test func statsCountEveryRouteAndNameTheHottestKeys() async throws {
        try await Self.withAdmin(token: "tok") { _, proxy, admin in
            let auth = [("Authorization", "Bearer tok")]
            for _ in 0..<4 { _ = try await get(proxy.port, "/api/items/1") }  // miss, then 3 hits
            for _ in 0..<2 { _ = try await get(proxy.port, "/plain/x") }      // miss, hit
            _ = try await request(proxy.port, "POST", "/api/items/1", body: "{}")  // bypass
            #expect(try await get(admin, "/stats").status == 401)
            let response = try await get(admin, "/stats", auth)
            #expect(response.status == 200)
            let stats = try Self.json(response)
            let routes = try #require(stats["routes"] as? [String: [String: Any]])
            let items = try #require(routes["items"])
            #expect(items["hits"] as? Int == 3 && items["misses"] as? Int == 1 && items["requests"] as? Int == 4)
            #expect(items["hit_ratio"] as? Double == 0.75)
            // One key left stored (the POST invalidated the other), in S3-FIFO's small queue.
            let memory = try #require(stats["cache"] as? [String: Any])
            #expect(memory["policy"] as? String == "s3fifo")
            let queues = try #require(memory["queues"] as? [String: [String: Int]])
            #expect(queues["small"]?["keys"] == 1 && queues["main"]?["keys"] == 0 && queues["ghost"]?["keys"] == 0)
            #expect((queues["small"]?["bytes"] ?? 0) > 0)
            let metrics = Self.samples(String(decoding: proxy.runtime.renderMetrics(), as: UTF8.self))
            #expect(Self.value(metrics, "sidecache_cache_queue_keys", ["queue": "small"]) == 1)
            #expect(Self.value(metrics, "sidecache_cache_queue_keys", ["queue": "main"]) == 0)
            #expect(routes["writes"]?["bypass"] as? Int == 1)
            let totals = try #require(stats["totals"] as? [String: Any])
            #expect(totals["requests"] as? Int == 7 && totals["hits"] as? Int == 4)
            let top = try #require(stats["top_keys"] as? [[String: Any]])
            #expect(top.count == 2)
            #expect((top.first?["key"] as? String)?.contains("/api/items/1 x-tenant=") == true && top.first?["hits"] as? Int == 3)
            let cache = try #require(stats["cache"] as? [String: Any])
            #expect(cache["entries"] as? Int == 1)  // the POST invalidated /api/items/1
            #expect(stats["config_version"] as? Int == 1)
            #expect(stats["redis"] is NSNull)
        }
    }

    /// `name{label="v",...} value` lines of the Prometheus text format, by name and labels.
    static func samples(_ text: String) -> [(name: String, labels: [String: String], value: Double)] {
        text.split(separator: "\n").compactMap { line -> (String, [String: String], Double)? in
            guard !line.hasPrefix("#"), let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { return nil }
            let series = line[..<space]
            guard let brace = series.firstIndex(of: "{") else { return (String(series), [:], value) }
            var labels: [String: String] = [:]
            for pair in series[series.index(after: brace)..<series.index(before: series.endIndex)].split(separator: ",") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                if parts.count == 2 { labels[String(parts[0])] = String(parts[1].dropFirst().dropLast()) }
            }
            return (String(series[..<brace]), labels, value)
        }
    }

    static func value(_ samples: [(name: String, labels: [String: String], value: Double)], _ name: String, _ labels: [String: String] = [:]) -> Double? {
        samples.first { sample in sample.name == name && labels.allSatisfy { sample.labels[$0.key] == $0.value } }?.value
    }

    @Test func metricsAreParsedBackWithTheCountersAScenarioMoved() async throws {
        try await Self.withAdmin { _, proxy, admin in
            for _ in 0..<3 { _ = try await get(proxy.port, "/api/items/1") }
            _ = try await request(proxy.port, "DELETE", "/api/items/1")
            _ = try await request(admin, "POST", "/purge", body: #"{"pattern": "/plain/*", "soft": true}"#)
            try "listen: [".write(toFile: proxy.configPath, atomically: true, encoding: .utf8)
            #expect(try await request(admin, "POST", "/reload").status == 422)

            let response = try await get(admin, "/metrics")
            #expect(response.status == 200 && response.header("Content-Type")?.hasPrefix("text/plain; version=0.0.4") == true)
            let samples = Self.samples(response.text)
            let read: [String: String] = ["route": "items", "method": "read", "status": "2xx"]
            #expect(Self.value(samples, "sidecache_requests_total", read.merging(["cache": "hit"]) { $1 }) == 2)
            #expect(Self.value(samples, "sidecache_requests_total", read.merging(["cache": "miss"]) { $1 }) == 1)
            #expect(Self.value(samples, "sidecache_requests_total", ["route": "writes", "method": "write", "cache": "bypass"]) == 1)
            #expect(Self.value(samples, "sidecache_upstream_duration_seconds_count", ["route": "items"]) == 1)
            #expect(Self.value(samples, "sidecache_purges_total", ["kind": "url", "mode": "hard"]) == 1)  // the DELETE
            #expect(Self.value(samples, "sidecache_purges_total", ["kind": "pattern", "mode": "soft"]) == 1)
            #expect(Self.value(samples, "sidecache_config_reloads_total", ["result": "failure"]) == 1)
            #expect(Self.value(samples, "sidecache_config_reloads_total", ["result": "success"]) == 0)
            #expect(Self.value(samples, "sidecache_cache_entries") == 0)
            #expect(Self.value(samples, "sidecache_config_version") == 1)
        }
    }
}
