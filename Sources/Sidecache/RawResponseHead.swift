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

    /// The head in a buffer of exactly its size.
    static func encode(status: HTTPResponseStatus, headers: HTTPHeaders, allocator: ByteBufferAllocator) -> ByteBuffer {
        let size = size(status: status, headers: headers)
        var buffer = allocator.buffer(capacity: size)
        write(status: status, headers: headers, size: size, to: &buffer)
        return buffer
    }

    /// Writes the head, `size` bytes, in one pass.
    private static func write(status: HTTPResponseStatus, headers: HTTPHeaders, size: Int, to buffer: inout ByteBuffer) {
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { raw in
            var at = 0
            put("HTTP/1.1 ", raw, &at)
            let code = min(999, max(100, status.code))
            raw[at] = UInt8(ascii: "0") + UInt8(code / 100)
            raw[at + 1] = UInt8(ascii: "0") + UInt8(code / 10 % 10)
            raw[at + 2] = UInt8(ascii: "0") + UInt8(code % 10)
            at += 3
            put(" ", raw, &at)
            put(status.reasonPhrase, raw, &at)
            put("\r\n", raw, &at)
            for (name, value) in headers {
                put(name, raw, &at)
                put(": ", raw, &at)
                put(value, raw, &at)
                put("\r\n", raw, &at)
            }
            put("\r\n", raw, &at)
            return at
        }
    }

    private static func put(_ text: String, _ raw: UnsafeMutableRawBufferPointer, _ at: inout Int) {
        let copied: Int? = text.utf8.withContiguousStorageIfAvailable { bytes in
            UnsafeMutableRawBufferPointer(rebasing: raw[at...]).copyMemory(from: UnsafeRawBufferPointer(bytes))
            return bytes.count
        }
        if let copied {
            at += copied
            return
        }
        for byte in text.utf8 {
            raw[at] = byte
            at += 1
        }
    }

    private static func put(_ literal: StaticString, _ raw: UnsafeMutableRawBufferPointer, _ at: inout Int) {
        literal.withUTF8Buffer { bytes in
            UnsafeMutableRawBufferPointer(rebasing: raw[at...]).copyMemory(from: UnsafeRawBufferPointer(bytes))
            at += bytes.count
        }
    }
}
