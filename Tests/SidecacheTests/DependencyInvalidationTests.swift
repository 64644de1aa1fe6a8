import NIOConcurrencyHelpers
import NIOHTTP1
import Testing

/// A write route's `invalidates` and the origin's `X-Invalidate-Tags`, over real sockets.
@Suite struct DependencyInvalidationTests {
    static let routes = """
    routes:
      - name: items
        match: { methods: [GET, HEAD], path: "/api/items/{id}" }
        ttl: 5m
        tags: ["item:{id}"]
      - name: list
        match: { methods: [GET, HEAD], path: "/api/list" }
        ttl: 5m
        tags: ["items-list"]
      - name: search
        match: { methods: [GET, HEAD], path: "/api/search" }
        ttl: 5m
      - name: item-writes
        match: { methods: [POST, PUT, PATCH, DELETE], path: "/api/items/{id}" }
        invalidates:
          tags: ["item:{id}", "items-list"]
          patterns: ["/api/search*"]
      - name: default
        match: { path: "/*" }
        ttl: 5m
    """

    static let reads = ["/api/items/1", "/api/items/2", "/api/list", "/api/search?q=a", "/other/page"]

    static func fill(_ port: Int) async throws {
        for path in reads { _ = try await get(port, path) }
        for path in reads { #expect(try await get(port, path).xCache == "HIT", "\(path)") }
    }

    @Test func aSuccessfulWritePurgesWhatItsRouteNamesBeforeItsResponseEnds() async throws {
        let writeStatus = NIOLockedValueBox(HTTPResponseStatus.ok)
        try await withProxy(routes: Self.routes, { r in
            r.method == .GET ? .ok("read") : OriginReply(status: writeStatus.withLockedValue { $0 }, body: "written")
        }) { _, proxy in
            try await Self.fill(proxy.port)
            // A failed write invalidates nothing.
            writeStatus.withLockedValue { $0 = .internalServerError }
            #expect(try await request(proxy.port, "PUT", "/api/items/1", body: "{}").status == 500)
            for path in Self.reads { #expect(try await get(proxy.port, path).xCache == "HIT", "\(path)") }

            writeStatus.withLockedValue { $0 = .ok }
            #expect(try await request(proxy.port, "PUT", "/api/items/1", body: "{}").status == 200)
            // Read at once after the write's response: already gone.
            #expect(try await get(proxy.port, "/api/items/1").xCache == "MISS")
            #expect(try await get(proxy.port, "/api/list").xCache == "MISS")
            #expect(try await get(proxy.port, "/api/search?q=a").xCache == "MISS")
            #expect(try await get(proxy.port, "/api/items/2").xCache == "HIT")
            #expect(try await get(proxy.port, "/other/page").xCache == "HIT")
        }
    }

    @Test func theOriginNamesTagsToPurgeInAHeaderTheClientNeverSees() async throws {
        try await withProxy(routes: Self.routes, { r in
            r.method == .GET ? .ok("read") : .ok("done", [("X-Invalidate-Tags", "item:2, items-list")])
        }) { _, proxy in
            try await Self.fill(proxy.port)
            let write = try await request(proxy.port, "POST", "/other/action", body: "{}")
            #expect(write.status == 200 && write.header("X-Invalidate-Tags") == nil)
            #expect(try await get(proxy.port, "/api/items/2").xCache == "MISS")
            #expect(try await get(proxy.port, "/api/list").xCache == "MISS")
            #expect(try await get(proxy.port, "/api/items/1").xCache == "HIT")
            #expect(try await get(proxy.port, "/api/search?q=a").xCache == "HIT")
        }
    }

    @Test func aReadNeverPurgesAndNeverShowsTheHeader() async throws {
        try await withProxy(routes: Self.routes, { r in
            r.path == "/other/page" ? .ok("x", [("X-Invalidate-Tags", "item:1")]) : .ok("read")
        }) { _, proxy in
            _ = try await get(proxy.port, "/api/items/1")
            let page = try await get(proxy.port, "/other/page")
            #expect(page.header("X-Invalidate-Tags") == nil)
            #expect(try await get(proxy.port, "/other/page").header("X-Invalidate-Tags") == nil)  // nor from the cache
            #expect(try await get(proxy.port, "/api/items/1").xCache == "HIT")
        }
    }
}
