import NIOCore

/// Limits of the request head parser.
public struct RequestHeadLimits: Sendable, Equatable {
    /// The request line, CRLF excluded (nginx's large_client_header_buffers default is 8 KiB).
    public var maxRequestLineBytes: Int
    /// The whole head, from the request line to the final CRLF (`limits.max_header_bytes`).
    public var maxHeadBytes: Int
    public var maxFields: Int

    public init(maxRequestLineBytes: Int = 8192, maxHeadBytes: Int = 32 * 1024, maxFields: Int = 100) {
        self.maxRequestLineBytes = maxRequestLineBytes
        self.maxHeadBytes = maxHeadBytes
        self.maxFields = maxFields
    }

    var boundary: HeadBoundary.Limits {
        HeadBoundary.Limits(maxFirstLineBytes: maxRequestLineBytes, maxHeadBytes: maxHeadBytes, maxFields: maxFields)
    }
}

/// Parses request heads of the strict profile out of bytes as they arrive: the bytes are looked at
/// once to find the head's end, then once to check and cut it; nothing is copied and no string is
/// made. Anything ambiguous is an error (`WireError`) and the connection must close after answering it.
public struct RequestHeadParser: Sendable {
    public let limits: RequestHeadLimits
    private var boundary: HeadBoundary

    public init(limits: RequestHeadLimits = RequestHeadLimits()) {
        self.limits = limits
        self.boundary = HeadBoundary(limits: limits.boundary, emptyFirstLine: .badRequestLine)
    }

    /// CR and LF bytes skipped before the request line (`HeadBoundary.skipStrayLineBreaks`).
    private var skipped = 0

    /// The head at the start of `buffer`'s readable bytes, which it then moves past; nil (and the
    /// buffer untouched) while the head is incomplete.
    public mutating func parse(_ buffer: inout ByteBuffer) throws(WireError) -> ParsedRequestHead? {
        if boundary.isFresh { try HeadBoundary.skipStrayLineBreaks(&buffer, skipped: &skipped, error: .badRequestLine) }
        let found: HeadBoundary.Found? = try buffer.withUnsafeReadableBytes { (bytes) throws(WireError) in
            try boundary.find(in: bytes)
        }
        guard let found else { return nil }
        skipped = 0
        guard let slice = buffer.readSlice(length: found.end) else { throw .truncated }
        return try Self.parseWhole(slice, lines: found.lines)
    }

    /// Checks and cuts a whole head (`bytes` from the request line through the final CRLF).
    static func parseWhole(_ bytes: ByteBuffer, lines: Int) throws(WireError) -> ParsedRequestHead {
        try bytes.withUnsafeReadableBytes { (p) throws(WireError) -> ParsedRequestHead in
            var i = 0
            // method SP
            while WireBytes.isTokenByte(p[i]) { i += 1 }
            guard i > 0, p[i] == 0x20 else { throw p[i] == 0x0D && p[i + 1] != 0x0A ? .bareLineBreak : .badRequestLine }
            let method = ByteSpan(start: 0, count: i)
            i += 1
            // target SP
            let targetStart = i
            // No fragment: request-target forms have none (RFC 9112 §3.2); clients do not send it.
            while WireBytes.isTargetByte(p[i]), p[i] != UInt8(ascii: "#") { i += 1 }
            guard i > targetStart, p[i] == 0x20 else { throw .badRequestLine }
            let target = ByteSpan(start: targetStart, count: i - targetStart)
            guard TargetForm.isValid(p, target, method: method) else { throw .badRequestLine }
            i += 1
            // HTTP/1.x CRLF
            guard i + 10 <= p.count else { throw .badRequestLine }
            let minor = try Self.version(p, at: i)
            i += 8
            guard p[i] == 0x0D, p[i + 1] == 0x0A else { throw .badRequestLine }
            i += 2

            var fields: [WireField] = []
            fields.reserveCapacity(lines - 1)
            try FieldLines.parse(p, from: i, to: p.count - 2, origin: 0, into: &fields)
            let semantics = try RequestSemantics.read(p, fields: fields, minorVersion: minor)
            return ParsedRequestHead(bytes: bytes, method: method, target: target, minorVersion: minor, fields: fields,
                                     framing: semantics.framing, connection: semantics.connection, hostIndex: semantics.hostIndex)
        }
    }

