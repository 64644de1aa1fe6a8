import HTTPCaching
import NIOCore
import NIOHTTP1
import Testing

@Suite struct CachedResponseCodecTests {
    static func entry(body: String = "{\"id\":42}") -> CachedResponse {
        let terms = StorageTerms(freshnessLifetime: .seconds(300), staleWhileRevalidate: .seconds(30), staleIfError: .seconds(600),
                                 revalidateAlways: false, mayServeStale: true, originDate: 1_790_000_000, originAge: 7)
        return CachedResponse(
            status: .ok,
            headers: HTTPHeaders([("Content-Type", "application/json"), ("ETag", "\"v1\""), ("Set-Thing", "a"), ("Set-Thing", "b"),
                                  ("Content-Length", String(body.utf8.count))]),
            body: ByteBuffer(string: body), requestTime: CacheInstant(seconds: 1_790_000_000),
            responseTime: CacheInstant(milliseconds: 1_790_000_000_250), terms: terms,
            varyNames: ["accept-language"], varyValues: ["de"], tags: ["items", "item:42", "ünïcode"]
        )
    }

    @Test func everyFieldSurvivesTheRoundTrip() throws {
        let original = Self.entry()
        let decoded = try CachedResponseCodec.decode(CachedResponseCodec.encode(original))
        #expect(decoded.status == original.status)
        #expect(decoded.headers == original.headers)
        #expect(decoded.body == original.body)
        #expect(decoded.responseTime == original.responseTime)
        #expect(decoded.correctedInitialAge == original.correctedInitialAge)
        #expect(decoded.terms == original.terms)
        #expect(decoded.varyNames == original.varyNames && decoded.varyValues == original.varyValues)
        #expect(decoded.tags == original.tags)
        #expect(decoded.etag == "\"v1\"")
        #expect(decoded.encodedHead == original.encodedHead)
        let later = CacheInstant(milliseconds: 1_790_000_100_250)
        #expect(decoded.age(at: later) == original.age(at: later))
        #expect(decoded.freshness(at: later) == original.freshness(at: later))
    }

    @Test func emptyBodyNoDateAndFlagsRoundTrip() throws {
        let terms = StorageTerms(freshnessLifetime: .zero, staleWhileRevalidate: .zero, staleIfError: .zero,
                                 revalidateAlways: true, mayServeStale: false)
        let original = CachedResponse(status: .noContent, headers: [:], body: ByteBuffer(), requestTime: CacheInstant(seconds: 5),
                                      responseTime: CacheInstant(seconds: 5), terms: terms, varyNames: [], varyValues: [], tags: [])
        let decoded = try CachedResponseCodec.decode(CachedResponseCodec.encode(original))
        #expect(decoded.terms == terms)
        #expect(decoded.status == .noContent)
        #expect(decoded.body.readableBytes == 0)
    }

    @Test func anotherVersionIsRefused() {
        var bytes = CachedResponseCodec.encode(Self.entry())
        bytes.setInteger(UInt8(4), at: 3)
        #expect(throws: CachedResponseCodec.DecodeError.unknownVersion(4)) { try CachedResponseCodec.decode(bytes) }
        var foreign = ByteBuffer(string: "{\"json\": true}")
        #expect(throws: CachedResponseCodec.DecodeError.badMagic) { try CachedResponseCodec.decode(foreign) }
        foreign.clear()
        #expect(throws: CachedResponseCodec.DecodeError.truncated) { try CachedResponseCodec.decode(foreign) }
    }

    @Test func theGzipCopyRoundTripsAndVersionOneStillReads() throws {
        let body = ByteBuffer(string: String(repeating: "{\"a\": 1}", count: 200))
        let gzipped = try ContentCoding.gzip(body, level: 6)
        let original = CachedResponse(status: .ok, headers: HTTPHeaders([("ETag", "\"e1\""), ("Content-Length", "1600")]), body: body,
                                      requestTime: CacheInstant(seconds: 5), responseTime: CacheInstant(seconds: 5),
                                      terms: Self.entry().terms, varyNames: [], varyValues: [], tags: [], gzipBody: gzipped)
        let decoded = try CachedResponseCodec.decode(CachedResponseCodec.encode(original))
        #expect(decoded.gzip?.body == gzipped)
        #expect(decoded.gzip?.etag == "\"e1-gzip\"")
        #expect(decoded.gzipHeaders?.first(name: "content-length") == String(gzipped.readableBytes))
        // A version 1 value (no gzip field) written by an older sidecache.
        var old = CachedResponseCodec.encode(Self.entry())
        old.setInteger(UInt8(1), at: 3)
        old.moveWriterIndex(to: old.writerIndex - 1)
        let fromOld = try CachedResponseCodec.decode(old)
        #expect(fromOld.gzip == nil && fromOld.body == Self.entry().body)
    }

