import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// What the test origin received.
struct OriginRequest: Sendable {
    var method: HTTPMethod
    var uri: String
    var headers: HTTPHeaders
    var bodyBytes = 0
    var path: String { String(uri.split(separator: "?", maxSplits: 1).first ?? "") }
}

/// What the test origin answers; tests set it per request.
struct OriginReply: Sendable {
    var status: HTTPResponseStatus = .ok
    var headers: [(String, String)] = []
    var body: String = ""
    /// Bytes to send instead of `body` (binary content such as a gzip body).
    var bytes: [UInt8]? = nil
    /// Answer after this long (a slow origin).
    var delay: TimeAmount = .zero
    /// Stream this many bytes (chunked, 64 KiB at a time, following the connection's writability).
    var streamBytes: Int? = nil
    /// Close the connection instead of answering.
    var hangUp = false
    /// Reset the connection (RST) instead of answering.
    var reset = false
    /// Bytes written as they are instead of a response (garbage, a cut head or body), then the
    /// connection closes.
    var raw: [UInt8]? = nil
    /// Close the connection right after the response, without announcing it (`Connection: close`).
    var closeAfterReply = false
    /// Interim responses (status, fields) sent before the final one, e.g. 103 Early Hints.
    var interim: [(UInt, [(String, String)])] = []

    static func ok(_ body: String, _ headers: [(String, String)] = []) -> OriginReply {
        OriginReply(status: .ok, headers: headers, body: body)
    }
}

/// A real HTTP/1.1 origin on a free loopback port, with a programmable answer and a record of the
/// requests it received. `Upgrade: websocket` requests get a 101 and an echo of every byte.
final class TestOrigin: Sendable {
    typealias Responder = @Sendable (OriginRequest) -> OriginReply

    private let group: MultiThreadedEventLoopGroup
    /// The closure inside a struct: a bare closure kept in a generic box is reabstracted on every
    /// inout access, each adding a thunk around the last, until a long run overflows the stack.
    private struct Answering: Sendable {
        let reply: Responder
    }

    private let responder: NIOLockedValueBox<Answering>
    private let received = NIOLockedValueBox<[OriginRequest]>([])
    private let receivedCount = NIOLockedValueBox(0)
    /// Off for long runs: only `requestCount` is kept, so the origin's memory stays flat.
    let keepsRequests: Bool
    private let channel = NIOLockedValueBox<(any Channel)?>(nil)
    private let openConnections = NIOLockedValueBox(0)
    let port: Int

    private init(group: MultiThreadedEventLoopGroup, responder: @escaping Responder, port: Int, channel: any Channel, keepsRequests: Bool) {
        self.keepsRequests = keepsRequests
        self.group = group
        self.responder = NIOLockedValueBox(Answering(reply: responder))
        self.port = port
        self.channel.withLockedValue { $0 = channel }
    }

    static func start(port: Int = 0, keepsRequests: Bool = true, _ responder: @escaping Responder) async throws -> TestOrigin {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let box = NIOLockedValueBox<TestOrigin?>(nil)
        let upgrader = EchoUpgrader()
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    guard let origin = box.withLockedValue({ $0 }) else { return }
                    origin.openConnections.withLockedValue { $0 += 1 }
                    channel.closeFuture.whenComplete { _ in origin.openConnections.withLockedValue { $0 -= 1 } }
                    let handler = OriginHandler(origin: origin)
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(
                        withServerUpgrade: (upgraders: [upgrader], completionHandler: { _ in }))
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
            .bind(host: "127.0.0.1", port: port).get()
        let origin = TestOrigin(group: group, responder: responder, port: channel.localAddress?.port ?? 0, channel: channel, keepsRequests: keepsRequests)
        box.withLockedValue { $0 = origin }
        return origin
    }

    func respond(_ responder: @escaping Responder) { self.responder.withLockedValue { $0 = Answering(reply: responder) } }

    var requests: [OriginRequest] { received.withLockedValue { $0 } }
    func count(_ path: String) -> Int { requests.filter { $0.path == path }.count }
    var connections: Int { openConnections.withLockedValue { $0 } }

    func stop() async {
        try? await channel.withLockedValue({ $0 })?.close()
        try? await group.shutdownGracefully()
    }

    fileprivate func record(_ r: OriginRequest) {
        receivedCount.withLockedValue { $0 += 1 }
        if keepsRequests { received.withLockedValue { $0.append(r) } }
    }