    /// `HTTP/1.0` or `HTTP/1.1` at `i` gives the minor version; another well-formed version is
    /// unsupported (505); anything else is a malformed request line.
    static func version(_ p: UnsafeRawBufferPointer, at i: Int) throws(WireError) -> Int {
        let isHTTP = p[i] == UInt8(ascii: "H") && p[i + 1] == UInt8(ascii: "T") && p[i + 2] == UInt8(ascii: "T")
            && p[i + 3] == UInt8(ascii: "P") && p[i + 4] == UInt8(ascii: "/")
        let major = p[i + 5], dot = p[i + 6], minor = p[i + 7]
        let digits = (0x30...0x39).contains(major) && (0x30...0x39).contains(minor)
        guard isHTTP, dot == UInt8(ascii: "."), digits else { throw .badRequestLine }
        guard major == UInt8(ascii: "1"), minor <= UInt8(ascii: "1") else { throw .unsupportedVersion }
        return Int(minor - 0x30)
    }
}

/// The fields that decide a request's framing and connection, checked under the strict profile.
enum RequestSemantics {
    struct Result {
        var framing: RequestFraming
        var connection: ConnectionOptions
        var hostIndex: Int?
    }

    static func read(_ p: UnsafeRawBufferPointer, fields: [WireField], minorVersion: Int) throws(WireError) -> Result {
        var hosts = 0
        var hostIndex: Int?
        var length: Int?
        var lengths = 0
        var transferEncodings = 0
        var chunked = false
        var connection = ConnectionOptions()
        for (index, field) in fields.enumerated() {
            let name = field.name
            switch name.count {
            case 4 where WireBytes.equalsIgnoringCase(p, name.lowerBound, 4, "host"):
                hosts += 1
                hostIndex = index
            case 10 where WireBytes.equalsIgnoringCase(p, name.lowerBound, 10, "connection"):
                connection.add(p, field.value)
            case 14 where WireBytes.equalsIgnoringCase(p, name.lowerBound, 14, "content-length"):
                lengths += 1
                length = FieldValues.contentLength(p, field.value)
                if length == nil { throw .badContentLength }
            case 17 where WireBytes.equalsIgnoringCase(p, name.lowerBound, 17, "transfer-encoding"):
                transferEncodings += 1
                chunked = try FieldValues.isChunkedOnly(p, field.value)
            default:
                break
            }
        }
        if minorVersion >= 1 ? hosts != 1 : hosts > 1 { throw .hostCount }
        if lengths > 1 { throw .badContentLength }
        var framing = RequestFraming.none
        if transferEncodings > 0 {
            guard transferEncodings == 1, lengths == 0, minorVersion >= 1 else { throw .badTransferEncoding }
            guard chunked else { throw .unknownTransferCoding }
            framing = .chunked
        } else if let length, length > 0 {
            framing = .length(length)
        }
        return Result(framing: framing, connection: connection, hostIndex: hosts == 1 ? hostIndex : nil)
    }
}

/// Field values read as bytes.
enum FieldValues {
    /// Plain digits, no sign, list or space, at most 18 of them (no overflow); nil otherwise.
    static func contentLength(_ p: UnsafeRawBufferPointer, _ span: ByteSpan) -> Int? {
        guard span.count > 0, span.count <= 18 else { return nil }
        var value = 0
        for i in span.lowerBound..<span.upperBound {
            let c = p[i]
            guard c >= 0x30, c <= 0x39 else { return nil }
            value = value * 10 + Int(c - 0x30)
        }
        return value
    }

    /// Calls `body` with the start and length of each member of a comma-separated list, trimmed.
    static func forEachToken(_ p: UnsafeRawBufferPointer, _ span: ByteSpan, _ body: (Int, Int) -> Void) {
        var i = span.lowerBound
        let end = span.upperBound
        while i < end {
            while i < end, p[i] == UInt8(ascii: ",") || WireBytes.isWhitespace(p[i]) { i += 1 }
            let start = i
            while i < end, p[i] != UInt8(ascii: ",") { i += 1 }
            var stop = i
            while stop > start, WireBytes.isWhitespace(p[stop - 1]) { stop -= 1 }
            if stop > start { body(start, stop - start) }
        }
    }

    /// True for exactly `chunked`; false for another list of tokens (a coding sidecache does not
    /// implement); anything else (an empty member, a non-token) is malformed.
    static func isChunkedOnly(_ p: UnsafeRawBufferPointer, _ span: ByteSpan) throws(WireError) -> Bool {
        if WireBytes.equalsIgnoringCase(p, span.lowerBound, Int(span.count), "chunked") { return true }
        _ = try lastCodingIsChunked(p, span)
        return false
    }