    @Test func aPendingGzipCopyRoundTripsAndIsRefusedInVersionTwo() throws {
        let body = ByteBuffer(string: String(repeating: "{\"a\": 1}", count: 200))
        let pending = CachedResponse(status: .ok, headers: HTTPHeaders([("Content-Length", "1600")]), body: body,
                                     requestTime: CacheInstant(seconds: 5), responseTime: CacheInstant(seconds: 5),
                                     terms: Self.entry().terms, varyNames: [], varyValues: [], tags: [], gzipPending: true)
        var bytes = CachedResponseCodec.encode(pending)
        let decoded = try CachedResponseCodec.decode(bytes)
        #expect(decoded.gzipPending && decoded.gzip == nil && decoded.body == body)
        #expect(try CachedResponseCodec.decode(CachedResponseCodec.encode(Self.entry())).gzipPending == false)
        // Version 2 knew only "no copy" and "a copy": the pending mark is not one of its values.
        bytes.setInteger(UInt8(2), at: 3)
        #expect(throws: CachedResponseCodec.DecodeError.invalidValue("gzip flag 2")) { try CachedResponseCodec.decode(bytes) }
    }

    @Test func everyTruncationAndExtraByteIsAnError() {
        let bytes = CachedResponseCodec.encode(Self.entry())
        for length in 0..<bytes.readableBytes {
            #expect(throws: CachedResponseCodec.DecodeError.self, "length \(length)") {
                try CachedResponseCodec.decode(bytes.getSlice(at: 0, length: length) ?? ByteBuffer())
            }
        }
        var longer = bytes
        longer.writeInteger(UInt8(0))
        #expect(throws: CachedResponseCodec.DecodeError.trailingBytes(1)) { try CachedResponseCodec.decode(longer) }
    }

    @Test func flippedBytesNeverCrash() {
        let bytes = CachedResponseCodec.encode(Self.entry())
        for i in 0..<bytes.readableBytes {
            var damaged = bytes
            let b: UInt8 = damaged.getInteger(at: i) ?? 0
            damaged.setInteger(b ^ 0xA5, at: i)
            _ = try? CachedResponseCodec.decode(damaged)  // either an error or some entry: never a trap
        }
    }
}

extension CachedResponseCodecTests {
    @Test func aHeaderThatWouldSplitTheResponseIsRefused() {
        let bytes = CachedResponseCodec.encode(Self.entry())
        // Replace the "a" of the first Set-Thing value with a LF.
        let view = Array(bytes.readableBytesView)
        let marker = Array("Set-Thing".utf8) + [0, 0, 0, 1]
        guard let at = (0..<(view.count - marker.count)).first(where: { Array(view[$0..<($0 + marker.count)]) == marker }) else {
            Issue.record("marker not found")
            return
        }
        var damaged = bytes
        damaged.setInteger(UInt8(10), at: at + marker.count)
        #expect(throws: CachedResponseCodec.DecodeError.self) { try CachedResponseCodec.decode(damaged) }
    }
}

extension CachedResponseCodecTests {
    @Test func aFieldNameWithAColonIsRefused() {
        let bytes = CachedResponseCodec.encode(Self.entry())
        // "Set-Thing" becomes "Set:Thing": its line in the encoded head would not parse back.
        let view = Array(bytes.readableBytesView)
        let marker = Array("Set-Thing".utf8)
        guard let at = (0..<(view.count - marker.count)).first(where: { Array(view[$0..<($0 + marker.count)]) == marker }) else {
            Issue.record("marker not found")
            return
        }
        var damaged = bytes
        damaged.setInteger(UInt8(ascii: ":"), at: at + 3)
        #expect(throws: CachedResponseCodec.DecodeError.self) { try CachedResponseCodec.decode(damaged) }
    }
}
