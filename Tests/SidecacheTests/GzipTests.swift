import HTTPCaching
import NIOCore
import NIOHTTP1
@testable import Sidecache
import Testing

/// gzip over real sockets: one stored entry served to clients with and without gzip.
@Suite struct GzipTests {
    static let routes = """
    routes:
      - name: cached
        match: { path: "/c/*" }
        ttl: 5m
      - name: plain
        match: { path: "/off/*" }
        ttl: 5m
        compression: { gzip: false }
      - name: live
        match: { path: "/live/*" }
        cache: false
    """

    static let json = String(repeating: #"{"id": 1, "name": "an item with a name"},"#, count: 120)  // ~5 KB
    static let gzip = [("Accept-Encoding", "gzip, deflate, br")]

    static func decoded(_ response: TestResponse) throws -> String {
        String(buffer: try ContentCoding.gunzip(ByteBuffer(bytes: response.body), limit: 1 << 22))
    }

    static func origin(_ r: OriginRequest) -> OriginReply {
        .ok(json, [("Content-Type", "application/json; charset=utf-8"), ("ETag", "\"v1\"")])
    }

    @Test func oneEntryServesGzipAndIdentityClients() async throws {
        try await withProxy(routes: Self.routes, Self.origin) { origin, proxy in
            let zipped = try await get(proxy.port, "/c/1", Self.gzip)
            #expect(zipped.xCache == "MISS" && zipped.header("Content-Encoding") == "gzip")
            #expect(try Self.decoded(zipped) == Self.json)
            #expect(zipped.header("Content-Length") == String(zipped.body.count) && zipped.body.count < Self.json.utf8.count / 4)
            #expect(zipped.header("ETag") == "\"v1-gzip\"")
            #expect(zipped.headers("Vary").joined(separator: ",").contains("Accept-Encoding"))
            let plain = try await get(proxy.port, "/c/1")
            #expect(plain.xCache == "HIT" && plain.header("Content-Encoding") == nil && plain.text == Self.json)
            #expect(plain.header("ETag") == "\"v1\"" && plain.header("Content-Length") == String(Self.json.utf8.count))
            #expect(plain.headers("Vary").joined(separator: ",").contains("Accept-Encoding"))
            let again = try await get(proxy.port, "/c/1", Self.gzip)
            #expect(again.xCache == "HIT" && again.body == zipped.body)
            #expect(origin.count("/c/1") == 1)
            // The fill asked the origin for the one coding sidecache can serve to everyone.
            #expect(origin.requests.first?.headers.first(name: "accept-encoding") == "gzip")
        }
    }

    @Test func qValuesDecide() async throws {
        try await withProxy(routes: Self.routes, Self.origin) { _, proxy in
            _ = try await get(proxy.port, "/c/q")
            #expect(try await get(proxy.port, "/c/q", [("Accept-Encoding", "gzip;q=0, deflate")]).header("Content-Encoding") == nil)
            #expect(try await get(proxy.port, "/c/q", [("Accept-Encoding", "br;q=1, *;q=0.1")]).header("Content-Encoding") == "gzip")
            #expect(try await get(proxy.port, "/c/q", [("Accept-Encoding", "*;q=0")]).header("Content-Encoding") == nil)
        }
    }

    @Test func theGzipCopyIsMadeWhenAGzipClientFirstAsksAndKeptInTheEntry() async throws {
        try await withProxy(routes: Self.routes, Self.origin) { origin, proxy in
            let plain = try await get(proxy.port, "/c/lazy")
            #expect(plain.xCache == "MISS" && plain.header("Content-Encoding") == nil)
            #expect(plain.headers("Vary").joined(separator: ",").contains("Accept-Encoding"))
            let identityOnly = proxy.runtime.cacheStatistics.bytes
            let zipped = try await get(proxy.port, "/c/lazy", Self.gzip)
            #expect(try zipped.xCache == "HIT" && zipped.header("Content-Encoding") == "gzip" && Self.decoded(zipped) == Self.json)
            #expect(zipped.header("ETag") == "\"v1-gzip\"" && zipped.header("Content-Length") == String(zipped.body.count))
            // The copy now counts in the cache's bytes, once.
            let withCopy = proxy.runtime.cacheStatistics.bytes
            #expect(withCopy > identityOnly + zipped.body.count / 2 && proxy.runtime.cacheStatistics.entries == 1)
            #expect(try await get(proxy.port, "/c/lazy", Self.gzip).body == zipped.body)
            #expect(proxy.runtime.cacheStatistics.bytes == withCopy)
            #expect(try await get(proxy.port, "/c/lazy").text == Self.json)
            #expect(origin.count("/c/lazy") == 1)
        }
    }

    @Test func aBodyGzipCannotShrinkIsServedAsItIsToGzipClients() async throws {
        var rng = SystemRandomNumberGenerator()
        let noise = (0..<4096).map { _ in UInt8.random(in: 0...255, using: &rng) }
        try await withProxy(routes: Self.routes, { _ in
            OriginReply(headers: [("Content-Type", "application/json")], bytes: noise)
        }) { _, proxy in
            let first = try await get(proxy.port, "/c/noise", Self.gzip)
            #expect(first.header("Content-Encoding") == nil && first.body == noise)
            #expect(first.headers("Vary").joined(separator: ",").contains("Accept-Encoding"))
            let stored = proxy.runtime.cacheStatistics.bytes
            let again = try await get(proxy.port, "/c/noise", Self.gzip)
            #expect(again.xCache == "HIT" && again.header("Content-Encoding") == nil && again.body == noise)
            #expect(proxy.runtime.cacheStatistics.bytes == stored)
        }
    }

    @Test func smallBodiesIneligibleTypesAndRoutesWithGzipOffAreUntouched() async throws {
        try await withProxy(routes: Self.routes, { r in
            switch r.path {
            case "/c/small": .ok(#"{"a":1}"#, [("Content-Type", "application/json")])
            case "/c/png": .ok(String(repeating: "P", count: 5000), [("Content-Type", "image/png")])
            default: .ok(Self.json, [("Content-Type", "application/json")])
            }
        }) { _, proxy in
            for path in ["/c/small", "/c/png", "/off/x"] {
                for _ in 0..<2 {
                    let response = try await get(proxy.port, path, Self.gzip)
                    #expect(response.header("Content-Encoding") == nil, "\(path)")
                    #expect(response.header("Vary") == nil, "\(path)")
                }
            }
        }
    }

    @Test func anOriginGzippedBodyIsStoredAsItCameAndDecodedForClientsWithoutGzip() async throws {
        let body = ByteBuffer(string: Self.json)
        let gzipped = try ContentCoding.gzip(body, level: 9)
        try await withProxy(routes: Self.routes, { r in
            r.headers.first(name: "accept-encoding") == "gzip"
                ? OriginReply(headers: [("Content-Type", "application/json"), ("Content-Encoding", "gzip"), ("ETag", "\"z\"")],
                              bytes: Array(gzipped.readableBytesView))
                : .ok("identity from origin", [("Content-Type", "application/json")])
        }) { origin, proxy in
            let zipped = try await get(proxy.port, "/c/z", Self.gzip)
            #expect(zipped.header("Content-Encoding") == "gzip" && zipped.body == Array(gzipped.readableBytesView))
            let plain = try await get(proxy.port, "/c/z")
            #expect(plain.xCache == "HIT" && plain.header("Content-Encoding") == nil && plain.text == Self.json)
            #expect(plain.header("Content-Length") == String(Self.json.utf8.count) && plain.header("ETag") == "\"z-identity\"")
            let head = try await request(proxy.port, "HEAD", "/c/z")
            #expect(head.header("Content-Length") == String(Self.json.utf8.count) && head.body.isEmpty)
            #expect(origin.count("/c/z") == 1)
        }
    }

    @Test func headAnd304AreRightForEachCoding() async throws {
        try await withProxy(routes: Self.routes, Self.origin) { _, proxy in
            let full = try await get(proxy.port, "/c/h", Self.gzip)
            let head = try await request(proxy.port, "HEAD", "/c/h", headers: Self.gzip)
            #expect(head.status == 200 && head.body.isEmpty)
            #expect(head.header("Content-Length") == String(full.body.count) && head.header("Content-Encoding") == "gzip")
            let plainHead = try await request(proxy.port, "HEAD", "/c/h")
            #expect(plainHead.header("Content-Length") == String(Self.json.utf8.count) && plainHead.header("Content-Encoding") == nil)

            let zippedMatch = try await get(proxy.port, "/c/h", Self.gzip + [("If-None-Match", "\"v1-gzip\"")])
            #expect(zippedMatch.status == 304 && zippedMatch.header("ETag") == "\"v1-gzip\"")
            // The identity tag does not validate the gzip copy, nor the other way round.
            #expect(try await get(proxy.port, "/c/h", Self.gzip + [("If-None-Match", "\"v1\"")]).status == 200)
            #expect(try await get(proxy.port, "/c/h", [("If-None-Match", "\"v1-gzip\"")]).status == 200)
            let plainMatch = try await get(proxy.port, "/c/h", [("If-None-Match", "\"v1\"")])
            #expect(plainMatch.status == 304 && plainMatch.header("ETag") == "\"v1\"")
        }
    }

    @Test func anUncachedStreamedResponseIsCompressedOnTheFly() async throws {
        try await withProxy(routes: Self.routes, { _ in
            OriginReply(headers: [("Content-Type", "text/plain")], streamBytes: 300_000)
        }) { _, proxy in
            let zipped = try await get(proxy.port, "/live/stream", Self.gzip)
            #expect(zipped.status == 200 && zipped.header("Content-Encoding") == "gzip" && zipped.header("Content-Length") == nil)
            #expect(try Self.decoded(zipped) == String(repeating: "x", count: 300_000))
            #expect(zipped.body.count < 10_000)
            let plain = try await get(proxy.port, "/live/stream")
            #expect(plain.header("Content-Encoding") == nil && plain.body.count == 300_000)
        }
    }

    /// Issue 20 item 7: a coding sidecache does not transform (br here) is stored as it came, as a
    /// variant served only to clients that accept it; the others are not given it from the cache.
    @Test func otherCodingsAreStoredForTheClientsThatAcceptThem() async throws {
        let br: [UInt8] = [0x0b, 0x02, 0x80, 0x68, 0x69, 0x03]
        try await withProxy(routes: Self.routes, { _ in
            OriginReply(headers: [("Content-Type", "application/json"), ("Content-Encoding", "br"), ("ETag", "\"b1\"")], bytes: br)
        }) { origin, proxy in
            let first = try await get(proxy.port, "/c/br", [("Accept-Encoding", "gzip, br")])
            #expect(first.header("Content-Encoding") == "br" && first.body == br && first.xCache == "MISS")
            #expect(first.header("Vary")?.lowercased().contains("accept-encoding") == true)
            let second = try await get(proxy.port, "/c/br", [("Accept-Encoding", "br;q=0.5, *;q=0")])
            #expect(second.xCache == "HIT" && second.body == br && second.header("Content-Encoding") == "br")
            // A client that refuses br is not served the stored br copy (the origin is asked again).
            // Nor is what the origin then sends it (br anyway) stored for such clients.
            for _ in 0..<2 {
                let refusing = try await get(proxy.port, "/c/br", [("Accept-Encoding", "gzip, br;q=0")])
                #expect(refusing.xCache == "MISS" && refusing.header("Cache-Status")?.contains("detail=content-encoding") == true)
                #expect(try await get(proxy.port, "/c/br").xCache == "MISS")
            }
            #expect(origin.count("/c/br") == 5)
            #expect(try await get(proxy.port, "/c/br", [("Accept-Encoding", "br")]).xCache == "HIT")
            // On a route without gzip the same holds for an origin that forgets Vary: Accept-Encoding.
            #expect(try await get(proxy.port, "/off/br", [("Accept-Encoding", "br")]).xCache == "MISS")
            #expect(try await get(proxy.port, "/off/br", [("Accept-Encoding", "gzip, br")]).xCache == "HIT")
            #expect(try await get(proxy.port, "/off/br").xCache == "MISS")
            // A 304 revalidation keeps the variant (If-None-Match from a br client, answered from it).
            let conditional = try await get(proxy.port, "/c/br", [("Accept-Encoding", "br"), ("If-None-Match", "\"b1\"")])
            #expect(conditional.status == 304 && conditional.xCache == "HIT")
        }
    }
}

extension GzipTests {
    /// A hit that is not a plain HTTP/1.1 200 (an HTTP/1.0 client, a 304) is built from the header
    /// list parsed back from the entry's encoded heads: both codings keep their own fields.
    @Test func http10ClientsAndNotModifiedAnswersUseTheStoredFieldsOfEachCoding() async throws {
        try await withProxy(routes: Self.routes, Self.origin) { origin, proxy in
            _ = try await get(proxy.port, "/c/10")
            let (plain, zipped) = try await offloaded { () -> (TestResponse, TestResponse) in
                let a = try TestConnection(port: proxy.port)
                try a.send("GET /c/10 HTTP/1.0\r\nHost: test.local\r\n\r\n")
                let plain = try a.readResponse()
                let b = try TestConnection(port: proxy.port)
                try b.send("GET /c/10 HTTP/1.0\r\nHost: test.local\r\nAccept-Encoding: gzip\r\n\r\n")
                return (plain, try b.readResponse())
            }
            #expect(plain.xCache == "HIT" && plain.text == Self.json && plain.header("Content-Encoding") == nil)
            #expect(plain.header("Content-Type") == "application/json; charset=utf-8" && plain.header("ETag") == "\"v1\"")
            #expect(plain.header("Content-Length") == String(Self.json.utf8.count) && plain.header("Age") != nil)
            #expect(zipped.xCache == "HIT" && zipped.header("Content-Encoding") == "gzip" && zipped.header("ETag") == "\"v1-gzip\"")
            #expect(try Self.decoded(zipped) == Self.json)
            #expect(zipped.header("Content-Length") == String(zipped.body.count))
            let notModified = try await get(proxy.port, "/c/10", Self.gzip + [("If-None-Match", "\"v1-gzip\"")])
            #expect(notModified.status == 304 && notModified.body.isEmpty)
            #expect(notModified.header("ETag") == "\"v1-gzip\"" && notModified.header("Content-Type") == nil)
            #expect(origin.count("/c/10") == 1)
        }
    }
}

@Suite struct GzipOnDemandTests {
    static let now = CacheInstant(seconds: 1_800_000_000)
    static let terms = StorageTerms(freshnessLifetime: .seconds(60), staleWhileRevalidate: .zero, staleIfError: .zero,
                                    revalidateAlways: false, mayServeStale: true)

    static func pending(_ body: ByteBuffer) -> CachedResponse {
        CachedResponse(status: .ok, headers: HTTPHeaders([("Content-Length", "\(body.readableBytes)")]), body: body, requestTime: now,
                       responseTime: now, terms: terms, varyNames: [], varyValues: [], tags: [], gzipPending: true)
    }

    @Test func aCopyThatWouldMakeTheEntryTooLargeIsNotKept() throws {
        let store = MemoryStore(limits: .init(maxBytes: 10_000_000, maxObjectBytes: 200_000))
        var rng = SystemRandomNumberGenerator()
        let letters = (0..<190_000).map { _ in UInt8.random(in: 0x61...0x7A, using: &rng) }  // gzips to about 60%
        let entry = Self.pending(ByteBuffer(bytes: letters))
        let key = CacheKeyPolicy().key(host: "h", uri: "/big", headers: [:])
        #expect(store.store(entry, for: key))
        let served = GzipOnDemand.complete(entry, key: key, level: 1, store: store)
        #expect(served.gzip == nil && !served.gzipPending)
        let stored = try #require(store.lookup(key, requestHeaders: [:], now: Self.now))
        #expect(stored === served)

        let small = Self.pending(ByteBuffer(bytes: Array(letters.prefix(20_000))))
        let smallKey = CacheKeyPolicy().key(host: "h", uri: "/small", headers: [:])
        store.store(small, for: smallKey)
        let zipped = GzipOnDemand.complete(small, key: smallKey, level: 1, store: store)
        #expect(zipped.gzip != nil && store.lookup(smallKey, requestHeaders: [:], now: Self.now) === zipped)
    }

    @Test func aPendingCopyIsCompressedOnceForEveryoneWhoAsks() throws {
        let store = MemoryStore(limits: .init(maxBytes: 10_000_000, maxObjectBytes: 200_000))
        let entry = Self.pending(ByteBuffer(string: String(repeating: "{\"a\": 1}", count: 500)))
        let key = CacheKeyPolicy().key(host: "h", uri: "/once", headers: [:])
        store.store(entry, for: key)
        func address(_ buffer: ByteBuffer?) -> UnsafeRawPointer? { buffer?.withUnsafeReadableBytes { $0.baseAddress } }
        let first = GzipOnDemand.complete(entry, key: key, level: 6, store: store)
        // A coalesced follower still holding the pending entry gets the same compressed bytes.
        let second = GzipOnDemand.complete(entry, key: key, level: 6, store: store)
        #expect(first.gzip != nil && address(first.gzip?.body) == address(second.gzip?.body))
        #expect(store.lookup(key, requestHeaders: [:], now: Self.now) === first)
        // So does a soft-purged copy of it.
        let purged = entry.expired(at: Self.now + .seconds(1))
        #expect(purged !== entry && address(purged.pendingGzipBody(level: 6)) == address(first.gzip?.body))
    }
}
