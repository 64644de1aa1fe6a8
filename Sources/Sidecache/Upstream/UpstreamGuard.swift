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

    init(upstream: SidecacheConfiguration.Upstream, clock: MonotonicClock, logger: Logger, metrics: SidecacheMetrics) {
        breaker = upstream.circuitBreaker.map { UpstreamBreaker(config: $0, clock: clock, logger: logger, metrics: metrics) }
        retries = upstream.retries.flatMap { $0.attempts > 0 ? RetryPolicy(config: $0, clock: clock, metrics: metrics) : nil }
        config = (upstream.circuitBreaker, upstream.retries)
    }

    func isCurrent(for upstream: SidecacheConfiguration.Upstream) -> Bool {
        config.0 == upstream.circuitBreaker && config.1 == upstream.retries
    }
}
