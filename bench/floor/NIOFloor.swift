// What SwiftNIO itself costs per request on this machine, as floors for sidecache's figures:
//   bench-floor hit [port]                  NIO's request decoder and one pre-encoded response (head
//                                           and 1 KiB body, 64 KiB under /big/) written as bytes: the least a cache hit
//                                           can cost in NIO (default port 18286; it says X-Cache: HIT
//                                           so that ../shared/bench/anchors accepts it as a target)
//   bench-floor relay [port] [origin-port]  NIO's server codec towards the client and its client
//                                           handlers (addHTTPClientHandlers) towards the origin on
//                                           127.0.0.1, one kept-alive upstream connection per client
//                                           connection, parts passed through as they come: the least
//                                           a proxied request can cost in NIO (defaults 18285, 18080)
//   bench-floor wire-relay [port] [origin-port]
//                                           the same relay with sidecache's own wire layer (HTTPWire)
//                                           in place of NIO's codec: request heads parsed into spans
//                                           and relayed as their bytes plus a Via line, response heads
//                                           and bodies relayed as they came: the least a proxied request
//                                           can cost with NIO as the event loop (defaults 18287, 18080)
// No routing, no header rewriting, no cache, no log, no pipelining. Two event loops, as sidecache.
import HTTPWire
import NIOCore
import NIOHTTP1
import NIOPosix

let arguments = CommandLine.arguments
let mode = arguments.count > 1 ? arguments[1] : "hit"
let relaying = mode == "relay"
let wireRelaying = mode == "wire-relay"
let port = arguments.count > 2 ? Int(arguments[2]) ?? 0 : (wireRelaying ? 18287 : relaying ? 18285 : 18286)
let originPort = arguments.count > 3 ? Int(arguments[3]) ?? 18080 : 18080

func response(bodyBytes: Int) -> String {
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: \(bodyBytes)\r\nCache-Control: max-age=60\r\n"
        + "ETag: \"items-1\"\r\nAge: 0\r\nX-Cache: HIT\r\n\r\n" + String(repeating: "x", count: bodyBytes)
}
let small = response(bodyBytes: 1024)
/// For `/big/...`, as the benchmark's 64 KiB scenario asks.
let big = response(bodyBytes: 65536)

/// Answers every request with the same pre-encoded bytes (a 64 KiB body under `/big/`).
final class HitFloor: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = ByteBuffer
    private var isBig = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            isBig = head.uri.hasPrefix("/big/")
        case .body:
            break
        case .end:
            let response = isBig ? big : small
            var out = context.channel.allocator.buffer(capacity: response.utf8.count)
            out.writeString(response)
            context.write(wrapOutboundOut(out), promise: nil)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) { context.flush() }
}

/// Opens a client connection's own upstream connection, with the handlers `addHandlers` adds.
func connectToOrigin(on loop: any EventLoop,
                     _ addHandlers: @escaping @Sendable (ChannelPipeline.SynchronousOperations) throws -> Void) -> EventLoopFuture<any Channel> {
    ClientBootstrap(group: loop)
        .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
        .channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture { try addHandlers(channel.pipeline.syncOperations) }
        }
        .connect(host: "127.0.0.1", port: originPort)
}

/// The upstream side of a relay: hands response parts to the client side.
final class UpstreamSide: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    var client: ClientSide?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        client?.fromUpstream(unwrapInboundIn(data))
    }
}

/// The client side of a relay: connects its upstream connection when the client connects.
final class ClientSide: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart
    private var context: ChannelHandlerContext?
    private var upstream: (any Channel)?
    private var pending: [HTTPClientRequestPart] = []

    /// The context holds this handler: let go of it, or each closed connection stays in memory.
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        let side = NIOLoopBound(UpstreamSide(), eventLoop: context.eventLoop)
        side.value.client = self
        connectToOrigin(on: context.eventLoop) { pipeline in
            try pipeline.addHTTPClientHandlers(enableOutboundHeaderValidation: false)
            try pipeline.addHandler(side.value)
        }.assumeIsolated().whenSuccess { [self] channel in
                upstream = channel
                for part in pending { channel.write(part, promise: nil) }
                pending = []
                channel.flush()
            }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part: HTTPClientRequestPart
        switch unwrapInboundIn(data) {
        case .head(let h): part = .head(HTTPRequestHead(version: .http1_1, method: h.method, uri: h.uri, headers: h.headers))
        case .body(let b): part = .body(.byteBuffer(b))
        case .end(let t): part = .end(t)
        }
        guard let upstream else {
            pending.append(part)
            return
        }
        if case .end = part { upstream.writeAndFlush(part, promise: nil) } else { upstream.write(part, promise: nil) }
    }

    func fromUpstream(_ part: HTTPClientResponsePart) {
        guard let context else { return }
        switch part {
        case .head(let h):
            var headers = h.headers
            headers.add(name: "X-Cache", value: "HIT")  // the proxy's own field (anchors looks for it)
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: h.status, headers: headers))), promise: nil)
        case .body(let b): context.write(wrapOutboundOut(.body(.byteBuffer(b))), promise: nil)
        case .end(let t): context.writeAndFlush(wrapOutboundOut(.end(t)), promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        upstream?.close(promise: nil)
        upstream = nil
        context.fireChannelInactive()
    }
}

