/// The field lines of a head (or a trailer section) checked byte by byte and cut into spans.
enum FieldLines {
    /// Parses the lines from `start` (the first field line) to `end` (the final CRLF's CR), each
    /// ending in CRLF, appending a span per field. Offsets are made relative to `origin`.
    static func parse(_ bytes: UnsafeRawBufferPointer, from start: Int, to end: Int, origin: Int,
                      into fields: inout [WireField], invalidValue: WireError = .badFieldValue) throws(WireError) {
        var i = start
        while i < end {
            let lineStart = i
            let first = bytes[i]
            if WireBytes.isWhitespace(first) { throw .foldedOrIndentedField }
            // The name: tokens up to the colon.
            while i < end, WireBytes.isTokenByte(bytes[i]) { i += 1 }
            guard i < end else { throw .badFieldName }
            let nameEnd = i
            switch bytes[i] {
            case UInt8(ascii: ":"):
                break
            case 0x20, 0x09:
                throw .whitespaceBeforeColon
            case 0x0D:
                throw bytes[i + 1] == 0x0A ? .badFieldName : .bareLineBreak
            default:
                throw .badFieldName
            }
            guard nameEnd > lineStart else { throw .badFieldName }
            i += 1
            while i < end, WireBytes.isWhitespace(bytes[i]) { i += 1 }
            let valueStart = i
            var valueEnd = i
            while true {
                let c = bytes[i]
                if c == 0x0D {
                    guard bytes[i + 1] == 0x0A else { throw .bareLineBreak }
                    break
                }
                guard WireBytes.isFieldValueByte(c) else { throw invalidValue }
                i += 1
                if !WireBytes.isWhitespace(c) { valueEnd = i }
            }
            fields.append(WireField(name: ByteSpan(start: lineStart - origin, count: nameEnd - lineStart),
                                    value: ByteSpan(start: valueStart - origin, count: valueEnd - valueStart),
                                    line: ByteSpan(start: lineStart - origin, count: i - lineStart)))
            i += 2
        }
    }
}
