import Foundation
import HTTPCaching
import NIOCore
@testable import Sidecache
import HTTPWire
import Testing

@Suite struct AccessLogTests {
    @Test func jsonStringsAreEscapedAroundPlainRuns() throws {
        var line = JSONBytes([])
        line.field("plain", "abc/def?x=1")
        line.field("tricky", "a\"b\\c\u{01}d\ne")
        line.field("empty", "")
        line.field(named: "na\"me", Substring("ünï"))
        let text = String(decoding: line.finish(), as: UTF8.self)
        #expect(text == #"{"plain":"abc/def?x=1","tricky":"a\"b\\c\u0001d\u000ae","empty":"","na\"me":"ünï"}"#)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: String])
        #expect(json["tricky"] == "a\"b\\c\u{01}d\ne")
    }

    @Test func timestampsHaveMillisecondsAndFollowTheSecond() {
        var cache = TimestampCache()
        func format(_ t: CacheInstant) -> String {
            var bytes: [UInt8] = []
            cache.append(t, to: &bytes)
            return String(decoding: bytes, as: UTF8.self)
        }
        let base: Int64 = 1_795_392_000_000  // 2026-11-23T00:00:00Z
        #expect(format(CacheInstant(milliseconds: base + 7)) == "2026-11-23T00:00:00.007Z")
        #expect(format(CacheInstant(milliseconds: base + 999)) == "2026-11-23T00:00:00.999Z")
        #expect(format(CacheInstant(milliseconds: base + 1_042)) == "2026-11-23T00:00:01.042Z")
        #expect(format(CacheInstant(milliseconds: base - 1)) == "2026-11-22T23:59:59.999Z")
    }

    @Test func aLineReusesTheConnectionsBufferAndLeavesItHoldingTheLine() {
        var scratch: [UInt8] = []
        scratch.reserveCapacity(512)
        scratch.append(contentsOf: Array("stale".utf8))
        let capacity = scratch.capacity
        var timestamps = TimestampCache()
        var line = JSONBytes(reusing: &scratch)
        #expect(scratch.isEmpty)
        line.raw("\"time\":\"")
        line.timestamp(CacheInstant(milliseconds: 1_795_392_000_007), using: &timestamps)
        line.raw("\",\"n\":")
        line.decimal(42)
        scratch = line.finish()
        #expect(String(decoding: scratch, as: UTF8.self) == #"{"time":"2026-11-23T00:00:00.007Z","n":42}"#)
        #expect(scratch.capacity == capacity)
    }

    @Test func anAccessLineIsValidJSONWithEveryField() throws {
        var timestamps = TimestampCache()
        var scratch: [UInt8] = []
        let record = AccessRecord(requestID: RequestID(client: "r-1"), method: .GET, path: "/a\"b\\c", route: nil, status: 304, outcome: .revalidated,
                                  upstreamMicroseconds: 1_234_567, totalMicroseconds: 2_000_005, bytes: 0, client: "10.0.0.1")
        AccessLog.encode(record, time: CacheInstant(milliseconds: 1_795_392_000_007), timestamps: &timestamps, into: &scratch)
        let text = String(decoding: scratch, as: UTF8.self)
        #expect(text == #"{"time":"2026-11-23T00:00:00.007Z","type":"access","request_id":"r-1","client":"10.0.0.1","method":"GET","#
            + #""path":"/a\"b\\c","route":"-","status":304,"cache":"revalidated","upstream_ms":1234.567,"total_ms":2000.005,"bytes":0}"#)
        #expect(try JSONSerialization.jsonObject(with: Data(text.utf8)) is [String: Any])
        // Without an upstream time the field is left out, and the buffer is reused.
        var hit = record
        hit.upstreamMicroseconds = nil
        AccessLog.encode(hit, time: CacheInstant(milliseconds: 1_795_392_000_007), timestamps: &timestamps, into: &scratch)
        #expect(!String(decoding: scratch, as: UTF8.self).contains("upstream_ms"))
    }

    @Test func aRequestIDReadsTheSameAsTextBytesAndInALine() {
        let ids = [RequestID(prefix: 0xabc, counter: 0x1f), RequestID(prefix: .max, counter: 0), RequestID(prefix: 1, counter: .max),
                   RequestID(client: "trace-123")]
        let texts = ["0000000000000abc-1f", "ffffffffffffffff-0", "0000000000000001-ffffffffffffffff", "trace-123"]
        for (id, text) in zip(ids, texts) {
            #expect(id.text == text && id.utf8Count == text.utf8.count)
            var buffer = ByteBuffer()
            buffer.writeHead(capacity: id.utf8Count) { id.write(to: &$0) }
            #expect(String(buffer: buffer) == text)
            var bytes = Array("x".utf8)
            id.append(to: &bytes)
            #expect(String(decoding: bytes, as: UTF8.self) == "x" + text)
        }
    }
}
