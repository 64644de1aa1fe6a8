import CoreMetrics
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import Resilience
import SidecacheConfig

/// Backoff and the retry budget shared by every request to the upstream.
final class RetryPolicy: Sendable {
    let config: SidecacheConfiguration.Retries
    let backoff: RetryBackoff
    private let budget: NIOLockedValueBox<RetryBudget>
    private let metrics: SidecacheMetrics
    private let clock: MonotonicClock

    init(config: SidecacheConfiguration.Retries, clock: MonotonicClock, metrics: SidecacheMetrics) {
        self.clock = clock
        self.config = config
        self.backoff = config.backoff
        self.budget = NIOLockedValueBox(RetryBudget(ratio: Double(config.budgetPercent) / 100))
        self.metrics = metrics
    }

    func recordRequest() {
        let now = clock.nanoseconds()
        budget.withLockedValue { $0.recordRequest(now: now) }
    }

    /// The wait before retry number `attempt` (0 for the first), or nil when the budget is spent.
    func grant(attempt: Int) -> TimeAmount? {
        let now = clock.nanoseconds()
        guard budget.withLockedValue({ $0.withdraw(now: now) }) else {
            metrics.retryBudgetExhausted.increment()
            return nil
        }
        metrics.retries.increment()
        var random = SystemRandomNumberGenerator()
        return .nanoseconds(backoff.delay(attempt: attempt, using: &random))
    }
}
