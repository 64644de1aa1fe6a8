import Foundation
import HTTPCaching
import NIOConcurrencyHelpers
import NIOCore
import RedisClient
import Sidecache
import TestSupport
import Testing

/// Two sidecache instances sharing one real redis-server (each test starts its own).
@Suite struct RedisTierTests {
    static let item = #"{"id":1,"name":"one"}"#

    static func redisSection(_ server: RedisServer, timeout: String = "2s", keyHost: String? = nil) -> String {
        """
        cache:
          redis: { url: "\(server.url)", key_prefix: "t:", pool_size: 2, timeout: \(timeout) }
        \(keyHost.map { "  key_host: \($0)" } ?? "")
        """
    }

    /// Waits until the instance's Redis tier has a command connection and its subscription.
    static func waitForRedis(_ proxy: Sidecar) async throws {
        let up = await eventually { proxy.runtime.redisStatus.map { $0.connected && $0.subscribed } ?? false }
        #expect(up, "redis tier did not connect")
    }

    /// Runs `body` with one origin, one Redis and two sidecars A and B in front of the origin.
    /// Both have an admin port on a free loopback port.
    static func withTwoInstances(_ responder: @escaping TestOrigin.Responder, timeout: String = "2s", routes: String = Sidecar.defaultRoutes,
                                 keyHost: String? = nil,
                                 _ body: (TestOrigin, RedisServer, Sidecar, Sidecar) async throws -> Void) async throws {
        let redis = try RedisServer()
        defer { redis.stop() }
        let origin = try await TestOrigin.start(responder)
        let extra = redisSection(redis, timeout: timeout, keyHost: keyHost) + "\nadmin: { listen: \"127.0.0.1:0\" }"
        let a = try await Sidecar.start(origin: origin, extra: extra, routes: routes)
        let b = try await Sidecar.start(origin: origin, extra: extra, routes: routes)
        do {
            try await waitForRedis(a)
            try await waitForRedis(b)
            try await body(origin, redis, a, b)
        } catch {
            await a.stop()
            await b.stop()
            await origin.stop()
            throw error
        }
        await a.stop()
        await b.stop()
        await origin.stop()
    }

    /// L2 writes are asynchronous: wait until the entry's hash exists.
    static func waitForL2(_ redis: RedisServer, keyContaining fragment: String) async throws {
        let stored = await eventually { (try? redis.command("KEYS *\(fragment)*")).map { $0 != "*0" } ?? false }
        #expect(stored, "no L2 key containing \(fragment)")
    }

    @Test func aResponseCachedThroughAIsAnL2HitOnBThenAnL1Hit() async throws {
        try await Self.withTwoInstances({ _ in .ok(Self.item, [("ETag", "\"v1\""), ("Vary", "Accept-Language")]) }) { origin, redis, a, b in
            let first = try await get(a.port, "/api/items/1", [("Accept-Language", "de")])
            #expect(first.xCache == "MISS")
            try await Self.waitForL2(redis, keyContaining: "/api/items/1")

            let onB = try await get(b.port, "/api/items/1", [("Accept-Language", "de")])
            #expect(onB.xCache == "HIT" && onB.text == Self.item)
            #expect(onB.header("Cache-Status")?.hasPrefix("sidecache; hit; ttl=") == true)
            #expect(onB.header("Cache-Status")?.hasSuffix("; tier=l2") == true)
            #expect(onB.header("ETag") == "\"v1\"")
            let again = try await get(b.port, "/api/items/1", [("Accept-Language", "de")])
            #expect(again.xCache == "HIT" && again.header("Cache-Status")?.contains("tier=l2") == false)
            // Another Vary variant is a miss in both tiers.
            #expect(try await get(b.port, "/api/items/1", [("Accept-Language", "fr")]).xCache == "MISS")
            #expect(origin.count("/api/items/1") == 2)
        }
    }

