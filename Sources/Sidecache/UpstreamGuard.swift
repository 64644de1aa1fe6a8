import CoreMetrics
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import Resilience
import SidecacheConfig

/// What stands between the proxy and its upstream: the circuit breaker and the retry policy, each
/// present when the config asks for it. Kept across reloads that do not change them.
final class UpstreamGuard: Sendable {
    let breaker: UpstreamBreaker?
    let retries: RetryPolicy?
    let config: (SidecacheConfiguration.CircuitBreakerConfig?, SidecacheConfiguration.Retries?)

    init(upstream: SidecacheConfiguration.Upstream, logger: Logger, metrics: SidecacheMetrics) {
        breaker = upstream.circuitBreaker.map { UpstreamBreaker(config: $0, logger: logger, metrics: metrics) }
        retries = upstream.retries.flatMap { $0.attempts > 0 ? RetryPolicy(config: $0, metrics: metrics) : nil }
        config = (upstream.circuitBreaker, upstream.retries)
    }

    func isCurrent(for upstream: SidecacheConfiguration.Upstream) -> Bool {
        config.0 == upstream.circuitBreaker && config.1 == upstream.retries
    }

    /// Monotonic nanoseconds, the clock of every Resilience value.
    static func now() -> Int64 { Int64(truncatingIfNeeded: NIODeadline.now().uptimeNanoseconds) }
}

/// The upstream's circuit breaker behind a lock, with its transitions logged and counted.
final class UpstreamBreaker: Sendable {
    let config: SidecacheConfiguration.CircuitBreakerConfig
    private let breaker: NIOLockedValueBox<CircuitBreaker>
    private let logger: Logger
    private let metrics: SidecacheMetrics

    init(config: SidecacheConfiguration.CircuitBreakerConfig, logger: Logger, metrics: SidecacheMetrics) {
        self.config = config
        self.breaker = NIOLockedValueBox(CircuitBreaker(settings: config.settings))
        self.logger = logger
        self.metrics = metrics
        metrics.setBreakerState(.closed, counted: false)
    }

    enum Admission {
        case go(BreakerPass)
        /// Nanoseconds until a probe may go.
        case rejected(retryAfter: Int64)
    }

    func admit() -> Admission {
        let now = UpstreamGuard.now()
        let (admission, before, after) = breaker.withLockedValue { b in
            let before = b.state
            return (b.admit(now: now), before, b.state)
        }
        if before.name != after.name { transitioned(to: after, now: now) }
        switch admission {
        case .allowed: return .go(BreakerPass(self, probe: false))
        case .probe: return .go(BreakerPass(self, probe: true))
        case .rejected(let retryAfter):
            metrics.breakerRejected.increment()
            return .rejected(retryAfter: retryAfter)
        }
    }

    func record(success: Bool) {
        let now = UpstreamGuard.now()
        if let changed = breaker.withLockedValue({ $0.record(success: success, now: now) }) { transitioned(to: changed, now: now) }
    }

    func abandonProbe() {
        breaker.withLockedValue { $0.abandonProbe() }
    }

    func isFailure(status: UInt) -> Bool { config.failureStatuses.contains(status) }

    /// For `/stats`: the state and the outcomes in the window.
    var status: (state: String, successes: Int, failures: Int) {
        let now = UpstreamGuard.now()
        return breaker.withLockedValue { b in
            let counts = b.windowCounts(now: now)
            return (b.state.name, counts.successes, counts.failures)
        }
    }

    private func transitioned(to state: CircuitBreaker.State, now: Int64) {
        metrics.setBreakerState(state)
        switch state {
        case .open(let until):
            logger.warning("upstream circuit breaker opened: requests are refused (or served stale) without asking the upstream", metadata: [
                "open_for_ms": "\((until - now) / 1_000_000)", "failure_rate": "\(config.failureRatePercent)%",
                "consecutive_failures": "\(config.consecutiveFailures)",
            ])
        case .halfOpen:
            logger.notice("upstream circuit breaker half-open: letting probes through", metadata: ["probes": "\(config.halfOpenProbes)"])
        case .closed:
            logger.notice("upstream circuit breaker closed: the upstream answered every probe")
        }
    }
}

/// Leave to send one request to the upstream. Its outcome is reported once; a probe whose request
/// never gets an answer (the client left) gives its place back, at the latest when the pass is freed.
final class BreakerPass {
    private let breaker: UpstreamBreaker
    private let probe: Bool
    private var settled = false

