import NIOCore

/// How a request's body is delimited (RFC 9112 §6.3).
public enum RequestFraming: Equatable, Sendable {
    case none
    case length(Int)
    case chunked
}

/// What the `Connection` field's options ask for.
public struct ConnectionOptions: Equatable, Sendable {
    public var close = false
    public var keepAlive = false
    public var upgrade = false
    public init() {}

    /// Adds the options of one `Connection` field value (`p[span]`).
    mutating func add(_ p: UnsafeRawBufferPointer, _ span: ByteSpan) {
        FieldValues.forEachToken(p, span) { start, count in
            if WireBytes.equalsIgnoringCase(p, start, count, "close") { close = true }
            else if WireBytes.equalsIgnoringCase(p, start, count, "keep-alive") { keepAlive = true }
            else if WireBytes.equalsIgnoringCase(p, start, count, "upgrade") { upgrade = true }
        }
    }
}

/// A request head that passed the strict profile: its bytes, as received, and where each part
/// lies in them. Strings are made only on demand.
public struct ParsedRequestHead: Sendable {
    /// From the request line's first byte to the final CRLF, both included.
    public let bytes: ByteBuffer
    public let method: ByteSpan
    public let target: ByteSpan
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    public let minorVersion: Int
    public let fields: [WireField]
    public let framing: RequestFraming
    public let connection: ConnectionOptions
    /// The index in `fields` of the one `Host` field, if there is one.
    public let hostIndex: Int?

    init(bytes: ByteBuffer, method: ByteSpan, target: ByteSpan, minorVersion: Int, fields: [WireField],
         framing: RequestFraming, connection: ConnectionOptions, hostIndex: Int?) {
        self.bytes = bytes
        self.method = method
        self.target = target
        self.minorVersion = minorVersion
        self.fields = fields
        self.framing = framing
        self.connection = connection
        self.hostIndex = hostIndex
    }

    /// Whether the connection may carry another request after this one (RFC 9112 §9.3).
    public var keepAlive: Bool {
        minorVersion >= 1 ? !connection.close : (connection.keepAlive && !connection.close)
    }

    public func string(_ span: ByteSpan) -> String {
        bytes.getString(at: bytes.readerIndex + span.lowerBound, length: Int(span.count)) ?? ""
    }

    public var methodString: String { string(method) }
    public var targetString: String { string(target) }

    /// Each field's name and value as strings, in order.
    public var fieldStrings: [(name: String, value: String)] {
        fields.map { (string($0.name), string($0.value)) }
    }
}

extension ParsedRequestHead {
    /// A head sidecache makes itself (a background fetch), written as HTTP/1.1 bytes with the span of
    /// each part, as though a client had sent it, so that it is relayed like one. It has no body.
    /// A field whose name is not a token or whose value holds a byte no field value may hold is
    /// left out: nothing of it can reach the wire.
    public init(method: String, target: String, fields: [(name: String, value: String)]) {
        var bytes = ByteBuffer()
        bytes.reserveCapacity(method.utf8.count + target.utf8.count + 16 + fields.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count + 4 })
        let methodCount = bytes.writeString(method)
        bytes.writeInteger(UInt8(0x20))
        let targetStart = bytes.writerIndex
        let targetCount = bytes.writeString(target)
        bytes.writeStaticString(" HTTP/1.1\r\n")
        var spans: [WireField] = []
        spans.reserveCapacity(fields.count)
        var connection = ConnectionOptions()
        var hostIndex: Int?
        for (name, value) in fields {
            guard !name.isEmpty, name.utf8.allSatisfy(WireBytes.isTokenByte), value.utf8.allSatisfy(WireBytes.isFieldValueByte) else { continue }
            let lineStart = bytes.writerIndex
            let nameCount = bytes.writeString(name)
            bytes.writeStaticString(": ")
            let valueStart = bytes.writerIndex
            let valueCount = bytes.writeString(value)
            let field = WireField(name: ByteSpan(start: lineStart, count: nameCount), value: ByteSpan(start: valueStart, count: valueCount),
                                  line: ByteSpan(start: lineStart, count: bytes.writerIndex - lineStart))
            bytes.writeStaticString("\r\n")
            if hostIndex == nil, name.utf8.count == 4, name.lowercased() == "host" { hostIndex = spans.count }
            if name.lowercased() == "connection" {
                bytes.withUnsafeReadableBytes { connection.add($0, field.value) }
            }
            spans.append(field)
        }
        bytes.writeStaticString("\r\n")
        self.init(bytes: bytes, method: ByteSpan(start: 0, count: methodCount), target: ByteSpan(start: targetStart, count: targetCount),
                  minorVersion: 1, fields: spans, framing: .none, connection: connection, hostIndex: hostIndex)
    }
}
