#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import NIOHTTP1

/// Receives what one upstream exchange produces. Called on the upstream channel's event loop, which
/// is also the client connection's loop.
protocol UpstreamResponseDelegate: AnyObject {
    /// An interim (1xx) response before the final one: 102, 103 Early Hints... (never 100 or 101).
    func upstreamInterimResponse(_ head: HTTPResponseHead)
    func upstreamResponseHead(_ head: HTTPResponseHead)
    func upstreamResponseBody(_ buffer: ByteBuffer)
    func upstreamResponseEnd()
    /// The end of one read burst: a good moment to flush what was relayed.
    func upstreamReadComplete()
    func upstreamFailed(_ error: UpstreamError)
    /// The upstream connection's outbound buffer drained (or filled): request body forwarding follows it.
    func upstreamWritabilityChanged(isWritable: Bool)
}

/// The last handler of an upstream channel: hands response parts to the current delegate, enforces
/// the response timeout, and tells the pool when the connection is free again.
final class UpstreamClientHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = ByteBuffer

    enum State {
        case idle
        /// Request sent (or being sent); waiting for the response head.
        case awaitingHead
        case receivingBody(keepAlive: Bool)
        case closed
    }

    private var state = State.idle
    /// Held strongly for the length of one exchange and let go at its end, failure or abort (a weak
    /// reference would give every exchange object a side table to allocate and free).
    private var delegate: (any UpstreamResponseDelegate)?
    private var context: ChannelHandlerContext?
    private var timeout: Scheduled<Void>?
    private var deadline = NIODeadline.distantFuture
    private var timerDeadline = NIODeadline.distantFuture
    private var responseTimeout = TimeAmount.seconds(30)
    /// The request body goes out in chunks (the client sent it so, without a length).
    private var chunkedBody = false
    /// Told of each request sent, whose method decides whether its response has a body.
    let responseDecoder: WireResponseDecoder

    init(responseDecoder: WireResponseDecoder) {
        self.responseDecoder = responseDecoder
    }
    /// Reading was paused for a slow client and must be resumed before the connection is reused.
    private var readingPaused = false
    /// Called when an exchange finished and the connection may carry another request.
    var onReusable: (() -> Void)?
    /// Bytes of the current response read so far (none: a failure is a close before responding).
    private var responseStarted = false

    var isIdle: Bool { if case .idle = state { true } else { false } }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        // A channel closed before NIO announced it active (an exchange aborted inside the connect
        // callback) gets no channelInactive: its close future is the one signal every close gives.
        context.channel.closeFuture.assumeIsolated().whenComplete { [self] _ in connectionEnded() }
    }

    /// The context holds this handler: keeping it past removal would keep both, and the pipeline,
    /// alive after the channel closed (one of each for every upstream connection ever closed).
    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    /// Starts an exchange: writes the request head and arms the response timeout.
    func begin(head: UpstreamRequestHead, delegate: any UpstreamResponseDelegate, responseTimeout: TimeAmount) {
        guard let context, case .idle = state else {
            delegate.upstreamFailed(UpstreamError(.closedBeforeResponse, "connection was not ready", requestNotSent: true))
            return
        }
        self.delegate = delegate
        self.responseTimeout = responseTimeout
        chunkedBody = head.chunked
        responseStarted = false
        state = .awaitingHead
        armTimeout()
        responseDecoder.requestSent(isHEAD: head.isHEAD)
        context.write(wrapOutboundOut(head.bytes), promise: nil)
    }

    /// Body bytes as they came from the client; in chunks when the request is chunked (an empty
    /// buffer is no chunk: a chunk of size zero would end the body).
    func sendBody(_ buffer: ByteBuffer) {
        guard let context, buffer.readableBytes > 0 else { return }
        guard chunkedBody else {
            context.write(wrapOutboundOut(buffer), promise: nil)
            return
        }
        var size = context.channel.allocator.buffer(capacity: 18)
        size.writeString(String(buffer.readableBytes, radix: 16))
        size.writeStaticString("\r\n")
        context.write(wrapOutboundOut(size), promise: nil)
        context.write(wrapOutboundOut(buffer), promise: nil)
        context.write(wrapOutboundOut(Self.lineEnd), promise: nil)
    }

    /// The end of the request: the last chunk of a chunked body (with no trailer fields), and a flush.
    func sendEnd() {
        guard let context else { return }
        if chunkedBody { context.write(wrapOutboundOut(Self.lastChunk), promise: nil) }
        context.flush()
    }

    private static let lineEnd = ByteBuffer(string: "\r\n")
    private static let lastChunk = ByteBuffer(string: "0\r\n\r\n")

    func flush() { context?.flush() }

    var isWritable: Bool { context?.channel.isWritable ?? false }

    /// Stops or resumes reading the response (backpressure from a slow client). While paused the
    /// response timeout does not run: a slow client is not the upstream's fault.
    func setReading(_ on: Bool) {
        guard let context else { return }
        readingPaused = !on
        Self.setAutoRead(on, context: context)
        switch state {
        case .awaitingHead, .receivingBody:
            if on { armTimeout() } else { disarmTimeout() }
        case .idle, .closed:
            break
        }
    }

    /// Abandons the exchange: the connection cannot be reused because the response was not read to
    /// its end.
    func abort() {
        delegate = nil
        disarmTimeout()
        context?.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        switch (part, state) {
        case (.head(let head), .awaitingHead):
            responseStarted = true
            if head.status.code >= 100 && head.status.code < 200 && head.status != .switchingProtocols {
                // RFC 9110 §15.2: interim responses go to the client ahead of the final one; a 100
                // is not relayed (sidecache answers Expect: 100-continue itself).
                armTimeout()
                if head.status != .continue { delegate?.upstreamInterimResponse(head) }
                return
            }
            state = .receivingBody(keepAlive: head.isKeepAlive)
            armTimeout()
            delegate?.upstreamResponseHead(head)
        case (.body(let buffer), .receivingBody):
            armTimeout()
            delegate?.upstreamResponseBody(buffer)
        case (.end, .receivingBody(let keepAlive)):
            disarmTimeout()
            let d = delegate
            delegate = nil
            state = keepAlive ? .idle : .closed
            // The delegate runs first so it can record the end before the connection is reused.
            d?.upstreamResponseEnd()
            if keepAlive, context.channel.isActive {
                if readingPaused {
                    readingPaused = false
                    Self.setAutoRead(true, context: context)
                }
                onReusable?()
            } else {
                context.close(promise: nil)
            }
        default:
            // Data while idle, or out of order: the connection is not trustworthy any more.
            fail(UpstreamError(.invalidResponse, "sent an unexpected response"), context: context)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        delegate?.upstreamReadComplete()
        context.fireChannelReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        delegate?.upstreamWritabilityChanged(isWritable: context.channel.isWritable)
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(Self.classify(error, responseStarted: responseStarted, state: state), context: context)
    }

    /// A reset or broken pipe is the upstream closing, not a malformed response: before any byte of
    /// the response it is a close before responding, which a reused connection may retry.
    static func classify(_ error: any Error, responseStarted: Bool, state: State) -> UpstreamError {
        if let io = error as? IOError, [ECONNRESET, EPIPE, ECONNABORTED].contains(io.errnoCode) {
            switch state {
            case .awaitingHead where !responseStarted:
                return UpstreamError(.closedBeforeResponse, "reset the connection before responding (\(io.description))")
            case .awaitingHead, .receivingBody:
                return UpstreamError(.closedMidResponse, "reset the connection mid-response (\(io.description))")
            case .idle, .closed:
                break
            }
        }
        return UpstreamError(.invalidResponse, "protocol error: \(error)")
    }

    func channelInactive(context: ChannelHandlerContext) {
        connectionEnded()
        context.fireChannelInactive()
    }

    /// The connection is gone: the exchange in progress, if any, fails. Runs once per close (from
    /// channelInactive, or the close future when no channelInactive came).
    private func connectionEnded() {
        switch state {
        case .awaitingHead:
            report(UpstreamError(.closedBeforeResponse, "closed the connection before responding"))
        case .receivingBody:
            report(UpstreamError(.closedMidResponse, "closed the connection mid-response"))
        case .idle, .closed:
            break
        }
        state = .closed
        timeout?.cancel()
        timeout = nil
        onReusable = nil
    }

    private func fail(_ error: UpstreamError, context: ChannelHandlerContext) {
        report(error)
        state = .closed
        context.close(promise: nil)
    }

    private func report(_ error: UpstreamError) {
        disarmTimeout()
        let d = delegate
        delegate = nil
        d?.upstreamFailed(error)
    }

    /// Moves the response deadline. One timer at most, re-armed lazily: pushing the deadline later
    /// (every body read does) costs a store; the timer, firing early, re-schedules itself for the
    /// rest. NIO's timer queue removes cancelled tasks by linear search, so cancelling and
    /// re-scheduling per read would cost more than the read.
    private func armTimeout() {
        deadline = (context?.eventLoop.now ?? .now()) + responseTimeout
        if timeout != nil, timerDeadline <= deadline { return }
        scheduleTimer(at: deadline)
    }

    private func scheduleTimer(at when: NIODeadline) {
        guard let context else { return }
        timeout?.cancel()
        timerDeadline = when
        timeout = context.eventLoop.assumeIsolated().scheduleTask(deadline: when) { [weak self] in
            self?.timerFired()
        }
    }

    private func timerFired() {
        timeout = nil
        guard let context else { return }
        switch state {
        case .awaitingHead, .receivingBody:
            if context.eventLoop.now >= deadline {
                fail(UpstreamError(.responseTimeout, "did not respond within \(Self.describe(responseTimeout))"), context: context)
            } else {
                scheduleTimer(at: deadline)
            }
        case .idle, .closed:
            break
        }
    }

    /// Stops the deadline (the exchange ended, or reading is paused for a slow client).
    private func disarmTimeout() {
        deadline = .distantFuture
    }

    private static func setAutoRead(_ on: Bool, context: ChannelHandlerContext) {
        if let options = context.channel.syncOptions {
            try? options.setOption(ChannelOptions.autoRead, value: on)
        } else {
            _ = context.channel.setOption(ChannelOptions.autoRead, value: on)
        }
    }

    static func describe(_ t: TimeAmount) -> String {
        let ms = t.nanoseconds / 1_000_000
        return ms % 1000 == 0 ? "\(ms / 1000)s" : "\(ms)ms"
    }
}
