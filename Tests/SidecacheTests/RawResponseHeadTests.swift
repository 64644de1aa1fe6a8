import NIOCore
import NIOHTTP1
@testable import Sidecache
import Testing

@Suite struct RawResponseHeadTests {
    @Test func theHeadIsWrittenInWireFormOfExactlyItsSize() {
        let headers = HTTPHeaders([("Content-Type", "text/plain; charset=utf-8"), ("X-Name", "ünï"), ("Empty", ""), ("Content-Length", "5")])
        for (status, line) in [(HTTPResponseStatus.ok, "HTTP/1.1 200 OK"), (.notFound, "HTTP/1.1 404 Not Found"),
                               (.custom(code: 299, reasonPhrase: ""), "HTTP/1.1 299 ")] {
            let buffer = RawResponseHead.encodeRelayed(status: status, headers: headers, allocator: ByteBufferAllocator(), appendBytes: 0) { _ in }
            #expect(String(buffer: buffer) == line + "\r\nContent-Type: text/plain; charset=utf-8\r\nX-Name: ünï\r\nEmpty: \r\nContent-Length: 5\r\n"
                    + "Via: 1.1 sidecache\r\n\r\n")
        }
    }

    @Test func onlyOneLengthOfDigitsWithoutTransferEncodingDelimitsABody() {
        #expect(RawResponseHead.isLengthDelimited(["Content-Length": "0"]))
        #expect(RawResponseHead.isLengthDelimited(HTTPHeaders([("content-length", "1024"), ("ETag", "x")])))
        #expect(!RawResponseHead.isLengthDelimited(["ETag": "x"]))
        #expect(!RawResponseHead.isLengthDelimited(HTTPHeaders([("Content-Length", "5"), ("Content-Length", "5")])))
        #expect(!RawResponseHead.isLengthDelimited(HTTPHeaders([("Content-Length", "5"), ("Transfer-Encoding", "chunked")])))
        #expect(!RawResponseHead.isLengthDelimited(["Content-Length": "5 "]))
        #expect(!RawResponseHead.isLengthDelimited(["Content-Length": ""]))
        #expect(!RawResponseHead.isLengthDelimited(["Content-Length": "-1"]))
        #expect(!RawResponseHead.isLengthDelimited(["Content-Length": String(repeating: "9", count: 19)]))
    }
}
