import HTTPCaching
import NIOCore
import NIOHTTP1
import Testing

@Suite struct EncodedHeadTests {
    static let fields: [(String, String)] = [
        ("Content-Type", "application/json"), ("ETag", "\"v1\""), ("Link", "<https://x.example/a:b>; rel=\"next\""),
        ("X-Empty", ""), ("X-Spaced", "  two leading spaces"), ("Set-Thing", "a"), ("Set-Thing", "b"), ("X-Ünïcode", "wert: ä"),
    ]

    @Test func theWireFormIsAStatusLineAndOneLinePerField() {
        let head = EncodedHead(status: .notFound, headers: HTTPHeaders([("A", "1"), ("B", "two words")]))
        #expect(String(decoding: head.bytes, as: UTF8.self) == "HTTP/1.1 404 Not Found\r\nA: 1\r\nB: two words\r\n")
    }

    @Test func fieldsParseBackAsTheyWereInOrderAndSpelling() {
        let headers = HTTPHeaders(Self.fields)
        let head = EncodedHead(status: .ok, headers: headers)
        #expect(head.headers == headers)
        #expect(Array(head.headers.map { $0.name }) == Self.fields.map(\.0))
        #expect(EncodedHead(status: .noContent, headers: [:]).headers.isEmpty)
    }

    @Test func headsEncodedTogetherShareOneExactAllocation() {
        let identity = HTTPHeaders(Self.fields)
        let gzip = ContentCoding.headers(identity, coding: "gzip", length: 10, etagSuffix: "gzip")
        let heads = EncodedHead.encode(status: .ok, [identity, gzip])
        #expect(heads.count == 2)
        #expect(heads[0] == EncodedHead(status: .ok, headers: identity))
        #expect(heads[1] == EncodedHead(status: .ok, headers: gzip))
        #expect(heads[0].bytes.endIndex == heads[1].bytes.startIndex)
        #expect(heads[1].headers == gzip)
        let base0 = heads[0].bytes.withUnsafeBufferPointer { $0.baseAddress }
        let base1 = heads[1].bytes.withUnsafeBufferPointer { $0.baseAddress }
        #expect(base0.map { $0 + heads[0].bytes.count } == base1)
    }

    @Test func anEntryKeepsItsFieldsOnlyInItsEncodedHeads() {
        let terms = StorageTerms(freshnessLifetime: .seconds(60), staleWhileRevalidate: .zero, staleIfError: .zero,
                                 revalidateAlways: false, mayServeStale: true)
        let headers = HTTPHeaders(Self.fields + [("Content-Length", "4")])
        let entry = CachedResponse(status: .ok, headers: headers, body: ByteBuffer(string: "body"), requestTime: CacheInstant(seconds: 1),
                                   responseTime: CacheInstant(seconds: 1), terms: terms, varyNames: [], varyValues: [], tags: [],
                                   gzipBody: ByteBuffer(string: "zz"))
        #expect(entry.headers == headers)
        #expect(entry.gzipHeaders?.first(name: "content-encoding") == "gzip")
        #expect(entry.gzipHeaders?.first(name: "content-length") == "2")
        #expect(entry.gzip?.etag == "\"v1-gzip\"")
        let soft = entry.expired(at: CacheInstant(seconds: 5))
        #expect(soft.encodedHead == entry.encodedHead && soft.cost == entry.cost)
        #expect(soft.terms.freshnessLifetime == .seconds(4))
    }
}
