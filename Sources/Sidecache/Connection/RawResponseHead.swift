import HTTPCaching
import NIOCore
import NIOHTTP1

/// An HTTP/1.1 response head written as bytes, for a relayed response that is delimited by its
/// `Content-Length` and so needs no framing from NIO's encoder. The fields come from NIO's parser
/// (or from sidecache itself), so they hold no CR, LF or NUL and are written as they are.
enum RawResponseHead {
    /// Exactly one `Content-Length` holding only digits, and no `Transfer-Encoding`: the body is
    /// then sent as it is, with no chunked framing.
    static func isLengthDelimited(_ headers: HTTPHeaders) -> Bool {
        var lengths = 0
        for (name, value) in headers {
            if ASCII.equalsIgnoringCase(name, "content-length") {
                lengths += 1
                guard !value.isEmpty, value.utf8.count <= 18, value.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return false }
            } else if ASCII.equalsIgnoringCase(name, "transfer-encoding") {
                return false
            }
        }
        return lengths == 1
    }

    /// The status line, the fields and the blank line that ends the head.
    static func size(status: HTTPResponseStatus, headers: HTTPHeaders) -> Int {
        EncodedHead.wireSize(status: status, headers: headers) + 2
    }

    /// The head in a buffer of exactly its size, written in one pass by the same writer as a
    /// stored entry's head.
    static func encode(status: HTTPResponseStatus, headers: HTTPHeaders, allocator: ByteBufferAllocator) -> ByteBuffer {
        let size = size(status: status, headers: headers)
        var buffer = allocator.buffer(capacity: size)
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { raw in
            var at = 0
            EncodedHead.write(status: status, headers: headers, into: raw, at: &at)
            raw[at] = UInt8(ascii: "\r")
            raw[at + 1] = UInt8(ascii: "\n")
            return at + 2
        }
        return buffer
    }
}
