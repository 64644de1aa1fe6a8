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
