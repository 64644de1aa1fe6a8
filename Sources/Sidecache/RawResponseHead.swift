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

    static func size(status: HTTPResponseStatus, headers: HTTPHeaders) -> Int {
        var size = 9 + 3 + 1 + status.reasonPhrase.utf8.count + 2 + 2
        for (name, value) in headers { size += name.utf8.count + 2 + value.utf8.count + 2 }
        return size
    }

    static func write(status: HTTPResponseStatus, headers: HTTPHeaders, to buffer: inout ByteBuffer) {
        buffer.writeStaticString("HTTP/1.1 ")
        buffer.writeString(String(status.code))
        buffer.writeStaticString(" ")
        buffer.writeString(status.reasonPhrase)
        buffer.writeStaticString("\r\n")
        for (name, value) in headers {
            buffer.writeString(name)
            buffer.writeStaticString(": ")
            buffer.writeString(value)
            buffer.writeStaticString("\r\n")
        }
        buffer.writeStaticString("\r\n")
    }
}
