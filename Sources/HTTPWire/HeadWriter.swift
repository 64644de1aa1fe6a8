import NIOCore

/// Heads as bytes. A relayed head copies the received field lines it keeps, as they came (within
/// the strict profile that is the same as re-serialising them), and appends sidecache's own.
public enum HeadWriter {
    /// `method SP target SP HTTP/1.1 CRLF`, the fields, and the empty line.
    public static func writeRequestHead(method: String, target: String, fields: [(name: String, value: String)], into buffer: inout ByteBuffer) {
        buffer.writeString(method)
        buffer.writeInteger(UInt8(0x20))
        buffer.writeString(target)
        buffer.writeStaticString(" HTTP/1.1\r\n")
        writeFields(fields, into: &buffer)
        buffer.writeStaticString("\r\n")
    }

    /// `HTTP/1.1 SP status SP reason CRLF`, the fields, and the empty line.
    public static func writeResponseHead(status: Int, reason: String, fields: [(name: String, value: String)], into buffer: inout ByteBuffer) {
        let code = min(999, max(100, status))
        buffer.writeStaticString("HTTP/1.1 ")
        buffer.writeInteger(UInt8(0x30 + code / 100))
        buffer.writeInteger(UInt8(0x30 + code / 10 % 10))
        buffer.writeInteger(UInt8(0x30 + code % 10))
        buffer.writeInteger(UInt8(0x20))
        buffer.writeString(reason)
        buffer.writeStaticString("\r\n")
        writeFields(fields, into: &buffer)
        buffer.writeStaticString("\r\n")
    }

    /// A received request head passed on: the request line with `method` and `target` (the received
    /// ones when nil) and HTTP/1.1, the received field lines that `keep` accepts (by index), then
    /// `appending`.
    public static func relay(_ head: ParsedRequestHead, method: StaticString? = nil, target: String? = nil, keep: (Int) -> Bool,
                             appending: [(name: String, value: String)], into buffer: inout ByteBuffer) {
        relay(head, method: method, target: target, keep: keep, appendBytes: appending.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count + 4 },
              append: { out in
                  for (name, value) in appending {
                      out.put(name)
                      out.put(": ")
                      out.put(value)
                      out.put("\r\n")
                  }
              }, into: &buffer)
    }

    /// The same, with the fields appended by `append` (each line ending in CRLF), which writes
    /// about `appendBytes` bytes.
    public static func relay(_ head: ParsedRequestHead, method: StaticString? = nil, target: String? = nil, keep: (Int) -> Bool,
                             appendBytes: Int, append: (inout HeadBytes) -> Void, into buffer: inout ByteBuffer) {
        var size = Int(head.method.count) + Int(head.target.count) + 16 + (target?.utf8.count ?? 0) + appendBytes
        for field in head.fields { size += Int(field.line.count) + 2 }
        head.bytes.withUnsafeReadableBytes { p in
            buffer.writeHead(capacity: size) { out in
                func copy(_ span: ByteSpan) {
                    out.put(UnsafeRawBufferPointer(rebasing: p[span.lowerBound..<span.upperBound]))
                }
                if let method {
                    out.put(method)
                } else {
                    copy(head.method)
                }
                out.put(UInt8(0x20))
                if let target {
                    out.put(target)
                } else {
                    copy(head.target)
                }
                out.put(" HTTP/1.1\r\n")
                for (index, field) in head.fields.enumerated() where keep(index) {
                    copy(field.line)
                    out.put("\r\n")
                }
                append(&out)
                out.put("\r\n")
            }
        }
    }

    private static func writeFields(_ fields: [(name: String, value: String)], into buffer: inout ByteBuffer) {
        for (name, value) in fields {
            buffer.writeString(name)
            buffer.writeStaticString(": ")
            buffer.writeString(value)
            buffer.writeStaticString("\r\n")
        }
    }
}
