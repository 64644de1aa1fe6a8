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
