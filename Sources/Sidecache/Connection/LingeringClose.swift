import NIOCore

/// Ends a connection in stages after its last response (RFC 9112 §9.6), as nginx's
/// `lingering_close`: the sending side is shut once the response is flushed, then whatever the
/// client still sends is read and dropped until it closes, falls silent for `timeout`, sends
/// `maxBytes`, or `time` has passed since the start; then the connection closes.
///
/// Closing at once with request bytes unread makes the kernel answer with a reset, and a reset that
/// arrives before the client read the response destroys it: a 400 for a request whose body was still
/// coming would then never be seen.
final class LingeringClose: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    struct Settings: Equatable {
        var time: TimeAmount
        var timeout: TimeAmount
        var maxBytes = 1 << 20
    }

    private let settings: Settings
    private var deadline = NIODeadline.distantFuture
    private var lastRead = NIODeadline.uptimeNanoseconds(0)
    private var discarded = 0
    private var timer: Scheduled<Void>?
    private var context: ChannelHandlerContext?

    init(settings: Settings) {
        self.settings = settings
    }

    /// Starts the lingering close of `channel` (on its event loop), or closes it at once when
    /// lingering is off or the client's side is already closed.
    static func begin(_ channel: any Channel, settings: Settings, clientClosed: Bool) {
        guard channel.isActive else { return }
        guard settings.time > .zero, !clientClosed else {
            channel.close(promise: nil)
            return
        }
        let handler = LingeringClose(settings: settings)
        do {
            try channel.pipeline.syncOperations.addHandler(handler, position: .first)
        } catch {
            channel.close(promise: nil)
            return
        }
        // Keep reading, or the client's bytes stay unread and the close below resets anyway.
        _ = channel.setOption(ChannelOptions.autoRead, value: true)
        channel.read()
        // Shuts the sending side once what is queued is written (NIO waits for the pending writes).
        channel.close(mode: .output).assumeIsolated().whenFailure { _ in channel.close(promise: nil) }
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        let now = context.eventLoop.now
        deadline = now + settings.time
        lastRead = now
        arm(context)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        discarded += unwrapInboundIn(data).readableBytes
        lastRead = context.eventLoop.now
        if discarded > settings.maxBytes { context.close(promise: nil) }
    }

    func channelReadComplete(context: ChannelHandlerContext) {}

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    private func arm(_ context: ChannelHandlerContext) {
        let next = min(deadline, lastRead + settings.timeout)
        timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: next) { [weak self] in
            guard let self, let context = self.context else { return }
            let now = context.eventLoop.now
            if now >= self.deadline || now >= self.lastRead + self.settings.timeout {
                context.close(promise: nil)
            } else {
                self.arm(context)
            }
        }
    }
}
