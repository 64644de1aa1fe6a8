import NIOCore

/// Decodes a chunked body (RFC 9112 §7.1) as its bytes arrive, strictly: a chunk-size is 1-16 hex
/// digits, extensions follow the token / quoted-string grammar, every chunk's data ends in CRLF, and
/// the trailer section follows the field rules. Data is handed out as slices of the input.
public struct ChunkedDecoder: Sendable {
    public struct Limits: Sendable, Equatable {
        /// A chunk-size line with its extensions, CRLF excluded.
        public var maxSizeLineBytes: Int
        /// The trailer section.
        public var maxTrailerBytes: Int
        public var maxTrailerFields: Int

        public init(maxSizeLineBytes: Int = 4096, maxTrailerBytes: Int = 8192, maxTrailerFields: Int = 100) {
            self.maxSizeLineBytes = maxSizeLineBytes
            self.maxTrailerBytes = maxTrailerBytes
            self.maxTrailerFields = maxTrailerFields
        }
    }

    public enum Event: Sendable {
        case data(ByteBuffer)
        /// The body is over; the trailer fields, if there were any, as received.
        case end(trailers: [(name: String, value: String)])
    }

    private enum State: Sendable {
        case sizeLine(scanned: Int)
        case data(remaining: Int)
        case dataEnd
        case trailers(HeadBoundary)
        case done
    }

    private var state: State = .sizeLine(scanned: 0)
    private let limits: Limits

    public init(limits: Limits = Limits()) {
        self.limits = limits
    }

    public var isDone: Bool {
        if case .done = state { return true }
        return false
    }

    /// The next piece of the body from `buffer`, which moves past what it used; nil when more bytes are needed.
    public mutating func next(_ buffer: inout ByteBuffer) throws(WireError) -> Event? {
        while true {
            switch state {
            case .sizeLine(let scanned):
                let result: (lf: Int?, scanned: Int) = buffer.withUnsafeReadableBytes { p in
                    var i = scanned
                    while i < p.count { if p[i] == 0x0A { return (i, i) }; i += 1 }
                    return (nil, i)
                }
                guard let lf = result.lf else {
                    if result.scanned > limits.maxSizeLineBytes + 1 { throw .chunkMetadataTooLarge }
                    state = .sizeLine(scanned: result.scanned)
                    return nil
                }
                guard lf <= limits.maxSizeLineBytes + 1 else { throw .chunkMetadataTooLarge }
                let size: Int = try buffer.withUnsafeReadableBytes { (p) throws(WireError) in
                    guard lf > 0, p[lf - 1] == 0x0D else { throw .badChunk }
                    return try Self.chunkSize(p, end: lf - 1)
                }
                buffer.moveReaderIndex(forwardBy: lf + 1)
                if size == 0 {
                    state = .trailers(HeadBoundary(limits: .init(maxFirstLineBytes: limits.maxTrailerBytes, maxHeadBytes: limits.maxTrailerBytes,
                                                                 maxFields: limits.maxTrailerFields - 1),
                                                   emptyFirstLine: .badTrailer))
                } else {
                    state = .data(remaining: size)
                }
            case .data(let remaining):
                guard buffer.readableBytes > 0 else { return nil }
                let take = min(remaining, buffer.readableBytes)
                guard let slice = buffer.readSlice(length: take) else { return nil }
                state = take == remaining ? .dataEnd : .data(remaining: remaining - take)
                return .data(slice)
            case .dataEnd:
                guard buffer.readableBytes >= 2 else {
                    if buffer.readableBytes == 1, buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) != 0x0D { throw .badChunk }
                    return nil
                }
                guard buffer.readInteger(as: UInt16.self) == 0x0D0A else { throw .badChunk }
                state = .sizeLine(scanned: 0)
            case .trailers(var boundary):
                // The empty line right away is the common case: no trailers.
                if buffer.readableBytes >= 2, buffer.getInteger(at: buffer.readerIndex, as: UInt16.self) == 0x0D0A {
                    buffer.moveReaderIndex(forwardBy: 2)
                    state = .done
                    return .end(trailers: [])
                }
                let found: HeadBoundary.Found?
                do throws(WireError) {
                    found = try buffer.withUnsafeReadableBytes { (p) throws(WireError) in try boundary.find(in: p, tooLong: .chunkMetadataTooLarge) }
                } catch {
                    throw error == .headTooLarge || error == .chunkMetadataTooLarge ? .chunkMetadataTooLarge : .badTrailer
                }
                guard let found else {
                    state = .trailers(boundary)
                    return nil
                }
                guard let section = buffer.readSlice(length: found.end) else { throw .truncated }
                let trailers: [(name: String, value: String)] = try section.withUnsafeReadableBytes { (p) throws(WireError) in
                    var fields: [WireField] = []
                    do throws(WireError) {
                        try FieldLines.parse(p, from: 0, to: p.count - 2, origin: 0, into: &fields, invalidValue: .badTrailer)
                    } catch {
                        throw .badTrailer
                    }
                    return fields.map { field in
                        (String(decoding: UnsafeRawBufferPointer(rebasing: p[field.name.lowerBound..<field.name.upperBound]), as: UTF8.self),
                         String(decoding: UnsafeRawBufferPointer(rebasing: p[field.value.lowerBound..<field.value.upperBound]), as: UTF8.self))
                    }
                }
                state = .done
                return .end(trailers: trailers)
            case .done:
                return nil
            }
        }
    }

    /// The size of a chunk-size line's chunk (`p[0..<end]`, CRLF excluded), its extensions checked.
    static func chunkSize(_ p: UnsafeRawBufferPointer, end: Int) throws(WireError) -> Int {
        var i = 0
        var size: UInt64 = 0
        while i < end, let digit = hexValue(p[i]) {
            guard i < 16 else { throw .badChunk }
            size = size << 4 | UInt64(digit)
            i += 1
        }
        guard i > 0, size <= UInt64(Int.max) else { throw .badChunk }
        try extensions(p, from: i, to: end)
        return Int(size)
    }

    /// chunk-ext = *( ";" chunk-ext-name [ "=" chunk-ext-val ] ), val = token / quoted-string.
    /// RFC 9112 §7.1.1 allows BWS around `;` and `=`; the profile does not, as llhttp does not:
    /// whitespace there is where parsers disagree about where a chunk starts.
    static func extensions(_ p: UnsafeRawBufferPointer, from start: Int, to end: Int) throws(WireError) {
        var i = start
        func token() throws(WireError) {
            let s = i
            while i < end, WireBytes.isTokenByte(p[i]) { i += 1 }
            guard i > s else { throw .badChunk }
        }
        while i < end {
            guard p[i] == UInt8(ascii: ";") else { throw .badChunk }
            i += 1
            try token()
            guard i < end, p[i] == UInt8(ascii: "=") else { continue }
            i += 1
            guard i < end, p[i] == UInt8(ascii: "\"") else {
                try token()
                continue
            }
            i += 1
            var closed = false
            while i < end {
                let c = p[i]
                if c == UInt8(ascii: "\"") { closed = true; i += 1; break }
                if c == UInt8(ascii: "\\") {
                    guard i + 1 < end, WireBytes.isFieldValueByte(p[i + 1]) else { throw .badChunk }
                    i += 2
                    continue
                }
                guard WireBytes.isFieldValueByte(c) else { throw .badChunk }
                i += 1
            }
            guard closed else { throw .badChunk }
        }
    }

    @inline(__always)
    static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: c - 0x30
        case 0x41...0x46: c - 0x41 + 10
        case 0x61...0x66: c - 0x61 + 10
        default: nil
        }
    }
}
