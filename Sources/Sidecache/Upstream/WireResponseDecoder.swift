import HTTPWire
import NIOCore
import NIOHTTP1

/// An upstream connection's response decoder: HTTPWire's strict response parser in place of NIO's
/// `HTTPResponseDecoder`, handing on the same parts. It is told of the requests going out, since a
/// response to HEAD has no body whatever its fields say (RFC 9112 §6.3).
///
/// A response outside the profile is an error, answered 502 by the proxy, never stored, and its
/// connection closed, as nginx does: a malformed head, obs-fold, a bad or conflicting
/// `Content-Length`, and `Content-Length` beside `Transfer-Encoding` or repeated (both are what
/// response splitting looks like). Interim (1xx) responses are handed on as heads with no end.
final class WireResponseDecoder: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = HTTPClientResponsePart

    private var decoder = ResponseStreamDecoder()
    private var unread = UnreadBytes()
    private var failed = false

    /// A request went out on the connection (the client handler writes requests as bytes and
    /// says which were HEADs).
    func requestSent(isHEAD: Bool) {
        decoder.requestSent(isHEAD: isHEAD)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !failed else { return }
        unread.append(unwrapInboundIn(data))
        while !failed, var bytes = unread.take() {
            do throws(WireError) {
                while !failed, let event = try decoder.next(&bytes) {
                    context.fireChannelRead(wrapInboundOut(Self.part(event)))
                }
            } catch {
                failed = true
                unread.clear()
                context.fireErrorCaught(UpstreamProtocolError(wire: error))
                return
            }
            guard unread.putBack(bytes) else { return }
        }
    }

    /// A body delimited by the close ends here; any other unfinished response is cut, which the
    /// client handler reports when the channel goes inactive.
    private func upstreamClosed(context: ChannelHandlerContext) {
        guard !failed else { return }
        if let event = try? decoder.finish(unreadBytes: unread.count) {
            context.fireChannelRead(wrapInboundOut(Self.part(event)))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        upstreamClosed(context: context)
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed { upstreamClosed(context: context) }
        context.fireUserInboundEventTriggered(event)
    }

    static func part(_ event: ResponseStreamDecoder.Event) -> HTTPClientResponsePart {
        switch event {
        case .head(let head, _): .head(responseHead(head))
        case .body(let data): .body(data)
        case .end(let trailers): .end(trailers.isEmpty ? nil : HTTPHeaders(trailers.map { ($0.name, $0.value) }))
        }
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
