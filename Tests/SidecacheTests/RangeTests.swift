import Foundation
import NIOHTTP1
import TestSupport
import Testing

/// Range requests answered from the cache (RFC 9110 §14), over real sockets.
@Suite struct RangeTests {
    static let body = String((0..<100).map { Character(UnicodeScalar(UInt8(ascii: "a") + UInt8($0 % 26))) })

    static func origin(_ r: OriginRequest) -> OriginReply {
        if r.path.hasPrefix("/api/items/nostore") {
            // Uncacheable: the origin answers ranges itself.
            if let range = r.headers.first(name: "range") {
                return OriginReply(status: .partialContent, headers: [("Cache-Control", "no-store"), ("Content-Range", "bytes 0-1/100"),
                                                                       ("X-Range-Seen", range)], body: "ab")
            }
            return .ok(body, [("Cache-Control", "no-store")])
        }
        return .ok(body, [("ETag", "\"v1\""), ("Content-Type", "text/plain"), ("X-Range-Seen", r.headers.first(name: "range") ?? "none")])
    }

    @Test func aRangeOfAStoredResponseIsCutFromIt() async throws {
        try await withProxy(Self.origin) { origin, proxy in
            _ = try await get(proxy.port, "/api/items/1")
            let partial = try await get(proxy.port, "/api/items/1", [("Range", "bytes=10-19")])
            #expect(partial.status == 206)
            #expect(partial.text == String(Array(Self.body)[10...19]))
            #expect(partial.header("Content-Range") == "bytes 10-19/100")
            #expect(partial.header("Content-Length") == "10")
            #expect(partial.header("ETag") == "\"v1\"")
            #expect(partial.xCache == "HIT")
            let suffix = try await get(proxy.port, "/api/items/1", [("Range", "bytes=-5")])
            #expect(suffix.status == 206 && suffix.text == String(Self.body.suffix(5)) && suffix.header("Content-Range") == "bytes 95-99/100")
            #expect(origin.count("/api/items/1") == 1)
        }
    }

    @Test func anUnsatisfiableRangeIs416WithTheLength() async throws {
        try await withProxy(Self.origin) { _, proxy in
            _ = try await get(proxy.port, "/api/items/2")
            let refused = try await get(proxy.port, "/api/items/2", [("Range", "bytes=100-")])
            #expect(refused.status == 416)
            #expect(refused.header("Content-Range") == "bytes */100")
            #expect(refused.xCache == "HIT")
            // The connection stays usable.
            #expect(try await get(proxy.port, "/api/items/2").status == 200)
        }
    }

    @Test func ifRangeForAnotherVersionGetsTheWhole() async throws {
        try await withProxy(Self.origin) { _, proxy in
            _ = try await get(proxy.port, "/api/items/3")
            let same = try await get(proxy.port, "/api/items/3", [("Range", "bytes=0-1"), ("If-Range", "\"v1\"")])
            #expect(same.status == 206 && same.text == "ab")
            let other = try await get(proxy.port, "/api/items/3", [("Range", "bytes=0-1"), ("If-Range", "\"v0\"")])
            #expect(other.status == 200 && other.text == Self.body)
            let several = try await get(proxy.port, "/api/items/3", [("Range", "bytes=0-1,5-6")])
            #expect(several.status == 200 && several.text == Self.body)
        }
    }

    @Test func aRangeMissFetchesTheWholeStoresItAndAnswersTheRange() async throws {
        try await withProxy(Self.origin) { origin, proxy in
            let first = try await get(proxy.port, "/api/items/4", [("Range", "bytes=0-3")])
            #expect(first.status == 206 && first.text == "abcd" && first.header("Content-Range") == "bytes 0-3/100")
            #expect(first.xCache == "MISS")
            // The origin was asked for the whole representation, without the client's Range.
            #expect(origin.requests.last?.headers.first(name: "range") == nil)
            let whole = try await get(proxy.port, "/api/items/4")
            #expect(whole.status == 200 && whole.xCache == "HIT" && whole.text == Self.body)
            #expect(origin.count("/api/items/4") == 1)
        }
    }

    @Test func aRangeOfAResponseTheCacheWillNotKeepIsForwardedAsItCame() async throws {
        try await withProxy(Self.origin) { origin, proxy in
            let partial = try await get(proxy.port, "/api/items/nostore", [("Range", "bytes=0-1")])
            #expect(partial.status == 206 && partial.text == "ab")
            #expect(partial.header("X-Range-Seen") == "bytes=0-1")
            #expect(partial.header("Cache-Status") == "sidecache; fwd=miss; detail=no-store")
            // First without the Range (a fill), then again with it.
            #expect(origin.count("/api/items/nostore") == 2)
        }
    }

    @Test func aHeadIgnoresRange() async throws {
        try await withProxy(Self.origin) { _, proxy in
            _ = try await get(proxy.port, "/api/items/5")
            let head = try await request(proxy.port, "HEAD", "/api/items/5", headers: [("Range", "bytes=0-1")])
            #expect(head.status == 200 && head.body.isEmpty && head.header("Content-Length") == "100")
        }
    }

    @Test func aRangeIsCutFromTheCodingTheClientGets() async throws {
        let text = String(repeating: "sidecache serves ranges of its gzip copy too. ", count: 80)
        try await withProxy({ _ in .ok(text, [("Content-Type", "text/plain")]) }) { _, proxy in
            let gzip = [("Accept-Encoding", "gzip")]
            let whole = try await get(proxy.port, "/api/items/6", gzip)
            #expect(whole.header("Content-Encoding") == "gzip")
            let length = try #require(whole.header("Content-Length").flatMap(Int.init))
            let partial = try await get(proxy.port, "/api/items/6", gzip + [("Range", "bytes=0-9")])
            #expect(partial.status == 206 && partial.header("Content-Encoding") == "gzip")
            #expect(partial.header("Content-Range") == "bytes 0-9/\(length)")
            #expect(partial.body == Array(whole.body.prefix(10)))
            let identity = try await get(proxy.port, "/api/items/6", [("Range", "bytes=0-9")])
            #expect(identity.status == 206 && identity.header("Content-Encoding") == nil && identity.text == String(text.prefix(10)))
            #expect(identity.header("Content-Range") == "bytes 0-9/\(text.utf8.count)")
        }
    }
}
