import NIOCore
import NIOHTTP1

/// Client time-outs, kept by the proxy handler because it already sees each request head and each
/// response end:
/// - `header_read_timeout`: from accepting the connection, or from the first read of a request's
///   bytes, until its head is complete (a slowloris client trickling header bytes is cut off);
/// - `idle_timeout`: between the end of a response and the first byte of the next request.
///
/// One timer per connection at most, re-armed lazily: moving a deadline later costs a store, and the
/// timer, when it fires early, re-schedules itself for what is left. A busy keep-alive connection
/// therefore schedules about one timer per idle period, not one per request.
struct ClientDeadlines {
    enum Phase {
        case readingHead
        case busy
        case idle
    }

    var phase = Phase.readingHead
    var deadline = NIODeadline.distantFuture
    var timer: Scheduled<Void>?
    var timerDeadline = NIODeadline.distantFuture
    var headerTimeout = TimeAmount.seconds(10)
    var idleTimeout = TimeAmount.seconds(60)
}

extension ProxyHandler {
    func startDeadlines(context: ChannelHandlerContext) {
        let limits = runtime.config.configuration.limits
        deadlines.headerTimeout = .milliseconds(limits.headerReadTimeout.milliseconds)
        deadlines.idleTimeout = .milliseconds(limits.idleTimeout.milliseconds)
        deadlines.phase = .readingHead
        setDeadline(context.eventLoop.now + deadlines.headerTimeout)
    }

    /// A read from the socket ended (`channelReadComplete`). If no request head was completed
    /// in it, the bytes begin (or continue) a head: after an idle period the header deadline starts
    /// now, and at the start of a connection the deadline set on accepting it is armed.
    ///
    /// Knowing this at the end of a read instead of when the raw bytes arrive saves a handler in
    /// front of the decoder on every request. The cost: partial bytes of a next request that arrive
    /// in the same read as a complete request start their deadline at the following read.
    func readEnded(headCompleted: Bool) {
        guard !headCompleted else { return }
        switch deadlines.phase {
        case .idle:
            deadlines.phase = .readingHead
            setDeadline(loopNow + deadlines.headerTimeout)
        case .readingHead:
            setDeadline(deadlines.deadline)
        case .busy:
            return
        }
    }

    func requestHeadArrived() {
        deadlines.phase = .busy
    }

    func responseFinished() {
        deadlines.phase = .idle
        deadlines.deadline = loopNow + deadlines.idleTimeout
        if deadlines.timer == nil { setDeadline(deadlines.deadline) }
    }

    /// The connection's clock: its event loop's (an `EmbeddedEventLoop` moves it by hand).
    private var loopNow: NIODeadline { context?.eventLoop.now ?? .now() }

    func cancelDeadlines() {
        deadlines.timer?.cancel()
        deadlines.timer = nil
    }

    private func setDeadline(_ deadline: NIODeadline) {
        deadlines.deadline = deadline
        if deadlines.timer != nil, deadlines.timerDeadline <= deadline { return }
        guard let context else { return }
        deadlines.timer?.cancel()
        deadlines.timerDeadline = deadline
        deadlines.timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [weak self] in
            self?.deadlineTimerFired()
        }
    }

    private func deadlineTimerFired() {
        deadlines.timer = nil
        guard let context else { return }
        switch deadlines.phase {
        case .busy:
            return  // re-armed when the response ends
        case .readingHead, .idle:
            if context.eventLoop.now >= deadlines.deadline {
                context.close(promise: nil)
            } else {
                setDeadline(deadlines.deadline)
            }
        }
    }
}

extension ProxyHandler {
    /// Requests the HTTP parser rejects: 431 when the head overflows the parser's limit, 400 for
    /// anything else malformed, then the connection closes (the parser cannot resync). A request
    /// still in progress before the malformed one is answered first; the error answer follows it.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let parserError = error as? HTTPParserError else {
            context.fireErrorCaught(error)
            return
        }
        guard let r = request else {
            if queued.isEmpty { respondMalformed(parserError, context: context) } else { pendingParseError = parserError }
            return
        }
        // The malformed bytes may be the body of the request in progress (a short body, a bad
        // chunk): it can never end, so it is answered with the error now, or cut if its response
        // has started.
        if !r.requestEnded {
            r.abandonExchanges()
            queued.removeAll()
            if !r.responseStarted { r.status = parserError == .headerOverflow ? 431 : 400 }
            complete(r, drainingQueue: false)
            if r.responseStarted { context.close(promise: nil) } else { respondMalformed(parserError, context: context) }
            return
        }
        pendingParseError = parserError
    }

    /// 431 or 400 with `Connection: close`, then the connection closes.
    func respondMalformed(_ error: HTTPParserError, context: ChannelHandlerContext) {
        let (status, text): (HTTPResponseStatus, String) = error == .headerOverflow
            ? (HTTPResponseStatus(statusCode: 431), "request header fields too large")
            : (.badRequest, "malformed HTTP request")
        var (headers, body) = Self.plainText(text, allocator: context.channel.allocator)
        headers.add(name: "Connection", value: "close")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }
}
