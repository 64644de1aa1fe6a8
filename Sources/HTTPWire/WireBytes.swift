/// Byte classes of RFC 9110 §5.6 and RFC 9112, as switches the compiler turns into tables.
public enum WireBytes {
    /// tchar: a byte of a token (method, field name, transfer coding, chunk extension name).
    @inlinable @inline(__always)
    public static func isTokenByte(_ c: UInt8) -> Bool {
        switch c {
        case 0x30...0x39, 0x41...0x5A, 0x61...0x7A: true
        case 0x21, 0x23, 0x24, 0x25, 0x26, 0x27, 0x2A, 0x2B, 0x2D, 0x2E, 0x5E, 0x5F, 0x60, 0x7C, 0x7E: true
        default: false
        }
    }

    /// A byte of a field value: VCHAR, obs-text, SP or HTAB; no other control byte, no DEL.
    @inlinable @inline(__always)
    public static func isFieldValueByte(_ c: UInt8) -> Bool {
        c == 0x09 || (c >= 0x20 && c != 0x7F)
    }

    /// A byte of a request target as sidecache accepts it: visible US-ASCII only.
    @inlinable @inline(__always)
    public static func isTargetByte(_ c: UInt8) -> Bool {
        c >= 0x21 && c <= 0x7E
    }

    @inlinable @inline(__always)
    static func isWhitespace(_ c: UInt8) -> Bool { c == 0x20 || c == 0x09 }

    @inlinable @inline(__always)
    public static func lower(_ c: UInt8) -> UInt8 { c >= 0x41 && c <= 0x5A ? c | 0x20 : c }

    /// True when `bytes[range]` equals `lowercase` ignoring ASCII case.
    @inlinable
    public static func equalsIgnoringCase(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ count: Int, _ lowercase: StaticString) -> Bool {
        guard count == lowercase.utf8CodeUnitCount else { return false }
        let literal = lowercase.utf8Start
        for i in 0..<count where lower(bytes[start + i]) != literal[i] { return false }
        return true
    }
}