    @Test func aStaleWhileRevalidateRefreshTakesTheCopyAnotherInstanceRefreshedFromL2() async throws {
        let reply: TestOrigin.Responder = { r in
            let fields = [("ETag", "\"v1\""), ("Cache-Control", "max-age=60, stale-while-revalidate=30")]
            return r.headers.first(name: "if-none-match") == "\"v1\"" ? OriginReply(status: .notModified, headers: fields) : .ok(Self.item, fields)
        }
        // The origin-rules route keeps the origin's own lifetime and stale window.
        try await Self.withTwoInstances(reply) { origin, redis, a, b in
            #expect(try await get(a.port, "/origin/7").xCache == "MISS")
            try await Self.waitForL2(redis, keyContaining: "/origin/7")
            #expect(try await get(b.port, "/origin/7").xCache == "HIT")
            // Each instance's clock stands where it was when it started (B's a little later than
            // A's): a lifetime of 60 s keeps that gap from making A's copy stale on B.
            a.clock.advance(seconds: 61)
            b.clock.advance(seconds: 61)
            // Both copies are stale now. A serves its copy stale and refreshes it at the origin.
            #expect(try await get(a.port, "/origin/7").xCache == "STALE")
            let refreshedOnA = await eventually { (try? await get(a.port, "/origin/7").xCache) == "HIT" }
            #expect(refreshedOnA && origin.count("/origin/7") == 2)
            try await Task.sleep(for: .milliseconds(200))  // A's L2 write is asynchronous
            // B serves its own stale copy, and its refresh finds A's in L2: no origin request.
            #expect(try await get(b.port, "/origin/7").xCache == "STALE")
            let refreshedOnB = await eventually { (try? await get(b.port, "/origin/7").xCache) == "HIT" }
            #expect(refreshedOnB)
            #expect(origin.count("/origin/7") == 2)
        }
    }

    /// One GET with the given `Host`, as a client that calls the instance by that name.
    static func getAs(_ port: Int, _ path: String, host: String) async throws -> TestResponse {
        try await offloaded {
            let c = try TestConnection(port: port)
            try c.send("GET \(path) HTTP/1.1\r\nHost: \(host)\r\n\r\n")
            return try c.readResponse()
        }
    }

    @Test func withKeyHostNoneInstancesReachedUnderOtherNamesShareOneEntry() async throws {
        try await Self.withTwoInstances({ r in .ok("item \(r.path)") }, keyHost: "none") { origin, redis, a, b in
            #expect(try await Self.getAs(a.port, "/api/items/5", host: "localhost:\(a.port)").xCache == "MISS")
            try await Self.waitForL2(redis, keyContaining: "/api/items/5")
            let onB = try await Self.getAs(b.port, "/api/items/5", host: "127.0.0.1:\(b.port)")
            #expect(onB.xCache == "HIT" && onB.header("Cache-Status")?.hasSuffix("; tier=l2") == true)
            #expect(try await Self.getAs(a.port, "/api/items/5", host: "API.example").xCache == "HIT")
            #expect(origin.count("/api/items/5") == 1)
        }
    }

    @Test func withKeyHostRequestEachHostHasItsOwnEntry() async throws {
        try await Self.withTwoInstances({ r in .ok("item \(r.path) for \(r.headers.first(name: "host") ?? "?")") }, keyHost: "request") { origin, redis, a, b in
            let first = try await Self.getAs(a.port, "/api/items/6", host: "shop-a.example")
            #expect(first.xCache == "MISS")
            try await Self.waitForL2(redis, keyContaining: "/api/items/6")
            let sameHostOnB = try await Self.getAs(b.port, "/api/items/6", host: "SHOP-A.example")
            #expect(sameHostOnB.xCache == "HIT" && sameHostOnB.text == first.text)
            let otherHost = try await Self.getAs(b.port, "/api/items/6", host: "shop-b.example")
            #expect(otherHost.xCache == "MISS" && otherHost.text == "item /api/items/6 for shop-b.example")
            #expect(origin.count("/api/items/6") == 2)
        }
    }

    /// A purge on B while A's fill waits for the origin: A hears of it through Redis and stores the
    /// response it fetched before the purge neither in its memory nor in Redis.
    @Test func aPurgeOnOneInstanceDuringAFillOnAnotherKeepsTheFillFromBeingStoredAnywhere() async throws {
        let version = NIOLockedValueBox("v1")
        try await Self.withTwoInstances({ _ in
            .init(status: .ok, headers: [("Cache-Control", "max-age=300")], body: version.withLockedValue { $0 }, delay: .milliseconds(800))
        }) { origin, redis, a, b in
            async let racing = get(a.port, "/api/items/9")
            #expect(await eventually { origin.count("/api/items/9") == 1 })  // A's fill is under way
            _ = try await b.runtime.invalidate(tag: "item:9").get()
            version.withLockedValue { $0 = "v2" }
            #expect(try await racing.text == "v1")
            try await Task.sleep(for: .milliseconds(100))  // an L2 write would have landed by now
            #expect(try redis.keys("t:e:*items/9*").isEmpty)
            let onB = try await get(b.port, "/api/items/9")
            #expect(onB.xCache == "MISS" && onB.text == "v2")
            try await Self.waitForL2(redis, keyContaining: "/api/items/9")  // B's write to Redis is in the background
            let onA = try await get(a.port, "/api/items/9")
            #expect(onA.text == "v2")
            #expect(origin.count("/api/items/9") == 2)
        }
    }

