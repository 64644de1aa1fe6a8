import NIOCore
import NIOHTTP1
import Resilience

/// Rate limiting at the door: every request on a limited route is decided before the cache or the
/// upstream sees it.
extension ProxyHandler {
    /// Applies a decision: an admitted request (or any in shadow mode) carries the `RateLimit-*`
    /// fields and goes on (true); a refused one is answered 429 here (false).
    func admit(_ r: ActiveRequest, _ decision: GCRA.Decision, limiter: RouteRateLimiter, key: String) -> Bool {
        let goOn = limiter.settle(decision, key: key)
        // Shadow mode is invisible to clients: no fields, no refusal.
        if !limiter.settings.shadow { r.rateLimit = limiter.fields(for: decision) }
        guard !goOn else { return true }
        r.tally.recordRefusal()
        // A request without a body (or with a small one still arriving) keeps its connection: the
        // rest of it is read and dropped. A big upload is cut off instead of being read for nothing.
        respondLocally(.tooManyRequests, "rate limit exceeded; retry after \(r.rateLimit?.retryAfterSeconds ?? 1)s", request: r,
                       close: !r.requestEnded && Self.mayCarryLargeBody(r.head), cacheStatus: .answeredLocally(.rateLimited))
        return false
    }

    /// Asks Redis for the shared decision; meanwhile the request's parts wait in the queue. When
    /// Redis fails or is late (its `timeout`), this instance's own table decides.
    func admitShared(_ r: ActiveRequest, limiter: RouteRateLimiter, key: String, tier: RedisTier, context: ChannelHandlerContext) {
        state.awaitAdmission()
        tier.rateLimit(route: limiter.route, key: key, gcra: limiter.gcra, on: context.eventLoop) { [self] result in
            state.admissionDecided()
            let decision: GCRA.Decision
            switch result {
            case .success(let shared):
                limiter.noteShared(fellBack: false)
                decision = shared
            case .failure(let error):
                limiter.noteShared(fellBack: true, error: error)
                decision = limiter.decideLocally(key: key)
            }
            guard state.isCurrent(r) else {
                drainQueue()
                return
            }
            if admit(r, decision, limiter: limiter, key: key) { run(.route, for: r) }
            drainQueue()
        }
    }

    /// Anything but a request that announced no body or at most 64 KiB of one.
    static func mayCarryLargeBody(_ head: HTTPRequestHead) -> Bool {
        if head.headers.contains(name: "transfer-encoding") { return true }
        guard let length = head.headers.first(name: "content-length") else { return false }
        return (Int(length) ?? Int.max) > 64 * 1024
    }
}
