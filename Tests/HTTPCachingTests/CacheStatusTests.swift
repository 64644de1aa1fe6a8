import HTTPCaching
import HTTPWire
import NIOCore
import Testing

@Suite struct CacheStatusTests {
    @Test func decimalsAreWrittenWithoutAString() {
        for value: Int64 in [0, 7, 10, 42, 1_234_567_890_123, -5, -300, .max, .min] {
            var buffer = ByteBuffer()
            buffer.writeHead(capacity: 8) { $0.putDecimal(value) }  // 8: .min needs a second try
            #expect(String(buffer: buffer) == String(value))
        }
    }

    /// Every form sidecache sends, with the text a client reads (parameters in RFC 9211's order).
    static let forms: [(CacheStatus, String)] = [
        (.hit(ttl: 42), "sidecache; hit; ttl=42"),
        (.hit(ttl: 0, tier: .l2), "sidecache; hit; ttl=0; tier=l2"),
        (.hit(ttl: -3, detail: .staleWhileRevalidate, tier: .l2), "sidecache; hit; ttl=-3; detail=stale-while-revalidate; tier=l2"),
        (.hit(ttl: -1, detail: .circuitOpen), "sidecache; hit; ttl=-1; detail=circuit-open"),
        (.forwarded(.miss, status: 200, stored: true), "sidecache; fwd=miss; fwd-status=200; stored"),
        (.forwarded(.miss, status: 200, detail: .notStored(.tooLarge)), "sidecache; fwd=miss; fwd-status=200; detail=too-large"),
        (.forwarded(.stale, status: 304, stored: true), "sidecache; fwd=stale; fwd-status=304; stored"),
        (.forwarded(.stale, status: 200, detail: .invalidated), "sidecache; fwd=stale; fwd-status=200; detail=invalidated"),
        (.forwarded(.miss, collapsed: true), "sidecache; fwd=miss; collapsed"),
        (.forwarded(.miss, collapsed: true, detail: .uncacheable), "sidecache; fwd=miss; collapsed; detail=uncacheable"),
        (.forwarded(.stale, detail: .staleIfError("connect-failed")), "sidecache; fwd=stale; detail=stale-if-error-connect-failed"),
        (.forwarded(.method), "sidecache; fwd=method"),
        (.answeredLocally(.rateLimited), "sidecache; detail=rate-limited"),
    ]

    @Test(arguments: forms) func eachFormRendersAsItsText(status: CacheStatus, text: String) {
        var buffer = ByteBuffer()
        buffer.writeHead(capacity: status.maxBytes) { status.write(to: &$0) }
        #expect(String(buffer: buffer) == text)
        #expect(status.text == text)
        #expect(buffer.readableBytes <= status.maxBytes)
    }

    @Test func aDetailOfEveryNotStoredReasonUsesTheReasonsName() {
        for reason in NotStoredReason.allCases {
            #expect(CacheStatus.forwarded(.miss, detail: .notStored(reason)).text == "sidecache; fwd=miss; detail=\(reason.rawValue)")
        }
    }

    @Test func theLongestValueFitsItsBound() {
        let longest = CacheStatus(hit: true, forward: .stale, forwardStatus: 999, ttl: .min, stored: true, collapsed: true,
                                  detail: .staleIfError("closed-before-response"), tier: .l2)
        let room = UnsafeMutableRawBufferPointer.allocate(byteCount: longest.maxBytes, alignment: 1)
        defer { room.deallocate() }
        var out = HeadBytes(room)
        longest.write(to: &out)
        #expect(!out.overflowed && out.count <= longest.maxBytes)
    }
}
