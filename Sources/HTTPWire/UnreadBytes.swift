import NIOCore

/// The bytes a decoder has been given and not used yet. Reads are appended without a copy while
/// nothing is pending; what is left after decoding is kept with its read part dropped once that
/// grows, so a long-lived connection does not grow its buffer.
public struct UnreadBytes: Sendable {
    private var pending: ByteBuffer?

    public init() {}

    public var count: Int { pending?.readableBytes ?? 0 }

    public mutating func append(_ incoming: ByteBuffer) {
        guard var bytes = pending, bytes.readableBytes > 0 else {
            pending = incoming
            return
        }
        pending = nil  // one owner: the write below does not copy
        var incoming = incoming
        bytes.writeBuffer(&incoming)
        pending = bytes
    }

    /// Everything pending, now the caller's; nil when there is nothing.
    public mutating func take() -> ByteBuffer? {
        defer { pending = nil }
        guard let bytes = pending, bytes.readableBytes > 0 else { return nil }
        return bytes
    }

    /// Puts back what the caller did not use, ahead of anything appended since it took the bytes.
    /// True when something was appended meanwhile (the caller then decodes again).
    @discardableResult
    public mutating func putBack(_ rest: ByteBuffer) -> Bool {
        var rest = rest
        if rest.readerIndex > 4096 { rest.discardReadBytes() }
        guard let later = take() else {
            if rest.readableBytes > 0 { pending = rest }
            return false
        }
        pending = rest
        append(later)
        return true
    }

    public mutating func clear() { pending = nil }
}
