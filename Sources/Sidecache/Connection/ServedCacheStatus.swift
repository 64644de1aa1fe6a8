import NIOCore

/// The `Cache-Status` value (RFC 9211) of a response served from a stored entry. A fresh hit's,
/// the common one, is written straight into the response head without building a string; the
/// others are text, written from string literals and interpolations.
enum ServedCacheStatus: ExpressibleByStringInterpolation {
    /// `sidecache; hit; ttl=<ttl>`, with `; tier=l2` for an entry just read from Redis.
    case freshHit(ttl: Int64, fromL2: Bool)
    case text(String)

    init(stringLiteral value: String) { self = .text(value) }

    init(stringInterpolation: DefaultStringInterpolation) { self = .text(String(stringInterpolation: stringInterpolation)) }

    var text: String {
        switch self {
        case .freshHit(let ttl, let fromL2): "sidecache; hit; ttl=\(ttl)" + (fromL2 ? "; tier=l2" : "")
        case .text(let text): text
        }
    }

    /// At least the bytes `write` adds.
    var maxBytes: Int {
        switch self {
        case .freshHit: 20 + 20 + 9
        case .text(let text): text.utf8.count
        }
    }

    func write(to buffer: inout ByteBuffer) {
        switch self {
        case .freshHit(let ttl, let fromL2):
            buffer.writeStaticString("sidecache; hit; ttl=")
            buffer.writeDecimal(ttl)
            if fromL2 { buffer.writeStaticString("; tier=l2") }
        case .text(let text):
            buffer.writeString(text)
        }
    }
}

extension ByteBuffer {
    /// `value` in decimal ASCII, without making a string.
    mutating func writeDecimal(_ value: Int64) {
        if value < 0 { writeInteger(UInt8(ascii: "-")) }
        var magnitude = value.magnitude
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { digits in
            var start = digits.count
            repeat {
                start -= 1
                digits[start] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
            } while magnitude > 0
            writeBytes(UnsafeBufferPointer(rebasing: digits[start...]))
        }
    }
}
