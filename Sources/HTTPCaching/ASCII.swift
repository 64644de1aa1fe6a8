/// Byte-level helpers for header values: parsing them as bytes avoids Swift's Character (grapheme)
/// machinery and the allocations of `lowercased()`, which dominated the header work per request.
public enum ASCII {
    /// True when `bytes` equal `lowercase` (an ASCII literal in lower case), ignoring ASCII case.
    @inlinable
    public static func equalsIgnoringCase(_ bytes: UnsafeBufferPointer<UInt8>, _ lowercase: StaticString) -> Bool {
        guard bytes.count == lowercase.utf8CodeUnitCount else { return false }
        return lowercase.withUTF8Buffer { literal in
            for i in 0..<literal.count where lowercased(bytes[i]) != literal[i] { return false }
            return true
        }
    }

    /// True when `text` equals `lowercase` (an ASCII literal in lower case), ignoring ASCII case.
    @inlinable
    public static func equalsIgnoringCase(_ text: String, _ lowercase: StaticString) -> Bool {
        guard text.utf8.count == lowercase.utf8CodeUnitCount else { return false }
        var text = text
        return text.withUTF8 { equalsIgnoringCase($0, lowercase) }
    }

    /// True when the two byte strings are equal ignoring ASCII case (neither needs to be lowercase).
    public static func equalsIgnoringCase(_ a: UnsafeBufferPointer<UInt8>, _ b: UnsafeBufferPointer<UInt8>) -> Bool {
        guard a.count == b.count else { return false }
        for i in 0..<a.count where lowercased(a[i]) != lowercased(b[i]) { return false }
        return true
    }

    /// Calls `body` with each non-empty member of a comma-separated list (RFC 9110 §5.6.1), its
    /// surrounding spaces and tabs trimmed. Quoted strings are not special: the lists this reads
    /// (codings, field names, connection options) hold tokens.
    public static func forEachListMember(_ value: String, _ body: (UnsafeBufferPointer<UInt8>) -> Void) {
        var value = value
        value.withUTF8 { b in
            var i = 0
            while i < b.count {
                while i < b.count, b[i] == .comma || b[i] == .space || b[i] == .tab { i += 1 }
                let start = i
                while i < b.count, b[i] != .comma { i += 1 }
                var end = i
                while end > start, b[end - 1] == .space || b[end - 1] == .tab { end -= 1 }
                if end > start { body(UnsafeBufferPointer(rebasing: b[start..<end])) }
            }
        }
    }

    /// `bytes` up to the first `;` (a list member's value without its parameters), trimmed.
    public static func withoutParameters(_ bytes: UnsafeBufferPointer<UInt8>) -> UnsafeBufferPointer<UInt8> {
        var end = 0
        while end < bytes.count, bytes[end] != .semicolon { end += 1 }
        while end > 0, bytes[end - 1] == .space || bytes[end - 1] == .tab { end -= 1 }
        return UnsafeBufferPointer(rebasing: bytes[0..<end])
    }

    @inlinable
    public static func lowercased(_ byte: UInt8) -> UInt8 {
        byte &- 0x41 < 26 ? byte | 0x20 : byte
    }

    /// The decimal number in `bytes` (digits only, at most 18 of them); nil otherwise.
    @inlinable
    public static func decimal(_ bytes: UnsafeBufferPointer<UInt8>) -> Int64? {
        guard !bytes.isEmpty, bytes.count <= 18 else { return nil }
        var total: Int64 = 0
        for byte in bytes {
            guard byte &- 0x30 < 10 else { return nil }
            total = total * 10 + Int64(byte &- 0x30)
        }
        return total
    }
}

extension UInt8 {
    static let space: UInt8 = 0x20
    static let tab: UInt8 = 0x09
    static let comma: UInt8 = 0x2C
    static let equals: UInt8 = 0x3D
    static let quote: UInt8 = 0x22
    static let colon: UInt8 = 0x3A
    static let dash: UInt8 = 0x2D
    static let semicolon: UInt8 = 0x3B
}