/// Hands each event the decoder finds in what has arrived to `handle`, keeping the rest for the
/// next read; a stream the decoder refuses closes the connection.
func decodeEach<Event>(_ data: ByteBuffer, _ unread: inout UnreadBytes, context: ChannelHandlerContext,
                       next: (inout ByteBuffer) throws -> Event?, handle: (Event) -> Void) {
    unread.append(data)
    guard var bytes = unread.take() else { return }
    do {
        while let event = try next(&bytes) { handle(event) }
    } catch {
        context.close(promise: nil)
        return
    }
    unread.putBack(bytes)
}

/// The upstream side of a wire relay: response bytes parsed only for their framing and written to
/// the client as they came.
final class WireUpstreamSide: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    var client: WireClientSide?
    var decoder = ResponseStreamDecoder()
    private var unread = UnreadBytes()

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        decodeEach(unwrapInboundIn(data), &unread, context: context, next: { try decoder.next(&$0) }) { event in
            switch event {
            case .head(let head, _):
                // The head as received, less its empty line, plus one field of the proxy's own
                // (X-Cache, which ../shared/bench/anchors looks for).
                var out = context.channel.allocator.buffer(capacity: head.bytes.readableBytes + 16)
                out.writeImmutableBuffer(head.bytes.getSlice(at: head.bytes.readerIndex, length: head.bytes.readableBytes - 2) ?? ByteBuffer())
                out.writeStaticString("X-Cache: HIT\r\n\r\n")
                client?.toClient(out, end: false)
            case .body(let body): client?.toClient(body, end: false)
            case .end: client?.toClient(nil, end: true)
            }
        }
    }
}

/// The client side of a wire relay: request heads relayed as their own bytes plus a Via line.
final class WireClientSide: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    private var context: ChannelHandlerContext?
    private var upstream: (any Channel)?
    private var upstreamSide: WireUpstreamSide?
    private var pending: [ByteBuffer] = []
    private var decoder = RequestStreamDecoder()
    private var unread = UnreadBytes()

    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        let side = NIOLoopBound(WireUpstreamSide(), eventLoop: context.eventLoop)
        side.value.client = self
        upstreamSide = side.value
        connectToOrigin(on: context.eventLoop) { try $0.addHandler(side.value) }.assumeIsolated().whenSuccess { [self] channel in
                upstream = channel
                for part in pending { channel.write(part, promise: nil) }
                pending = []
                channel.flush()
            }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        decodeEach(unwrapInboundIn(data), &unread, context: context, next: { try decoder.next(&$0) }) { event in
            switch event {
            case .head(let head):
                var out = context.channel.allocator.buffer(capacity: head.bytes.readableBytes + 32)
                HeadWriter.relay(head, keep: { _ in true }, appending: [("Via", "1.1 floor")], into: &out)
                upstreamSide?.decoder.requestSent(isHEAD: head.methodString == "HEAD")
                send(out)
            case .body(let body): send(body)
            case .end: upstream?.flush()
            }
        }
    }

    private func send(_ bytes: ByteBuffer) {
        guard let upstream else {
            pending.append(bytes)
            return
        }
        upstream.write(bytes, promise: nil)
    }

    func toClient(_ bytes: ByteBuffer?, end: Bool) {
        guard let context else { return }
        if let bytes { context.write(wrapOutboundOut(bytes), promise: nil) }
        if end { context.flush() }
    }

    func channelInactive(context: ChannelHandlerContext) {
        upstream?.close(promise: nil)
        upstream = nil
        context.fireChannelInactive()
    }
}

let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
let server = try ServerBootstrap(group: group)
    .serverChannelOption(ChannelOptions.backlog, value: 1024)
    .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
    .childChannelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
    .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
            let ops = channel.pipeline.syncOperations
            if wireRelaying {
                try ops.addHandler(WireClientSide())
            } else if relaying {
                try ops.addHandler(HTTPResponseEncoder())
                try ops.addHandler(ByteToMessageHandler(HTTPRequestDecoder()))
                try ops.addHandler(ClientSide())
            } else {
                try ops.addHandler(ByteToMessageHandler(HTTPRequestDecoder()))
                try ops.addHandler(HitFloor())
            }
        }
    }
    .bind(host: "127.0.0.1", port: port).wait()
print("bench-floor \(wireRelaying ? "wire-relay" : relaying ? "relay" : "hit")\(relaying || wireRelaying ? " to 127.0.0.1:\(originPort)" : "") on \(server.localAddress.map { "\($0)" } ?? "?")")
try server.closeFuture.wait()
