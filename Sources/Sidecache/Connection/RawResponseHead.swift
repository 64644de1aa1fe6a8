import HTTPCaching
import HTTPWire
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

    /// An upstream response's head as relayed to the client, in one pass with no header list
    /// copied: the status line; the upstream's fields less the hop-by-hop ones (RFC 9110 §7.6.1,
    /// with those its `Connection` names), `X-Invalidate-Tags` (meant for sidecache alone) and the
    /// fields sidecache sets itself (`Cache-Status`, `X-Cache`, `X-Request-ID`); `Via`; then what
    /// `append` writes (each line ending in CRLF), and the blank line. The same head as
    /// `UpstreamRequest.clientHeaders` and `replaceOrAdd` of those fields, encoded.
    static func encodeRelayed(status: HTTPResponseStatus, headers: HTTPHeaders, allocator: ByteBufferAllocator, appendBytes: Int,
                              append: (inout HeadBytes) -> Void) -> ByteBuffer {
        var nominated: [String] = []
        var size = 64 + appendBytes + status.reasonPhrase.utf8.count
        for (name, value) in headers {
            size += name.utf8.count + value.utf8.count + 4
            if name.utf8.count == 10, ASCII.equalsIgnoringCase(name, "connection") { HopByHopHeaders.connectionOptions(value, into: &nominated) }
        }
        var buffer = allocator.buffer(capacity: size)
        let code = min(999, max(100, status.code))
        buffer.writeHead(capacity: size) { out in
            out.put("HTTP/1.1 ")
            out.put(UInt8(ascii: "0") + UInt8(code / 100))
            out.put(UInt8(ascii: "0") + UInt8(code / 10 % 10))
            out.put(UInt8(ascii: "0") + UInt8(code % 10))
            out.put(UInt8(ascii: " "))
            out.put(status.reasonPhrase)
            out.put("\r\n")
            for (name, value) in headers where !isReplaced(name) && !HopByHopHeaders.isAlwaysHopByHop(name)
                && (nominated.isEmpty || !nominated.contains(where: { $0.lowercased() == name.lowercased() })) {
                out.put(name)
                out.put(": ")
                out.put(value)
                out.put("\r\n")
            }
            out.put("Via: ")
            out.put(UpstreamRequest.via)
            out.put("\r\n")
            append(&out)
            out.put("\r\n")
        }
        return buffer
    }

    /// Fields of the upstream's that a relayed head leaves out: sidecache's own, and the one meant
    /// for sidecache alone.
    private static func isReplaced(_ name: String) -> Bool {
        switch name.utf8.count {
        case 7: ASCII.equalsIgnoringCase(name, "x-cache")
        case 12: ASCII.equalsIgnoringCase(name, "cache-status") || ASCII.equalsIgnoringCase(name, "x-request-id")
        case 17: ASCII.equalsIgnoringCase(name, "x-invalidate-tags")
        default: false
        }
    }
}