    /// Reads 1#token (tokens separated by OWS "," OWS, none empty); true when the last is `chunked`.
    static func lastCodingIsChunked(_ p: UnsafeRawBufferPointer, _ span: ByteSpan) throws(WireError) -> Bool {
        var i = span.lowerBound
        let end = span.upperBound
        while true {
            let start = i
            while i < end, WireBytes.isTokenByte(p[i]) { i += 1 }
            guard i > start else { throw .badTransferEncoding }
            let last = WireBytes.equalsIgnoringCase(p, start, i - start, "chunked")
            while i < end, WireBytes.isWhitespace(p[i]) { i += 1 }
            if i == end { return last }
            guard p[i] == UInt8(ascii: ",") else { throw .badTransferEncoding }
            i += 1
            while i < end, WireBytes.isWhitespace(p[i]) { i += 1 }
        }
    }
}

/// The four forms of request target (RFC 9112 §3.2): origin-form (`/path?query`), absolute-form
/// (`scheme://...`, which a server must accept), authority-form for CONNECT only, and `*` for OPTIONS only.
enum TargetForm {
    static func isValid(_ p: UnsafeRawBufferPointer, _ target: ByteSpan, method: ByteSpan) -> Bool {
        let start = target.lowerBound, count = Int(target.count)
        let first = p[start]
        if WireBytes.equalsIgnoringCase(p, method.lowerBound, Int(method.count), "connect") {
            // host:port, no path.
            var colon = false
            for j in start..<start + count {
                if p[j] == UInt8(ascii: "/") || p[j] == UInt8(ascii: "?") || p[j] == UInt8(ascii: "#") { return false }
                if p[j] == UInt8(ascii: ":") { colon = true }
            }
            return colon && first != UInt8(ascii: ":")
        }
        if first == UInt8(ascii: "/") { return true }
        if first == UInt8(ascii: "*") {
            return count == 1 && method.count == 7 && WireBytes.equalsIgnoringCase(p, method.lowerBound, 7, "options")
        }
        // scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ), then "://".
        guard isAlpha(first) else { return false }
        var j = start + 1
        while j < start + count, isAlpha(p[j]) || (0x30...0x39).contains(p[j]) || p[j] == UInt8(ascii: "+") || p[j] == UInt8(ascii: "-") || p[j] == UInt8(ascii: ".") {
            j += 1
        }
        guard j + 3 <= start + count, p[j] == UInt8(ascii: ":"), p[j + 1] == UInt8(ascii: "/"), p[j + 2] == UInt8(ascii: "/") else { return false }
        // The authority (RFC 3986 §3.2): [userinfo "@"] host [":" port], up to the path: one "@"
        // at most, and a port of digits only.
        j += 3
        var ats = 0
        var lastColon: Int?
        var closingBracket: Int?
        let authorityStart = j
        while j < start + count {
            let c = p[j]
            if c == UInt8(ascii: "/") || c == UInt8(ascii: "?") || c == UInt8(ascii: "#") { break }
            guard isAuthorityByte(c) else { return false }
            if c == UInt8(ascii: "@") { ats += 1; lastColon = nil; closingBracket = nil }
            if c == UInt8(ascii: ":") { lastColon = j }
            if c == UInt8(ascii: "]") { closingBracket = j }
            j += 1
        }
        guard ats <= 1, j > authorityStart else { return false }
        if let colon = lastColon, colon > (closingBracket ?? -1) {
            for k in colon + 1..<j where !(0x30...0x39).contains(p[k]) { return false }
        }
        return true
    }

    /// unreserved / pct-encoded / sub-delims / ":" / "@" / "[" / "]".
    static func isAuthorityByte(_ c: UInt8) -> Bool {
        if isAlpha(c) || (0x30...0x39).contains(c) { return true }
        switch c {
        case UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"), UInt8(ascii: "%"),
             UInt8(ascii: "!"), UInt8(ascii: "$"), UInt8(ascii: "&"), UInt8(ascii: "'"), UInt8(ascii: "("), UInt8(ascii: ")"),
             UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: ","), UInt8(ascii: ";"), UInt8(ascii: "="),
             UInt8(ascii: ":"), UInt8(ascii: "@"), UInt8(ascii: "["), UInt8(ascii: "]"):
            return true
        default:
            return false
        }
    }

    @inline(__always)
    static func isAlpha(_ c: UInt8) -> Bool { (c | 0x20) >= 0x61 && (c | 0x20) <= 0x7A }
}
