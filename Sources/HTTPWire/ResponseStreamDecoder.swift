import NIOCore

/// The responses of one upstream connection out of its bytes as they arrive: each head (interim
/// 1xx heads included, with no end), the body as slices of the input, and its end. A response
/// outside the strict profile is an error. `requestSent` tells it which requests are HEADs, whose
/// responses have no body (RFC 9112 §6.3).
public struct ResponseStreamDecoder: Sendable {
    public enum Event: Sendable {
        case head(ParsedResponseHead, interim: Bool)
        case body(ByteBuffer)
        case end(trailers: [(name: String, value: String)])
    }

    private enum Body: Sendable {
        case none
        case length(remaining: Int)
        case chunked(ChunkedDecoder)
        case untilClose
    }

    private var parser: ResponseHeadParser
    /// Between responses when nil.
    private var body: Body?
    /// Whether each request sent and not yet answered was a HEAD, oldest in the lowest bit (a
    /// bit queue: no array to allocate per connection; 64 requests in flight at most are tracked).
    private var headRequests: UInt64 = 0
    private var pending = 0

    public init(maxHeadBytes: Int = 64 * 1024) {
        parser = ResponseHeadParser(maxHeadBytes: maxHeadBytes)
    }

    public mutating func requestSent(isHEAD: Bool) {
        guard pending < 64 else { return }
        if isHEAD { headRequests |= 1 << UInt64(pending) }
        pending += 1
    }

    /// The next event from `buffer`, which moves past the bytes it used; nil when more are needed.
    public mutating func next(_ buffer: inout ByteBuffer) throws(WireError) -> Event? {
        switch body {
        case nil:
            guard buffer.readableBytes > 0 else { return nil }
            let isHEAD = pending > 0 && headRequests & 1 == 1
            guard let head = try parser.parse(&buffer, requestMethodIsHEAD: isHEAD) else { return nil }
            if let violation = head.violation { throw violation }
            if (100..<200).contains(head.status) && head.status != 101 { return .head(head, interim: true) }
            if pending > 0 {
                headRequests >>= 1
                pending -= 1
            }
            switch head.framing {
            case .none: body = Body.none
            case .length(let n): body = n == 0 ? Body.none : .length(remaining: n)
            case .chunked: body = .chunked(ChunkedDecoder())
            case .untilClose: body = .untilClose
            }
            return .head(head, interim: false)
        case .none?:
            body = nil
            return .end(trailers: [])
        case .length(let remaining)?:
            guard buffer.readableBytes > 0 else { return nil }
            let take = min(remaining, buffer.readableBytes)
            guard let slice = buffer.readSlice(length: take) else { return nil }
            body = take == remaining ? Body.none : .length(remaining: remaining - take)
            return .body(slice)
        case .chunked(var decoder)?:
            let event = try decoder.next(&buffer)
            body = .chunked(decoder)
            switch event {
            case nil: return nil
            case .data(let data): return .body(data)
            case .end(let trailers):
                body = nil
                return .end(trailers: trailers)
            }
        case .untilClose?:
            guard buffer.readableBytes > 0, let all = buffer.readSlice(length: buffer.readableBytes) else { return nil }
            return .body(all)
        }
    }

    /// The upstream closed: the end of a body delimited by the close, nil between responses, and
    /// an error for a response cut short.
    public mutating func finish(unreadBytes: Int) throws(WireError) -> Event? {
        switch body {
        case nil:
            if unreadBytes > 0 { throw .truncated }
            return nil
        case .untilClose?:
            body = nil
            return .end(trailers: [])
        case .none?:
            body = nil
            return .end(trailers: [])
        case .length?, .chunked?:
            throw .truncated
        }
    }
}
