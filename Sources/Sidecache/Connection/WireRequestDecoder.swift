import HTTPWire
import NIOCore
import NIOHTTP1

/// What the client connection's decoder hands the proxy: each request's parsed head (its bytes and
/// spans, relayed upstream as they came), its body, and its end.
enum ClientRequestPart {
    case head(ParsedRequestHead)
    case body(ByteBuffer)
    case end(HTTPHeaders?)

    var isHead: Bool {
        if case .head = self { return true }
        return false
    }
}

/// The client connection's request decoder: sidecache's strict HTTP/1 parser (`HTTPWire`) in
/// place of NIO's `HTTPRequestDecoder`. A request that breaks the profile is reported once as a
/// `WireError` (answered 400, 414, 431, 501 or 505 by the proxy), and nothing read after it is parsed.
///
/// Removed for a WebSocket upgrade, it passes the bytes it read past the last head on, as raw bytes.
final class WireRequestDecoder: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ClientRequestPart

    private var decoder: RequestStreamDecoder
    /// The proxy handler right behind this one, called directly: a part handed through the
    /// pipeline is boxed in an `NIOAny` and passes two contexts, about 5% of a cache hit. Let go
    /// when this handler leaves the pipeline (the two hold each other).
    var receiver: ProxyHandler?
    private var unread = UnreadBytes()
    private var failed = false
    private var decoding = false
    private var removedForUpgrade = false

    init(limits: RequestHeadLimits) {
        decoder = RequestStreamDecoder(limits: limits)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !failed else { return }
        unread.append(unwrapInboundIn(data))
        // A read that arrives while parts are being handed on (a handler up the pipeline made the
        // channel read) waits in `unread`: the loop below takes it after what came before it.
        guard !decoding else { return }
        decoding = true
        defer { decoding = false }
        while !failed, var bytes = unread.take() {
            do throws(WireError) {
                while !failed, let event = try decoder.next(&bytes) {
                    if let receiver {
                        receiver.received(Self.part(event))
                    } else {
                        context.fireChannelRead(wrapInboundOut(Self.part(event)))
                    }
                }
            } catch {
                failed = true
                unread.clear()
                context.fireErrorCaught(error)
                return
            }
            guard unread.putBack(bytes) else { return }
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed, !failed {
            do throws(WireError) {
                try decoder.finish(unreadBytes: unread.count)
            } catch {
                failed = true
                context.fireErrorCaught(error)
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    /// Leaves the pipeline on the next tick, after the handler that asked for the removal has gone
    /// too, so the bytes forwarded reach whatever replaced the HTTP handlers.
    func removeHandler(context: ChannelHandlerContext, removalToken: ChannelHandlerContext.RemovalToken) {
        removedForUpgrade = true
        context.eventLoop.assumeIsolated().execute {
            context.leavePipeline(removalToken: removalToken)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        receiver = nil
        // Only for an upgrade: when the channel closes, every handler is removed and nobody wants them.
        if removedForUpgrade, !failed, let rest = unread.take() {
            context.fireChannelRead(NIOAny(rest))
            context.fireChannelReadComplete()
        }
    }

    static func part(_ event: RequestStreamDecoder.Event) -> ClientRequestPart {
        switch event {
        case .head(let head):
            return .head(head)
        case .body(let data):
            return .body(data)
        case .end(let trailers):
            guard !trailers.isEmpty else { return .end(nil) }
            return .end(HTTPHeaders(trailers.map { ($0.name, $0.value) }))
        }
    }

    /// NIO's head for the request path, made from the parsed spans.
    static func requestHead(_ head: ParsedRequestHead) -> HTTPRequestHead {
        var headers = HTTPHeaders()
        headers.reserveCapacity(head.fields.count)
        for field in head.fields { headers.add(name: head.string(field.name), value: head.string(field.value)) }
        return HTTPRequestHead(version: HTTPVersion(major: 1, minor: head.minorVersion), method: HTTPMethod(rawValue: head.methodString),
                               uri: head.targetString, headers: headers)
    }
}
