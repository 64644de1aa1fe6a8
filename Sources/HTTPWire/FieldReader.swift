import NIOCore

/// A parsed head's field names and values, compared as bytes without making strings. Valid only
/// inside `ParsedRequestHead.withFieldReader`.
public struct FieldReader {
    @usableFromInline let bytes: UnsafeRawBufferPointer
    public let fields: [WireField]

    @usableFromInline
    init(bytes: UnsafeRawBufferPointer, fields: [WireField]) {
        self.bytes = bytes
        self.fields = fields
    }

    /// The number of bytes in field `i`'s name.
    @inlinable
    public func nameCount(_ i: Int) -> Int { Int(fields[i].name.count) }

    /// True when field `i`'s name is `lowercase`, ignoring ASCII case.
    @inlinable
    public func name(_ i: Int, is lowercase: StaticString) -> Bool {
        WireBytes.equalsIgnoringCase(bytes, fields[i].name.lowerBound, Int(fields[i].name.count), lowercase)
    }

    /// True when field `i`'s name equals the bytes at `span`, ignoring ASCII case.
    public func name(_ i: Int, equals span: ByteSpan) -> Bool {
        let name = fields[i].name
        guard name.count == span.count else { return false }
        for k in 0..<Int(span.count) where WireBytes.lower(bytes[name.lowerBound + k]) != WireBytes.lower(bytes[span.lowerBound + k]) {
            return false
        }
        return true
    }

    public func value(_ i: Int) -> String {
        let span = fields[i].value
        return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[span.lowerBound..<span.upperBound]), as: UTF8.self)
    }

    /// The members of field `i`'s value, read as a comma-separated list, other than `close` and
    /// `keep-alive`: for a `Connection` field, the names of the fields it makes hop-by-hop.
    public func nominatedNames(_ i: Int, into names: inout [ByteSpan]) {
        FieldValues.forEachToken(bytes, fields[i].value) { start, count in
            if !WireBytes.equalsIgnoringCase(bytes, start, count, "close"), !WireBytes.equalsIgnoringCase(bytes, start, count, "keep-alive") {
                names.append(ByteSpan(start: start, count: count))
            }
        }
    }
}

extension ParsedRequestHead {
    /// Runs `body` with a reader of this head's fields.
    @inlinable
    public func withFieldReader<R>(_ body: (FieldReader) throws -> R) rethrows -> R {
        try bytes.withUnsafeReadableBytes { try body(FieldReader(bytes: $0, fields: fields)) }
    }
}