    @Test func anUnsafeRequestThroughAEvictsTheEntryFromBsMemoryAndFromRedis() async throws {
        let version = NIOLockedValueBox(1)
        try await Self.withTwoInstances({ r in
            if r.method == .POST { return .ok("saved") }
            return .ok("v\(version.withLockedValue { $0 })")
        }) { origin, redis, a, b in
            #expect(try await get(a.port, "/api/items/7").text == "v1")
            try await Self.waitForL2(redis, keyContaining: "/api/items/7")
            #expect(try await get(b.port, "/api/items/7").text == "v1")  // now in B's L1 too
            #expect(try await get(b.port, "/api/items/7").xCache == "HIT")

            version.withLockedValue { $0 = 2 }
            let write = try await request(a.port, "POST", "/api/items/7", body: "{}")
            #expect(write.status == 200)
            // B heard the invalidation: its L1 and L2 are both empty for the key.
            let fresh = try await eventually({ try await get(b.port, "/api/items/7") }, until: { $0.text == "v2" })
            #expect(fresh.text == "v2" && fresh.xCache == "MISS")
            // A reads its own write at once.
            #expect(try await get(a.port, "/api/items/7").text == "v2")
        }
    }

    @Test func concurrentMissesMakeOneRedisLookupAndOneUpstreamRequest() async throws {
        try await Self.withTwoInstances({ _ in OriginReply(status: .ok, body: Self.item, delay: .milliseconds(150)) }) { origin, redis, a, _ in
            _ = try redis.command("CONFIG RESETSTAT")
            let results = try await withThrowingTaskGroup(of: String?.self) { group in
                for _ in 0..<8 { group.addTask { try await get(a.port, "/api/items/9").header("Cache-Status") } }
                var out: [String?] = []
                for try await x in group { out.append(x) }
                return out
            }
            #expect(results.filter { $0?.contains("collapsed") == true }.count == 7)
            #expect(origin.count("/api/items/9") == 1)
            let hgetall = try Self.commandCount(redis, "hgetall")
            let stats = try redis.info("commandstats")
            #expect(hgetall == 1, "\(stats)")
        }
    }

    static func commandCount(_ redis: RedisServer, _ name: String) throws -> Int {
        // INFO is a bulk reply: read it over the raw client and find "cmdstat_<name>:calls=N,".
        let info = try redis.info("commandstats")
        let prefix = "cmdstat_\(name):calls="
        guard let line = info.split(whereSeparator: \.isNewline).first(where: { $0.hasPrefix(prefix) }),
              let calls = line.dropFirst(prefix.count).split(separator: ",").first else { return 0 }
        return Int(calls) ?? 0
    }

    @Test func anEntryWithAnotherEncodingVersionIsAMissAndIsDeleted() async throws {
        try await Self.withTwoInstances({ _ in .ok(Self.item) }) { origin, redis, a, b in
            _ = try await get(a.port, "/api/items/5")
            try await Self.waitForL2(redis, keyContaining: "/api/items/5")
            // Rewrite the stored value's version byte (offset 3, after "SCE") to 9.
            let key = try #require(redis.keys("*e:*/api/items/5*").first)
            try redis.rewriteHashValues(key) { value in
                var bytes = value
                bytes[3] = 9
                return bytes
            }
            let onB = try await get(b.port, "/api/items/5")
            #expect(onB.xCache == "MISS" && onB.text == Self.item)
            #expect(origin.count("/api/items/5") == 2)
            let log = b.logLines.joined(separator: "\n")
            #expect(log.contains("discarded an undecodable L2 entry") && log.contains("version 9"))
            // The bad value was deleted (B's own fill then wrote a good one in its place).
            let versions = try await eventually({
                try redis.call("HVALS", key).array?.compactMap { $0.bytes?.getInteger(at: 3, as: UInt8.self) } ?? []
            }, until: { !$0.contains(9) })
            #expect(!versions.contains(9))
        }
    }

