import CoreMetrics
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import Resilience
import SidecacheConfig

/// The upstream's circuit breaker behind a lock, with its transitions logged and counted.
final class UpstreamBreaker: Sendable {
    let config: SidecacheConfiguration.CircuitBreakerConfig
    private let breaker: NIOLockedValueBox<CircuitBreaker>
    private let logger: Logger
    private let metrics: SidecacheMetrics
    private let clock: MonotonicClock

    init(config: SidecacheConfiguration.CircuitBreakerConfig, clock: MonotonicClock, logger: Logger, metrics: SidecacheMetrics) {
        self.config = config
        self.clock = clock
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
        let now = clock.nanoseconds()
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
        let now = clock.nanoseconds()
        if let changed = breaker.withLockedValue({ $0.record(success: success, now: now) }) { transitioned(to: changed, now: now) }
    }

    func abandonProbe() {
        breaker.withLockedValue { $0.abandonProbe() }
    }

    func isFailure(status: UInt) -> Bool { config.failureStatuses.contains(status) }

    /// For `/stats`: the state and the outcomes in the window.
    var status: (state: String, successes: Int, failures: Int) {
        let now = clock.nanoseconds()
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
