import NIOCore

/// How a response's body is delimited (RFC 9112 §6.3).
public enum ResponseFraming: Equatable, Sendable {
    /// No body: a response to HEAD, 1xx, 204 or 304.
    case none
    case length(Int)
    case chunked
    /// Read until the upstream closes: no Content-Length, or a transfer coding that does not end in chunked.
    case untilClose
}

/// A response head of the strict profile, its bytes as received and where each part lies in them.
public struct ParsedResponseHead: Sendable {
    public let bytes: ByteBuffer
    public let minorVersion: Int
    public let status: Int
    public let reason: ByteSpan
    public let fields: [WireField]
    public let framing: ResponseFraming
    public let connection: ConnectionOptions
    /// The head is valid HTTP but outside the profile in a way that must not be relayed byte for
    /// byte (Content-Length beside Transfer-Encoding, a repeated Content-Length of equal values):
    /// it is re-serialised, not cached, and its connection is not reused.
    public var breaksProfile: Bool { violation != nil }
    /// Which rule `breaksProfile` is about.
    public let violation: WireError?
    /// The Content-Length field Transfer-Encoding overrides, which a re-serialised head leaves out.
    public let ignoredLengthField: Int?

    public var keepAlive: Bool {
        guard !breaksProfile, framing != .untilClose else { return false }
        return minorVersion >= 1 ? !connection.close : (connection.keepAlive && !connection.close)
    }

    public func string(_ span: ByteSpan) -> String {
        bytes.getString(at: bytes.readerIndex + span.lowerBound, length: Int(span.count)) ?? ""
    }

    public var fieldStrings: [(name: String, value: String)] {
        fields.map { (string($0.name), string($0.value)) }
    }
}

/// Parses upstream response heads, strictly (obs-fold, bare CR or LF, bad names or values and
/// conflicting lengths are errors, answered with 502 by the proxy).
public struct ResponseHeadParser: Sendable {
    private var boundary: HeadBoundary
    private var skipped = 0

    public init(maxHeadBytes: Int = 64 * 1024, maxFields: Int = 200) {
        boundary = HeadBoundary(limits: .init(maxFirstLineBytes: 8192, maxHeadBytes: maxHeadBytes, maxFields: maxFields), emptyFirstLine: .badStatusLine)
    }

    /// The head at the start of `buffer`, which moves past it; nil while it is incomplete.
    /// `requestMethodIsHEAD` decides the framing of a response to HEAD.
    public mutating func parse(_ buffer: inout ByteBuffer, requestMethodIsHEAD: Bool) throws(WireError) -> ParsedResponseHead? {
        // Stray CR and LF bytes before a status line (an extra CRLF after a body), as llhttp skips them.
        if boundary.isFresh { try HeadBoundary.skipStrayLineBreaks(&buffer, skipped: &skipped, error: .badStatusLine) }
        let found: HeadBoundary.Found? = try buffer.withUnsafeReadableBytes { (bytes) throws(WireError) in
            try boundary.find(in: bytes, tooLong: .badStatusLine)
        }
        guard let found else { return nil }
        skipped = 0
        guard let slice = buffer.readSlice(length: found.end) else { throw .truncated }
        return try Self.parseWhole(slice, lines: found.lines, requestMethodIsHEAD: requestMethodIsHEAD)
    }

