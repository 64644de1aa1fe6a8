import NIOCore
@testable import Sidecache
import Testing

@Suite struct ServedCacheStatusTests {
    @Test func decimalsAreWrittenWithoutAString() {
        for value: Int64 in [0, 7, 10, 42, 1_234_567_890_123, -5, -300, .max, .min] {
            var buffer = ByteBuffer()
            buffer.writeDecimal(value)
            #expect(String(buffer: buffer) == String(value))
        }
    }

    @Test func aFreshHitIsWrittenAsItsTextReads() {
        let statuses: [ServedCacheStatus] = [.freshHit(ttl: 42, fromL2: false), .freshHit(ttl: 0, fromL2: true), "sidecache; fwd=miss; collapsed"]
        let expected = ["sidecache; hit; ttl=42", "sidecache; hit; ttl=0; tier=l2", "sidecache; fwd=miss; collapsed"]
        for (status, text) in zip(statuses, expected) {
            var buffer = ByteBuffer()
            status.write(to: &buffer)
            #expect(String(buffer: buffer) == text && status.text == text)
            #expect(buffer.readableBytes <= status.maxBytes)
        }
        let ttl: Int64 = -3
        let interpolated: ServedCacheStatus = "ttl=\(ttl)"
        #expect(interpolated.text == "ttl=-3")
    }
}
