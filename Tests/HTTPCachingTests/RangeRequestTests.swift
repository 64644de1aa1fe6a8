import HTTPCaching
import Testing

/// RFC 9110 §14 and §13.1.5 as values: which bytes, or the whole, or 416.
@Suite struct RangeRequestTests {
    static func answer(_ range: String, length: Int = 100, ifRange: String? = nil, etag: String? = "\"v1\"",
                       lastModified: String? = "Sun, 06 Nov 1994 08:49:37 GMT") -> RangeRequest.Answer {
        RangeRequest.answer(range: range, ifRange: ifRange, length: length, etag: etag, lastModified: lastModified)
    }

    @Test(arguments: [
        ("bytes=0-9", 0...9), ("bytes=10-", 10...99), ("bytes=-10", 90...99), ("bytes=90-200", 90...99),
        ("bytes=-500", 0...99), ("Bytes = 5-5", 5...5), ("bytes= 3-4 ,", 3...4), ("bytes=0-0,200-300", 0...0),
    ] as [(String, ClosedRange<Int>)])
    func aSingleSatisfiableRangeIsThoseBytes(range: String, bytes: ClosedRange<Int>) {
        #expect(Self.answer(range) == .partial(bytes))
    }

    @Test(arguments: ["bytes=100-", "bytes=200-300", "bytes=-0", "bytes=100-100,150-"])
    func nothingSatisfiableIs416(range: String) {
        #expect(Self.answer(range) == .unsatisfiable)
    }

    @Test func anEmptyRepresentationSatisfiesNoRange() {
        #expect(Self.answer("bytes=0-", length: 0) == .unsatisfiable)
        #expect(Self.answer("bytes=-5", length: 0) == .unsatisfiable)
    }

    @Test(arguments: ["items=0-9", "bytes", "bytes=", "bytes=9-0", "bytes=a-b", "bytes=+1-2", "bytes=1--2", "bytes=0-1;x", "bytes=99999999999999999999-"])
    func aRangeThatDoesNotParseIsIgnored(range: String) {
        #expect(Self.answer(range) == .whole)
    }

    @Test func severalRangesAreAnsweredWithTheWhole() {
        #expect(Self.answer("bytes=0-9,20-29") == .whole)
    }

    @Test func ifRangeHonoursTheRangeOnlyForTheSameVersion() {
        #expect(Self.answer("bytes=0-9", ifRange: "\"v1\"") == .partial(0...9))
        #expect(Self.answer("bytes=0-9", ifRange: "\"v2\"") == .whole)
        // Weak tags never match (strong comparison).
        #expect(Self.answer("bytes=0-9", ifRange: "W/\"v1\"") == .whole)
        #expect(Self.answer("bytes=0-9", ifRange: "\"v1\"", etag: "W/\"v1\"") == .whole)
        #expect(Self.answer("bytes=0-9", ifRange: "Sun, 06 Nov 1994 08:49:37 GMT") == .partial(0...9))
        #expect(Self.answer("bytes=0-9", ifRange: "Sun, 06 Nov 1994 08:49:38 GMT") == .whole)
        #expect(Self.answer("bytes=0-9", ifRange: "Sun, 06 Nov 1994 08:49:37 GMT", lastModified: nil) == .whole)
    }

    @Test func theContentRangeFields() {
        #expect(RangeRequest.contentRange(0...9, length: 100) == "bytes 0-9/100")
        #expect(RangeRequest.unsatisfiedRange(length: 100) == "bytes */100")
    }
}
