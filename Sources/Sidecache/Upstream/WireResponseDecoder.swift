import HTTPWire
import NIOCore
import NIOHTTP1

/// An upstream connection's response decoder: HTTPWire's strict response parser in place of NIO's
/// `HTTPResponseDecoder`, handing on the same parts. It watches the requests going out, since a
/// response to HEAD has no body whatever its fields say (RFC 9112 §6.3).
///
/// A response outside the profile is an error, answered 502 by the proxy, never stored, and its
/// connection closed, as nginx does: a malformed head, obs-fold, a bad or conflicting
/// `Content-Length`, and `Content-Length` beside `Transfer-Encoding` or repeated (both are what
/// response splitting looks like). Interim (1xx) responses are handed on as heads with no end.
final class WireResponseDecoder: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = HTTPClientResponsePart
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = HTTPClientRequestPart

    private enum Body {
        case none
        case length(remaining: Int)
        case chunked(ChunkedDecoder)
        case untilClose
    }

    private var parser = ResponseHeadParser()
    /// Between responses when nil.
    private var body: Body?
    /// Whether each request sent and not yet answered was a HEAD, oldest first.
    private var headRequests: [Bool] = []
    private var buffer: ByteBuffer?
    private var failed = false

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .head(let head) = unwrapOutboundIn(data) { headRequests.append(head.method == .HEAD) }
        context.write(data, promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !failed else { return }
        var incoming = unwrapInboundIn(data)
        var bytes: ByteBuffer
        if var pending = buffer, pending.readableBytes > 0 {
            buffer = nil
            pending.writeBuffer(&incoming)
            bytes = pending
        } else {
            bytes = incoming
        }
        buffer = nil
        do throws(WireError) {
            while !failed, let part = try next(&bytes) {
                context.fireChannelRead(wrapInboundOut(part))
            }
        } catch {
            failed = true
            context.fireErrorCaught(UpstreamProtocolError(wire: error))
            return
        }
        if bytes.readableBytes > 0 {
            if bytes.readerIndex > 4096 { bytes.discardReadBytes() }
            buffer = bytes
        }
    }

    /// The next part from `bytes`, or nil when more are needed.
    private func next(_ bytes: inout ByteBuffer) throws(WireError) -> HTTPClientResponsePart? {
        switch body {
        case nil:
            guard bytes.readableBytes > 0 else { return nil }
            let isHEAD = headRequests.first ?? false
            guard let head = try parser.parse(&bytes, requestMethodIsHEAD: isHEAD) else { return nil }
            if let violation = head.violation { throw violation }
            if (100..<200).contains(head.status) && head.status != 101 {
                return .head(Self.responseHead(head))  // interim: the final response follows
            }
            if !headRequests.isEmpty { headRequests.removeFirst() }
            switch head.framing {
            case .none: body = Body.none
            case .length(let n): body = n == 0 ? Body.none : .length(remaining: n)
            case .chunked: body = .chunked(ChunkedDecoder())
            case .untilClose: body = .untilClose
            }
            return .head(Self.responseHead(head))
        case .none?:
            body = nil
            return .end(nil)
        case .length(let remaining)?:
            guard bytes.readableBytes > 0 else { return nil }
            let take = min(remaining, bytes.readableBytes)
            guard let slice = bytes.readSlice(length: take) else { return nil }
            body = take == remaining ? Body.none : .length(remaining: remaining - take)
            return .body(slice)
        case .chunked(var decoder)?:
            let event = try decoder.next(&bytes)
            body = .chunked(decoder)
            switch event {
            case nil: return nil
            case .data(let data): return .body(data)
            case .end(let trailers):
                body = nil
                return .end(trailers.isEmpty ? nil : HTTPHeaders(trailers.map { ($0.name, $0.value) }))
            }
        case .untilClose?:
            guard bytes.readableBytes > 0, let all = bytes.readSlice(length: bytes.readableBytes) else { return nil }
            return .body(all)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        // A body delimited by the close ends here; any other unfinished response is cut, which the
        // client handler reports when the channel goes inactive.
        if !failed, case .untilClose? = body {
            body = nil
            context.fireChannelRead(wrapInboundOut(.end(nil)))
        }
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if !failed, let event = event as? ChannelEvent, event == .inputClosed, case .untilClose? = body {
            body = nil
            context.fireChannelRead(wrapInboundOut(.end(nil)))
        }
        context.fireUserInboundEventTriggered(event)
    }

    static func responseHead(_ head: ParsedResponseHead) -> HTTPResponseHead {
        var headers = HTTPHeaders()
        headers.reserveCapacity(head.fields.count)
        for field in head.fields { headers.add(name: head.string(field.name), value: head.string(field.value)) }
        return HTTPResponseHead(version: HTTPVersion(major: 1, minor: head.minorVersion),
                                status: HTTPResponseStatus(statusCode: head.status, reasonPhrase: head.string(head.reason)), headers: headers)
    }
}

/// An upstream response the strict profile refuses.
struct UpstreamProtocolError: Error, CustomStringConvertible {
    var wire: WireError
    var description: String { "malformed response: \(wire.description)" }
}
