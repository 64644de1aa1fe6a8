import NIOCore

/// The requests of one connection, pipelined or not, out of its bytes as they arrive: each head,
/// its body as slices of the input, and its end. Socket-free: the proxy's channel handler and the
/// tests (against NIO's decoder as the oracle) drive the same value.
public struct RequestStreamDecoder: Sendable {
    public enum Event: Sendable {
        case head(ParsedRequestHead)
        case body(ByteBuffer)
        case end(trailers: [(name: String, value: String)])
    }

    private enum State: Sendable {
        case head
        case endPending
        case length(remaining: Int)
        case chunked(ChunkedDecoder)
    }

    private var parser: RequestHeadParser
    private var state: State = .head
    private let chunkLimits: ChunkedDecoder.Limits

    public init(limits: RequestHeadLimits = RequestHeadLimits(), chunkLimits: ChunkedDecoder.Limits = ChunkedDecoder.Limits()) {
        self.parser = RequestHeadParser(limits: limits)
        self.chunkLimits = chunkLimits
    }

    /// Between two messages: what arrives next is a request head (or nothing).
    public var isBetweenMessages: Bool {
        if case .head = state { return true }
        return false
    }

    /// The next event from `buffer`, which moves past the bytes it used; nil when more are needed.
    public mutating func next(_ buffer: inout ByteBuffer) throws(WireError) -> Event? {
        switch state {
        case .head:
            guard buffer.readableBytes > 0, let head = try parser.parse(&buffer) else { return nil }
            switch head.framing {
            case .none: state = .endPending
            case .length(let length): state = .length(remaining: length)
            case .chunked: state = .chunked(ChunkedDecoder(limits: chunkLimits))
            }
            return .head(head)
        case .endPending:
            state = .head
            return .end(trailers: [])
        case .length(let remaining):
            guard buffer.readableBytes > 0 else { return nil }
            let take = min(remaining, buffer.readableBytes)
            guard let slice = buffer.readSlice(length: take) else { return nil }
            state = take == remaining ? .endPending : .length(remaining: remaining - take)
            return .body(slice)
        case .chunked(var decoder):
            let event = try decoder.next(&buffer)
            state = .chunked(decoder)
            switch event {
            case nil:
                return nil
            case .data(let data):
                return .body(data)
            case .end(let trailers):
                state = .head
                return .end(trailers: trailers)
            }
        }
    }

    /// The peer ended its stream: an error when that cuts a message (bytes of an unfinished head,
    /// or a body still owed).
    public func finish(unreadBytes: Int) throws(WireError) {
        switch state {
        case .head: if unreadBytes > 0 { throw .truncated }
        case .endPending: break
        case .length, .chunked: throw .truncated
        }
    }
}
