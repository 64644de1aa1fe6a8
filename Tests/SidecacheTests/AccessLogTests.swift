import Foundation
import HTTPCaching
@testable import Sidecache
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
        line.field("time", CacheInstant(milliseconds: 1_795_392_000_007), using: &timestamps)
        line.field("n", 42)
        scratch = line.finish()
        #expect(String(decoding: scratch, as: UTF8.self) == #"{"time":"2026-11-23T00:00:00.007Z","n":42}"#)
        #expect(scratch.capacity == capacity)
    }
}
