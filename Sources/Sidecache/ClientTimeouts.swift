import NIOCore
import NIOHTTP1

/// Closes client connections that hold resources without making progress:
/// - `header_read_timeout`: from the first byte of a request (or from accepting the connection)
///   until its head is complete, so a slowloris client trickling header bytes is cut off;
/// - `idle_timeout`: between the end of a response and the first byte of the next request.
///
/// Two handlers share one state: `ClientByteWatcher` sits before the HTTP decoder and sees raw
/// bytes; `ClientTimeouts` sits after it and sees request heads and response ends.
final class ClientTimeouts: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    enum Phase {
        /// Waiting for the first byte of the next request.
        case idle
        /// Bytes of a request head are arriving.
        case readingHead
        /// A request is being processed; no client timeout applies.
        case busy
    }

    private(set) var phase = Phase.readingHead
    private let headerTimeout: TimeAmount
    private let idleTimeout: TimeAmount
    private var timer: Scheduled<Void>?
    private var context: ChannelHandlerContext?

    init(headerTimeout: TimeAmount, idleTimeout: TimeAmount) {
        self.headerTimeout = headerTimeout
        self.idleTimeout = idleTimeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        arm(headerTimeout)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        self.context = nil
    }

    /// Called by `ClientByteWatcher` for every read from the socket.
    func bytesArrived() {
        guard case .idle = phase else { return }
        phase = .readingHead
        arm(headerTimeout)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head = unwrapInboundIn(data) {
            phase = .busy
            timer?.cancel()
            timer = nil
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) {
            phase = .idle
            arm(idleTimeout)
        }
        context.write(data, promise: promise)
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        context.fireChannelInactive()
    }

    private func arm(_ amount: TimeAmount) {
        timer?.cancel()
        guard let context else { return }
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let armedPhase = phase
        timer = context.eventLoop.scheduleTask(in: amount) {
            let me = bound.value
            guard me.phase == armedPhase, me.phase != .busy else { return }
            me.context?.close(promise: nil)
        }
    }
}

/// Tells `ClientTimeouts` when raw bytes arrive, before the HTTP decoder has a complete head.
final class ClientByteWatcher: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let timeouts: ClientTimeouts

    init(timeouts: ClientTimeouts) { self.timeouts = timeouts }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        timeouts.bytesArrived()
        context.fireChannelRead(data)
    }
}