    static func parseWhole(_ bytes: ByteBuffer, lines: Int, requestMethodIsHEAD: Bool) throws(WireError) -> ParsedResponseHead {
        try bytes.withUnsafeReadableBytes { (p) throws(WireError) -> ParsedResponseHead in
            // HTTP/1.x SP 3DIGIT [SP reason] CRLF
            guard p.count >= 16, p[0] == UInt8(ascii: "H"), p[1] == UInt8(ascii: "T"), p[2] == UInt8(ascii: "T"), p[3] == UInt8(ascii: "P"),
                  p[4] == UInt8(ascii: "/"), p[5] == UInt8(ascii: "1"), p[6] == UInt8(ascii: "."),
                  p[7] == UInt8(ascii: "0") || p[7] == UInt8(ascii: "1"), p[8] == 0x20 else { throw .badStatusLine }
            let minor = Int(p[7] - 0x30)
            var status = 0
            for i in 9..<12 {
                guard p[i] >= 0x30, p[i] <= 0x39 else { throw .badStatusLine }
                status = status * 10 + Int(p[i] - 0x30)
            }
            // 1xx does not exist in HTTP/1.0 (RFC 9110 §15.2).
            guard status >= 100, minor == 1 || status >= 200 else { throw .badStatusLine }
            var i = 12
            var reasonStart = 12
            if p[i] == 0x20 {
                i += 1
                reasonStart = i
                while p[i] != 0x0D {
                    guard WireBytes.isFieldValueByte(p[i]) else { throw .badStatusLine }
                    i += 1
                }
            }
            guard p[i] == 0x0D, p[i + 1] == 0x0A else { throw p[i] == 0x0D ? .bareLineBreak : .badStatusLine }
            let reason = ByteSpan(start: reasonStart, count: i - reasonStart)
            i += 2
            var fields: [WireField] = []
            fields.reserveCapacity(lines - 1)
            try FieldLines.parse(p, from: i, to: p.count - 2, origin: 0, into: &fields)
            let semantics = try ResponseSemantics.read(p, fields: fields, status: status, requestMethodIsHEAD: requestMethodIsHEAD)
            return ParsedResponseHead(bytes: bytes, minorVersion: minor, status: status, reason: reason, fields: fields,
                                      framing: semantics.framing, connection: semantics.connection,
                                      violation: semantics.violation, ignoredLengthField: semantics.ignored)
        }
    }
}

/// RFC 9112 §6.3 for a response.
enum ResponseSemantics {
    struct Result {
        var framing: ResponseFraming
        var connection: ConnectionOptions
        var violation: WireError?
        var ignored: Int?
    }

    static func read(_ p: UnsafeRawBufferPointer, fields: [WireField], status: Int, requestMethodIsHEAD: Bool) throws(WireError) -> Result {
        var length: Int?
        var lengthFields = 0
        var firstLengthField: Int?
        var transferEncodings = 0
        var lastCodingIsChunked = false
        var connection = ConnectionOptions()
        for (index, field) in fields.enumerated() {
            let name = field.name
            switch name.count {
            case 10 where WireBytes.equalsIgnoringCase(p, name.lowerBound, 10, "connection"):
                connection.add(p, field.value)
            case 14 where WireBytes.equalsIgnoringCase(p, name.lowerBound, 14, "content-length"):
                // Plain digits only: a list, even of equal values (RFC 9110 §8.6 allows it), is
                // outside the profile, and lengths that differ are an error anyway.
                lengthFields += 1
                if firstLengthField == nil { firstLengthField = index }
                guard let value = FieldValues.contentLength(p, field.value), length == nil || length == value else { throw .badContentLength }
                length = value
            case 17 where WireBytes.equalsIgnoringCase(p, name.lowerBound, 17, "transfer-encoding"):
                transferEncodings += 1
                lastCodingIsChunked = try FieldValues.lastCodingIsChunked(p, field.value)
            default:
                break
            }
        }
        let repeatedLength = lengthFields > 1
        if requestMethodIsHEAD || (100..<200).contains(status) || status == 204 || status == 304 {
            return Result(framing: .none, connection: connection, violation: repeatedLength ? .badContentLength : nil, ignored: nil)
        }
        if transferEncodings > 0 {
            let ignored = firstLengthField
            return Result(framing: lastCodingIsChunked ? .chunked : .untilClose, connection: connection,
                          violation: ignored != nil || transferEncodings > 1 ? .badTransferEncoding : nil, ignored: ignored)
        }
        if let length {
            return Result(framing: .length(length), connection: connection, violation: repeatedLength ? .badContentLength : nil, ignored: nil)
        }
        return Result(framing: .untilClose, connection: connection, violation: nil, ignored: nil)
    }
}
