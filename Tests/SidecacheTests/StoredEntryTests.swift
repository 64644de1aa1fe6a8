import HTTPCaching
import NIOCore
import NIOHTTP1
@testable import Sidecache
import SidecacheConfig
import Testing

/// A fetched response made into an entry, and a 304 merged into one: values, no socket.
@Suite struct StoredEntryTests {
    static let t0 = CacheInstant(seconds: 1_800_000_000)

    static func route(_ path: String, gzip: Bool = true) throws -> CompiledRoute {
        let yaml = """
        upstream: { url: "http://127.0.0.1:1" }
        routes:
          - name: items
            match: { path: "/items/{id}" }
            ttl: 1m
            tags: ["item:{id}"]
            compression: { gzip: \(gzip) }
        """
        let snapshot = try ConfigSnapshot(configuration: ConfigParser.parse(yaml: yaml, file: "t.yaml"), version: 1, sourcePath: "t.yaml")
        return try #require(snapshot.route(method: .GET, path: Substring(path)))
    }

    static func terms(_ headers: HTTPHeaders, route: CompiledRoute) throws -> StorageTerms {
        let decision = StorageRules.evaluate(requestMethod: .GET, requestHeaders: [:], status: .ok, responseHeaders: headers,
                                             policy: route.policy, responseTime: t0)
        guard case .store(let terms) = decision else { throw CancellationError() }
        return terms
    }

    @Test func anEntryHasTheClientsFramingAndNoneOfTheHopByHopOrWithheldFields() throws {
        let route = try Self.route("/items/7")
        let headers = HTTPHeaders([
            ("Content-Type", "application/json"), ("Transfer-Encoding", "chunked"), ("Connection", "keep-alive"), ("Age", "3"),
            ("X-Request-ID", "upstream-id"), ("Cache-Control", "max-age=60, no-cache=\"Set-Cookie\""), ("Set-Cookie", "s=1"),
            ("Vary", "Accept-Encoding, Accept-Language"), ("Surrogate-Key", "a b"), ("X-Invalidate-Tags", "x"),
        ])
        let builder = StoredEntry(route: route, requestPath: "/items/7", requestHeaders: HTTPHeaders([("Accept-Language", "de")]),
                                  requestTime: Self.t0)
        let entry = builder.make(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers), body: ByteBuffer(string: String(repeating: "x", count: 2000)),
                                 terms: try Self.terms(headers, route: route), responseTime: Self.t0)
        let stored = entry.headers
        for gone in ["transfer-encoding", "connection", "age", "x-request-id", "set-cookie", "x-invalidate-tags"] {
            #expect(!stored.contains(name: gone), "\(gone) was kept")
        }
        #expect(stored.first(name: "content-length") == "2000")
        #expect(stored.first(name: "via") != nil)
        // sidecache negotiates gzip itself: Accept-Encoding does not split the entry.
        #expect(entry.varyNames == ["accept-language"] && entry.varyValues == ["de"])
        #expect(entry.tags == ["item:7", "a", "b"])
        #expect(entry.gzipPending)  // above the route's min_bytes, of a listed type
    }

    @Test func withoutGzipTheOriginsVaryIsKept() throws {
        let route = try Self.route("/items/1", gzip: false)
        let headers = HTTPHeaders([("Cache-Control", "max-age=60"), ("Vary", "Accept-Encoding")])
        let builder = StoredEntry(route: route, requestPath: "/items/1", requestHeaders: HTTPHeaders([("Accept-Encoding", "br")]),
                                  requestTime: Self.t0)
        let entry = builder.make(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers), body: ByteBuffer(string: "x"),
                                 terms: try Self.terms(headers, route: route), responseTime: Self.t0)
        #expect(entry.varyNames == ["accept-encoding"] && !entry.gzipPending)
    }

    @Test func a304RefreshesTheFieldsAndTheLifetime() throws {
        let route = try Self.route("/items/2", gzip: false)
        let headers = HTTPHeaders([("Cache-Control", "max-age=10"), ("ETag", "\"v1\""), ("X-Kept", "old")])
        let builder = StoredEntry(route: route, requestPath: "/items/2", requestHeaders: [:], requestTime: Self.t0)
        let entry = builder.make(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers), body: ByteBuffer(string: "body"),
                                 terms: try Self.terms(headers, route: route), responseTime: Self.t0)
        let later = Self.t0 + .seconds(100)
        let notModified = HTTPResponseHead(version: .http1_1, status: .notModified,
                                           headers: HTTPHeaders([("Cache-Control", "max-age=300"), ("X-Kept", "new"), ("Connection", "close")]))
        let again = StoredEntry(route: route, requestPath: "/items/2", requestHeaders: [:], requestTime: later)
        let refreshed = again.refresh(entry, with: notModified, responseTime: later)
        #expect(refreshed.headers.first(name: "x-kept") == "new")
        #expect(refreshed.headers.first(name: "etag") == "\"v1\"")
        #expect(!refreshed.headers.contains(name: "connection"))
        #expect(refreshed.freshness(at: later + .seconds(299)).isFresh)
        #expect(String(buffer: refreshed.body) == "body")
    }

    @Test func onlyIdentityOrTransformableGzipMayBeSharedAcrossCodings() {
        #expect(StoredEntry.storableCoding([:]))
        #expect(StoredEntry.storableCoding(HTTPHeaders([("Content-Encoding", "gzip")])))
        #expect(!StoredEntry.storableCoding(HTTPHeaders([("Content-Encoding", "gzip"), ("Cache-Control", "no-transform")])))
        #expect(!StoredEntry.storableCoding(HTTPHeaders([("Content-Encoding", "br")])))
    }
}
