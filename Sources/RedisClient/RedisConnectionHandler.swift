import NIOCore

/// A command on its way to Redis with the promise its reply completes.
struct RedisRequest: Sendable {
    let command: RedisCommand
    let promise: EventLoopPromise<RESPValue>
    let deadline: NIODeadline
}

/// Writes commands and matches replies to them in order (Redis answers a connection's commands in
/// the order sent, so any number may be in flight: pipelining). Pub/sub messages, when a push
/// handler is set, are routed to it instead of to a waiting command.
///
/// One timer watches the oldest command: when it is overdue the connection is closed and every
/// waiting command fails, since a later reply could no longer be matched to its command.
final class RedisConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = RedisRequest
    typealias OutboundOut = ByteBuffer

    private struct Pending {
        let promise: EventLoopPromise<RESPValue>
        let deadline: NIODeadline
        let name: String
    }

    private let reader = RedisReplyReader()
    private var pending = CircularBuffer<Pending>()
    private var timer: Scheduled<Void>?
    private var closed = false
    private let onPush: (@Sendable (RESPValue) -> Void)?

    init(onPush: (@Sendable (RESPValue) -> Void)?) {
        self.onPush = onPush
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let request = unwrapOutboundIn(data)
        guard !closed else {
            request.promise.fail(RedisError(.connectionClosed, "connection closed before \(request.command) was sent"))
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        var buffer = context.channel.allocator.buffer(capacity: 64)
        RedisCommandEncoder.encode(request.command, into: &buffer)
        pending.append(Pending(promise: request.promise, deadline: request.deadline, name: request.command.description))
        armTimer(context: context)
        context.write(wrapOutboundOut(buffer), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        do {
            try reader.feed(unwrapInboundIn(data))
            while let reply = try reader.next() {
                route(reply, context: context)
            }
        } catch {
            failAll(error)
            context.close(promise: nil)
        }
    }

    private func route(_ reply: RESPValue, context: ChannelHandlerContext) {
        if let onPush, case .array(let parts) = reply, let kind = parts.first?.string, kind == "message" || kind == "pmessage" {
            onPush(reply)
            return
        }
        guard let waiting = pending.popFirst() else {
            // A reply nobody asked for: the stream is out of step, nothing later can be trusted.
            failAll(RedisError(.protocolError, "unexpected reply with no command waiting"))
            context.close(promise: nil)
            return
        }
        if case .error(let message) = reply {
            waiting.promise.fail(RedisError(.serverError, "\(waiting.name): \(message)"))
        } else {
            waiting.promise.succeed(reply)
        }
        if pending.isEmpty { cancelTimer() }
    }

    func channelInactive(context: ChannelHandlerContext) {
        closed = true
        cancelTimer()
        failAll(RedisError(.connectionClosed, "connection to redis closed"))
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        closed = true
        cancelTimer()
        failAll(RedisError(.connectionClosed, "connection to redis closed"))
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failAll(RedisError(.connectionClosed, "\(error)"))
        context.close(promise: nil)
    }

    private func failAll(_ error: any Error) {
        while let waiting = pending.popFirst() { waiting.promise.fail(error) }
    }

    // MARK: Timeout

    private func armTimer(context: ChannelHandlerContext) {
        guard timer == nil, let oldest = pending.first else { return }
        timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: oldest.deadline) { [self] in
            timer = nil
            guard let oldest = pending.first else { return }
            if oldest.deadline <= .now() {
                failAll(RedisError(.timeout, "no reply to \(oldest.name) in time"))
                context.close(promise: nil)
            } else {
                armTimer(context: context)
            }
        }
    }

    private func cancelTimer() {
        timer?.cancel()
        timer = nil
    }
}