    /// How many requests arrived (kept or not).
    var requestCount: Int { receivedCount.withLockedValue { $0 } }
    fileprivate func reply(to r: OriginRequest) -> OriginReply { responder.withLockedValue { $0 }.reply(r) }
}

private final class OriginHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let origin: TestOrigin
    private var current: OriginRequest?
    private var streamLeft = 0
    private var context: ChannelHandlerContext?
    private var keepAlive = true

    init(origin: TestOrigin) { self.origin = origin }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    /// Let go of the context (which holds this handler), or every closed connection stays in memory.
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            current = OriginRequest(method: head.method, uri: head.uri, headers: head.headers)
            keepAlive = head.isKeepAlive
        case .body(let buffer):
            current?.bodyBytes += buffer.readableBytes
        case .end:
            guard let request = current else { return }
            current = nil
            origin.record(request)
            let reply = origin.reply(to: request)
            if reply.delay == .zero {
                send(reply, for: request, context: context)
            } else {
                context.eventLoop.assumeIsolated().scheduleTask(in: reply.delay) { [self] in
                    self.send(reply, for: request, context: context)
                }
            }
        }
    }

    private func send(_ reply: OriginReply, for request: OriginRequest, context: ChannelHandlerContext) {
        if reply.hangUp {
            context.close(promise: nil)
            return
        }
        if reply.reset {
            // SO_LINGER with a zero timeout: close sends RST. Set on the loop, so done before close.
            _ = (context.channel as? any SocketOptionProvider)?.setSoLinger(linger(l_onoff: 1, l_linger: 0))
            context.close(promise: nil)
            return
        }
        if let raw = reply.raw, let below = try? context.pipeline.syncOperations.context(handlerType: HTTPResponseEncoder.self) {
            // Below the encoder: the bytes go out exactly as given.
            below.writeAndFlush(NIOAny(IOData.byteBuffer(ByteBuffer(bytes: raw)))).assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
            return
        }
        for (status, fields) in reply.interim {
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .init(statusCode: Int(status)), headers: HTTPHeaders(fields)))), promise: nil)
        }
        var headers = HTTPHeaders(reply.headers)
        if let n = reply.streamBytes {
            headers.replaceOrAdd(name: "Transfer-Encoding", value: "chunked")
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: reply.status, headers: headers))), promise: nil)
            streamLeft = n
            pump(context)
            return
        }
        let body = reply.bytes.map { ByteBuffer(bytes: $0) } ?? ByteBuffer(string: reply.body)
        if !headers.contains(name: "content-length") && reply.status != .notModified && reply.status != .noContent {
            headers.add(name: "Content-Length", value: String(body.readableBytes))
        }
        if !keepAlive { headers.replaceOrAdd(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: reply.status, headers: headers))), promise: nil)
        if request.method != .HEAD && body.readableBytes > 0 && reply.status != .notModified {
            context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        }
        let close = !keepAlive || reply.closeAfterReply
        context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
            if close { context.close(promise: nil) }
        }
    }

    private func pump(_ context: ChannelHandlerContext) {
        while streamLeft > 0 && context.channel.isWritable {
            let n = min(65536, streamLeft)
            streamLeft -= n
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(repeating: 0x78, count: n)))), promise: nil)
        }
        context.flush()
        if streamLeft == 0 {
            streamLeft = -1
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable && streamLeft > 0 { pump(context) }
        context.fireChannelWritabilityChanged()
    }
}

/// Accepts `Upgrade: websocket` and then echoes raw bytes.
private final class EchoUpgrader: HTTPServerProtocolUpgrader, Sendable {
    let supportedProtocol = "websocket"
    let requiredUpgradeHeaders: [String] = []

    func buildUpgradeResponse(channel: any Channel, upgradeRequest: HTTPRequestHead, initialResponseHeaders: HTTPHeaders) -> EventLoopFuture<HTTPHeaders> {
        var headers = initialResponseHeaders
        headers.add(name: "X-Echo", value: "yes")
        return channel.eventLoop.makeSucceededFuture(headers)
    }

    func upgrade(context: ChannelHandlerContext, upgradeRequest: HTTPRequestHead) -> EventLoopFuture<Void> {
        context.eventLoop.makeCompletedFuture {
            // Ahead of the origin's HTTP handler, which must never see raw bytes.
            try context.pipeline.syncOperations.addHandler(EchoHandler(), position: .after(context.handler))
        }
    }
}

private final class EchoHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.writeAndFlush(data, promise: nil)
    }
}