    fileprivate init(_ breaker: UpstreamBreaker, probe: Bool) {
        self.breaker = breaker
        self.probe = probe
    }

    func record(status: UInt) {
        guard !settled else { return }
        settled = true
        breaker.record(success: !breaker.isFailure(status: status))
    }

    func record(_ error: UpstreamError) {
        guard !settled else { return }
        guard error.isUpstreamFault else { return abandon() }
        settled = true
        breaker.record(success: false)
    }

    func abandon() {
        guard !settled else { return }
        settled = true
        if probe { breaker.abandonProbe() }
    }

    deinit {
        if !settled, probe { breaker.abandonProbe() }
    }
}

/// Backoff and the retry budget shared by every request to the upstream.
final class RetryPolicy: Sendable {
    let config: SidecacheConfiguration.Retries
    let backoff: RetryBackoff
    private let budget: NIOLockedValueBox<RetryBudget>
    private let metrics: SidecacheMetrics

    init(config: SidecacheConfiguration.Retries, metrics: SidecacheMetrics) {
        self.config = config
        self.backoff = config.backoff
        self.budget = NIOLockedValueBox(RetryBudget(ratio: Double(config.budgetPercent) / 100))
        self.metrics = metrics
    }

    func recordRequest() {
        let now = UpstreamGuard.now()
        budget.withLockedValue { $0.recordRequest(now: now) }
    }

    /// The wait before retry number `attempt` (0 for the first), or nil when the budget is spent.
    func grant(attempt: Int) -> TimeAmount? {
        let now = UpstreamGuard.now()
        guard budget.withLockedValue({ $0.withdraw(now: now) }) else {
            metrics.retryBudgetExhausted.increment()
            return nil
        }
        metrics.retries.increment()
        var random = SystemRandomNumberGenerator()
        return .nanoseconds(backoff.delay(attempt: attempt, using: &random))
    }
}

/// One exchange's tries at the upstream: asks the breaker before each, reports how each ended,
/// and decides whether a failed one is tried again. Retried: only idempotent methods (GET, HEAD,
/// OPTIONS; PUT and DELETE when the route allows), only after a connect failure, a time-out or a
/// 502/503/504, only before anything of the response reached the client (the callers ask before
/// relaying a head), and only within the attempts and the budget.
final class UpstreamAttempts {
    private let upstreamGuard: UpstreamGuard
    private let retryable: Bool
    private var pass: BreakerPass?
    private(set) var retries = 0

    static let retryStatuses: Set<UInt> = [502, 503, 504]

    init(_ upstreamGuard: UpstreamGuard, method: HTTPMethod, route: CompiledRoute?) {
        self.upstreamGuard = upstreamGuard
        switch method {
        case .GET, .HEAD, .OPTIONS: retryable = true
        case .PUT, .DELETE: retryable = route?.retryUnsafeIdempotent ?? false
        default: retryable = false
        }
        upstreamGuard.retries?.recordRequest()
    }

    /// Before each attempt: nil to go ahead, or the error to answer with (the breaker is open).
    func begin() -> UpstreamError? {
        pass?.abandon()
        pass = nil
        guard let breaker = upstreamGuard.breaker else { return nil }
        switch breaker.admit() {
        case .go(let granted):
            pass = granted
            return nil
        case .rejected(let retryAfter):
            return UpstreamError(.circuitOpen, "circuit breaker is open; not asking the upstream", requestNotSent: true, retryAfter: retryAfter)
        }
    }

    /// The response head arrived. A wait means: drop this response and try again after it.
    func responseHead(status: UInt, replayable: Bool) -> TimeAmount? {
        pass?.record(status: status)
        pass = nil
        guard Self.retryStatuses.contains(status) else { return nil }
        return retry(replayable: replayable)
    }

    /// The attempt failed before a response head. A wait means: try again after it.
    func failed(_ error: UpstreamError, replayable: Bool) -> TimeAmount? {
        pass?.record(error)
        pass = nil
        guard error.isRetryable else { return nil }
        return retry(replayable: replayable)
    }

    /// The attempt ends without an outcome of the upstream's making (the client left, or a
    /// keep-alive connection was found closed and is replaced).
    func abandon() {
        pass?.abandon()
        pass = nil
    }

    private func retry(replayable: Bool) -> TimeAmount? {
        guard retryable, replayable, let policy = upstreamGuard.retries, retries < policy.config.attempts,
              let wait = policy.grant(attempt: retries) else { return nil }
        retries += 1
        return wait
    }
}
