import NIOCore

/// Writes a head's bytes into memory reserved once, with a bounds check per piece and no other
/// work: each small `ByteBuffer` write costs a uniqueness check, an exclusivity check and a
/// capacity check, and a head is a few dozen of them. A piece that does not fit is not written
/// and marks the writer `overflowed`; `ByteBuffer.writeHead` then writes the head again with room
/// to spare.
public struct HeadBytes {
    @usableFromInline let base: UnsafeMutableRawBufferPointer
    @usableFromInline var written = 0
    @usableFromInline var full = false

    /// The bytes written so far.
    @inlinable public var count: Int { written }
    /// A piece did not fit (and was not written).
    @inlinable public var overflowed: Bool { full }

    @inlinable
    public init(_ base: UnsafeMutableRawBufferPointer) {
        self.base = base
    }

    /// Room for `n` more bytes, or nil (and `overflowed`) when there is none.
    @inlinable
    mutating func claim(_ n: Int) -> Int? {
        guard !full, n <= base.count - written else {
            full = true
            return nil
        }
        defer { written += n }
        return written
    }

    @inlinable
    public mutating func put(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count > 0, let at = claim(bytes.count), let to = base.baseAddress else { return }
        (to + at).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)  // count > 0: not nil
    }

    @inlinable
    public mutating func put(_ literal: StaticString) {
        literal.withUTF8Buffer { put(UnsafeRawBufferPointer($0)) }
    }

    @inlinable
    public mutating func put(_ text: String) {
        var text = text
        text.withUTF8 { put(UnsafeRawBufferPointer($0)) }
    }

    @inlinable
    public mutating func put(_ byte: UInt8) {
        guard let at = claim(1) else { return }
        base[at] = byte
    }

    /// `value` in decimal ASCII.
    @inlinable
    public mutating func putDecimal(_ value: Int64) {
        if value < 0 { put(UInt8(ascii: "-")) }
        var magnitude = value.magnitude
        var digits = 1
        var scale: UInt64 = 1
        while magnitude / scale >= 10 {
            scale *= 10
            digits += 1
        }
        guard let at = claim(digits) else { return }
        for i in 0..<digits {
            base[at + digits - 1 - i] = UInt8(ascii: "0") + UInt8(magnitude % 10)
            magnitude /= 10
        }
    }

    /// `n` bytes for `body` to fill (a value written by its own routine), or none when they do not fit.
    @inlinable
    public mutating func put(count n: Int, _ body: (UnsafeMutableRawBufferPointer) -> Void) {
        guard let at = claim(n) else { return }
        body(UnsafeMutableRawBufferPointer(rebasing: base[at..<at + n]))
    }
}

extension ByteBuffer {
    /// Appends what `body` writes, in one reservation of `capacity` bytes (twice that, and so on,
    /// when it did not fit). `body` may run more than once and must write the same bytes each time.
    @inlinable
    public mutating func writeHead(capacity: Int, _ body: (inout HeadBytes) -> Void) {
        var room = max(64, capacity)
        while true {
            var done = false
            writeWithUnsafeMutableBytes(minimumWritableBytes: room) { raw in
                var head = HeadBytes(raw)
                body(&head)
                done = !head.overflowed
                return done ? head.count : 0
            }
            if done { return }
            room *= 2
        }
    }
}