    @Test func killingRedisMidStreamFailsNoRequestAndL2ComesBack() async throws {
        try await Self.withTwoInstances({ r in .ok("body of \(r.path)") }) { origin, redis, a, b in
            var failures = 0
            for i in 0..<60 {
                if i == 20 { redis.kill() }
                // Repeated paths (L1 hits) and new ones (misses that ask Redis first).
                let path = i.isMultiple(of: 3) ? "/plain/\(i)" : "/plain/\(i % 10)"
                let response = try await get(i.isMultiple(of: 2) ? a.port : b.port, path)
                if response.status != 200 || response.text != "body of \(path)" { failures += 1 }
            }
            #expect(failures == 0)
            #expect((a.runtime.redisStatus?.errors ?? 0) + (b.runtime.redisStatus?.errors ?? 0) > 0)

            try redis.start()
            try await Self.waitForRedis(a)
            try await Self.waitForRedis(b)
            let fresh = try await get(a.port, "/plain/new")
            #expect(fresh.xCache == "MISS")
            try await Self.waitForL2(redis, keyContaining: "/plain/new")
            let l2 = try await get(b.port, "/plain/new")
            #expect(l2.header("Cache-Status")?.contains("tier=l2") == true)
            #expect(origin.count("/plain/new") == 1)
            let log = b.logLines.joined(separator: "\n")
            #expect(log.contains("cleared the memory cache"))
        }
    }

    @Test func withRedisDownAtStartRequestsGoOnWithoutDelay() async throws {
        let reserved = try RefusingPort()
        let port = reserved.port
        try await withProxy(extra: "cache:\n  redis: { url: \"redis://127.0.0.1:\(port)\", timeout: 500ms }", { _ in .ok(Self.item) }) { origin, proxy in
            let started = ContinuousClock.now
            #expect(try await get(proxy.port, "/api/items/1").xCache == "MISS")
            #expect(try await get(proxy.port, "/api/items/1").xCache == "HIT")
            // Two requests, each waiting at most one Redis timeout (500 ms) and none for the
            // reconnect attempts; the slack is for a loaded machine (2.1 s seen with a build beside it).
            #expect(ContinuousClock.now - started < .milliseconds(2500))
            #expect(proxy.runtime.redisStatus?.connected == false)
            // Started late, Redis is picked up by itself.
            reserved.release()
            let redis = try RedisServer(port: port)
            defer { redis.stop() }
            try await Self.waitForRedis(proxy)
            _ = try await get(proxy.port, "/api/items/2")
            try await Self.waitForL2(redis, keyContaining: "/api/items/2")
        }
    }

    @Test func aReloadAddsAndRemovesTheRedisTier() async throws {
        let redis = try RedisServer()
        defer { redis.stop() }
        try await withProxy({ _ in .ok(Self.item) }) { origin, proxy in
            #expect(proxy.runtime.redisStatus == nil)
            let original = try String(contentsOfFile: proxy.configPath, encoding: .utf8)
            let withRedis = original.replacingOccurrences(of: "logging:", with: Self.redisSection(redis) + "\nlogging:")
            try withRedis.write(toFile: proxy.configPath, atomically: true, encoding: .utf8)
            guard case .success(let changes) = proxy.runtime.reload() else {
                Issue.record("reload failed")
                return
            }
            #expect(changes.changedSections.contains("cache"))
            try await Self.waitForRedis(proxy)
            _ = try await get(proxy.port, "/api/items/3")
            try await Self.waitForL2(redis, keyContaining: "/api/items/3")
            try original.write(toFile: proxy.configPath, atomically: true, encoding: .utf8)
            _ = proxy.runtime.reload()
            #expect(proxy.runtime.redisStatus == nil)
            #expect(try await get(proxy.port, "/api/items/3").xCache == "HIT")
        }
    }

