/// Where a piece of a head lies in the head's bytes: an offset from the head's first byte and a length.
public struct ByteSpan: Equatable, Hashable, Sendable {
    public var start: Int32
    public var count: Int32

    @inlinable
    public init(start: Int, count: Int) {
        self.start = Int32(truncatingIfNeeded: start)
        self.count = Int32(truncatingIfNeeded: count)
    }

    @inlinable public var lowerBound: Int { Int(start) }
    @inlinable public var upperBound: Int { Int(start) + Int(count) }
}

/// One field line: its name, and its value with the surrounding whitespace left out.
public struct WireField: Equatable, Sendable {
    public var name: ByteSpan
    public var value: ByteSpan
    /// The whole line without its CRLF, for relaying it as it came.
    public var line: ByteSpan

    @inlinable
    public init(name: ByteSpan, value: ByteSpan, line: ByteSpan) {
        self.name = name
        self.value = value
        self.line = line
    }
}
