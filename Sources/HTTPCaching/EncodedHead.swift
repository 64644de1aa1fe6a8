import NIOHTTP1

/// A stored response's status line and header fields in HTTP/1.1 wire form, each field ending in
/// CRLF (the per-response fields and the blank line follow when it is sent).
///
/// This is the only form in which an entry keeps its header fields: hits copy the bytes, and the
/// rare paths that need a list (a 304, an HTTP/1.0 client, a refresh from a 304, the shared tier)
/// parse it back with `headers`. A list kept beside it cost each entry an array and a string per
/// long value, about as much again as a 1 KiB body's head.
public struct EncodedHead: Sendable, Equatable {
    public let bytes: ArraySlice<UInt8>

    public init(status: HTTPResponseStatus, headers: HTTPHeaders) {
        self = Self.encode(status: status, [headers])[0]
    }

    private init(bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
    }

    /// One head per header list, all with the same status, back to back in a single allocation of
    /// exactly their size (an entry's identity and gzip heads).
    public static func encode(status: HTTPResponseStatus, _ lists: [HTTPHeaders]) -> [EncodedHead] {
        let sizes = lists.map { wireSize(status: status, headers: $0) }
        let all = [UInt8](unsafeUninitializedCapacity: sizes.reduce(0, +)) { buffer, count in
            var at = 0
            for headers in lists { write(status: status, headers: headers, into: UnsafeMutableRawBufferPointer(buffer), at: &at) }
            count = at
        }
        var heads: [EncodedHead] = []
        var start = 0
        for size in sizes {
            heads.append(EncodedHead(bytes: all[start..<start + size]))
            start += size
        }
        return heads
    }

    /// The bytes of an HTTP/1.1 status line and the fields in wire form, each line ending in CRLF.
    public static func wireSize(status: HTTPResponseStatus, headers: HTTPHeaders) -> Int {
        var size = 9 + 3 + 1 + status.reasonPhrase.utf8.count + 2
        for (name, value) in headers { size += name.utf8.count + 2 + value.utf8.count + 2 }
        return size
    }

    /// Writes the status line and the fields (`wireSize` bytes) at `at`, which it moves past them.
    /// The status code is written as three digits (NIO's parser allows no other).
    public static func write(status: HTTPResponseStatus, headers: HTTPHeaders, into buffer: UnsafeMutableRawBufferPointer, at: inout Int) {
        put("HTTP/1.1 ", into: buffer, at: &at)
        let code = min(999, max(100, status.code))
        buffer[at] = UInt8(ascii: "0") + UInt8(code / 100)
        buffer[at + 1] = UInt8(ascii: "0") + UInt8(code / 10 % 10)
        buffer[at + 2] = UInt8(ascii: "0") + UInt8(code % 10)
        at += 3
        put(" ", into: buffer, at: &at)
        put(status.reasonPhrase, into: buffer, at: &at)
        put("\r\n", into: buffer, at: &at)
        for (name, value) in headers {
            put(name, into: buffer, at: &at)
            put(": ", into: buffer, at: &at)
            put(value, into: buffer, at: &at)
            put("\r\n", into: buffer, at: &at)
        }
    }

    /// The header fields, parsed back. Field names hold no colon and values no CR or LF (the HTTP
    /// parser and the shared tier's decoder refuse them), so each line splits at its first colon.
    public var headers: HTTPHeaders {
        var fields: [(String, String)] = []
        bytes.withUnsafeBufferPointer { p in
            var i = Self.lineEnd(p, from: 0) + 2  // after the status line
            while i < p.count {
                let end = Self.lineEnd(p, from: i)
                var colon = i
                while colon < end, p[colon] != .colon { colon += 1 }
                guard colon < end else { return }
                let valueStart = min(colon + 2, end)
                fields.append((String(decoding: UnsafeBufferPointer(rebasing: p[i..<colon]), as: UTF8.self),
                               String(decoding: UnsafeBufferPointer(rebasing: p[valueStart..<end]), as: UTF8.self)))
                i = end + 2
            }
        }
        return HTTPHeaders(fields)
    }

    private static func put(_ text: String, into buffer: UnsafeMutableRawBufferPointer, at: inout Int) {
        let copied: Int? = text.utf8.withContiguousStorageIfAvailable { bytes in
            UnsafeMutableRawBufferPointer(rebasing: buffer[at...]).copyMemory(from: UnsafeRawBufferPointer(bytes))
            return bytes.count
        }
        if let copied {
            at += copied
            return
        }
        for byte in text.utf8 {
            buffer[at] = byte
            at += 1
        }
    }

    private static func put(_ literal: StaticString, into buffer: UnsafeMutableRawBufferPointer, at: inout Int) {
        literal.withUTF8Buffer { bytes in
            UnsafeMutableRawBufferPointer(rebasing: buffer[at...]).copyMemory(from: UnsafeRawBufferPointer(bytes))
            at += bytes.count
        }
    }

    private static func lineEnd(_ p: UnsafeBufferPointer<UInt8>, from start: Int) -> Int {
        var i = start
        while i + 1 < p.count, !(p[i] == 13 && p[i + 1] == 10) { i += 1 }
        return i + 1 < p.count ? i : p.count
    }

}