    @Test func aSlowRedisCostsAtMostItsTimeout() async throws {
        let redis = try RedisServer(arguments: ["--enable-debug-command", "yes"])
        defer { redis.stop() }
        try await withProxy(extra: "cache:\n  redis: { url: \"\(redis.url)\", timeout: 100ms }", { r in .ok("body of \(r.path)") }) { origin, proxy in
            try await Self.waitForRedis(proxy)
            let sleeper = Thread { _ = try? redis.call("DEBUG", "SLEEP", "3") }
            sleeper.start()
            try await Task.sleep(for: .milliseconds(100))
            let started = ContinuousClock.now
            for i in 0..<5 {
                let response = try await get(proxy.port, "/plain/slow-\(i)")
                #expect(response.status == 200 && response.text == "body of /plain/slow-\(i)")
            }
            // Five misses while Redis sleeps 3 s: each waited at most the 100 ms timeout. Waiting for
            // Redis would take until it wakes, 2.9 s after `started` (2.65 s seen under load).
            #expect(ContinuousClock.now - started < .milliseconds(2850))
            #expect((proxy.runtime.redisStatus?.errors ?? 0) > 0)
        }
    }

    @Test func aPurgeByTagOnOneInstanceRemovesWhatAnotherStored() async throws {
        let version = NIOLockedValueBox(1)
        try await Self.withTwoInstances({ r in .ok("v\(version.withLockedValue { $0 })", [("Surrogate-Key", "catalog")]) }) { origin, redis, a, b in
            _ = try await get(a.port, "/api/items/11")
            _ = try await get(a.port, "/plain/page")
            try await Self.waitForL2(redis, keyContaining: "/plain/page")
            #expect(try await get(a.port, "/api/items/11").xCache == "HIT")
            let tagSets = try redis.keys("t:t:item:11").count + redis.keys("t:t:catalog").count
            #expect(tagSets == 2)

            version.withLockedValue { $0 = 2 }
            let purged = try await b.runtime.invalidate(tag: "item:11").get()  // a route template tag, purged from B
            #expect(purged == ProxyRuntime.PurgeCount(memory: 0, redis: 1))  // B never held it; Redis did
            #expect(try await Self.answer(a.port, "/api/items/11", becomes: "v2").text == "v2")
            #expect(try await get(a.port, "/plain/page").text == "v1")  // other tags untouched

            let catalog = try await b.runtime.invalidate(tag: "catalog").get()  // an origin Surrogate-Key
            #expect(catalog.redis == 2)  // /api/items/11 (stored again) and /plain/page
            #expect(try await Self.answer(a.port, "/plain/page", becomes: "v2").text == "v2")
        }
    }

    /// Polls `path` on `port` until it answers `text` (an invalidation message is asynchronous).
    static func answer(_ port: Int, _ path: String, becomes text: String) async throws -> TestResponse {
        try await TestSupport.eventually({ try await get(port, path) }, until: { $0.text == text })
    }

    @Test func aPatternPurgeOnOneInstanceReachesL2AndTheOtherInstance() async throws {
        let version = NIOLockedValueBox(1)
        try await Self.withTwoInstances({ _ in .ok("v\(version.withLockedValue { $0 })") }) { _, redis, a, b in
            for id in 1...3 { _ = try await get(a.port, "/api/items/\(id)") }
            _ = try await get(a.port, "/plain/keep")
            try await Self.waitForL2(redis, keyContaining: "/plain/keep")
            try await Self.waitForL2(redis, keyContaining: "/api/items/3")
            version.withLockedValue { $0 = 2 }
            let purged = try await b.runtime.invalidate(pattern: PurgePattern(glob: "/api/items/*")).get()
            #expect(purged == ProxyRuntime.PurgeCount(memory: 0, redis: 3))
            #expect(try await Self.answer(a.port, "/api/items/2", becomes: "v2").text == "v2")
            #expect(try await get(b.port, "/api/items/3").text == "v2")
            #expect(try await get(a.port, "/plain/keep").text == "v1")
            let regex = try await a.runtime.invalidate(pattern: PurgePattern(regex: "^/plain/k")).get()
            #expect(regex == ProxyRuntime.PurgeCount(memory: 1, redis: 1))
            #expect(try await get(b.port, "/plain/keep").text == "v2")
        }
    }

    @Test func anAdminPurgeOnOneInstanceReachesTheOtherThroughRedis() async throws {
        let version = NIOLockedValueBox(1)
        try await Self.withTwoInstances({ _ in .ok("v\(version.withLockedValue { $0 })") }) { _, redis, a, b in
            _ = try await get(a.port, "/api/items/21")
            _ = try await get(b.port, "/api/items/21")  // now in A's L1, B's L1 and Redis
            try await Self.waitForL2(redis, keyContaining: "/api/items/21")
            #expect(try await get(b.port, "/api/items/21").xCache == "HIT")
            version.withLockedValue { $0 = 2 }
            let purge = try await request(try #require(a.adminPort), "POST", "/purge", body: #"{"url": "/api/items/21"}"#)
            let removed = try #require(try AdminTests.json(purge)["removed"] as? [String: Any])
            #expect(purge.status == 200 && removed["memory"] as? Int == 1 && removed["redis"] as? Int == 1)
            #expect(try await Self.answer(b.port, "/api/items/21", becomes: "v2").text == "v2")
        }
    }

    @Test func aSoftPurgeKeepsEntriesServableStaleOnEveryInstance() async throws {
        let version = NIOLockedValueBox(1)
        try await Self.withTwoInstances({ _ in .ok("v\(version.withLockedValue { $0 })") }) { origin, redis, a, b in
            _ = try await get(a.port, "/api/items/7")
            _ = try await get(a.port, "/api/items/8")
            try await Self.waitForL2(redis, keyContaining: "/api/items/8")
            version.withLockedValue { $0 = 2 }
            let purged = try await a.runtime.invalidate(tag: "items", soft: true).get()
            #expect(purged == ProxyRuntime.PurgeCount(memory: 2, redis: 2))
            // B never held them: it reads the marked copy from L2 and serves it stale while refreshing.
            let fromL2 = try await get(b.port, "/api/items/7")
            #expect(fromL2.xCache == "STALE" && fromL2.text == "v1")
            #expect(fromL2.header("Cache-Status")?.contains("tier=l2") == true)
            #expect(try await Self.answer(b.port, "/api/items/7", becomes: "v2").xCache == "HIT")
            // A marked its own copy: stale once, then refreshed.
            let local = try await get(a.port, "/api/items/8")
            #expect(local.xCache == "STALE" && local.text == "v1")
            #expect(try await Self.answer(a.port, "/api/items/8", becomes: "v2").text == "v2")
            #expect(origin.count("/api/items/8") == 2)
        }
    }

    @Test func aTagWithMoreEntriesThanOneBatchIsPurgedCompletely() async throws {
        try await Self.withTwoInstances({ _ in .ok("x", [("Surrogate-Key", "bulk")]) }) { _, redis, a, b in
            let count = 1_100  // more than two batches of 500
            try await withThrowingTaskGroup(of: Void.self) { group in
                for worker in 0..<8 {
                    group.addTask {
                        for i in stride(from: worker, to: count, by: 8) { _ = try await get(a.port, "/bulk/\(i)") }
                    }
                }
                try await group.waitForAll()
            }
            _ = try await eventually { try redis.call("SCARD", "t:t:bulk").integer == Int64(count) }
            let purged = try await b.runtime.invalidate(tag: "bulk").get()
            #expect(purged.redis == count)
            #expect(try redis.keys("t:e:*").isEmpty)
            #expect(try redis.keys("t:t:bulk").isEmpty)
            #expect(try await eventually { try await get(a.port, "/bulk/99").xCache == "MISS" })
        }
    }

    @Test func redisAnsweringErrorsCostsNoClientRequest() async throws {
        try await Self.withTwoInstances({ r in .ok("body of \(r.path)") }) { origin, redis, a, _ in
            // Out of memory: every write is refused with an error reply.
            _ = try redis.call("CONFIG", "SET", "maxmemory-policy", "noeviction")
            _ = try redis.call("CONFIG", "SET", "maxmemory", "1")
            // A key of the wrong type: reading it is an error reply too.
            _ = try redis.call("SET", "t:e:127.0.0.1:\(a.port)/plain/wrongtype", "not a hash")
            for path in ["/plain/oom-1", "/plain/oom-2", "/plain/wrongtype"] {
                let first = try await get(a.port, path)
                #expect(first.status == 200 && first.text == "body of \(path)" && first.xCache == "MISS")
                #expect(try await get(a.port, path).xCache == "HIT")  // L1 still works
            }
            _ = await eventually { (a.runtime.redisStatus?.errors ?? 0) > 0 }
            let errors = a.runtime.redisStatus?.errors ?? 0
            #expect(errors > 0)
            let metrics = AdminTests.samples(String(decoding: a.runtime.renderMetrics(), as: UTF8.self))
            #expect(AdminTests.value(metrics, "sidecache_redis_errors_total") == Double(errors))
            #expect(AdminTests.value(metrics, "sidecache_redis_up") == 1)
            #expect(origin.count("/plain/oom-1") == 1)
        }
    }
}
