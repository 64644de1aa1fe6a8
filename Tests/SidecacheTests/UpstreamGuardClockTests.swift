import Logging
import NIOConcurrencyHelpers
import NIOCore
@testable import Sidecache
import SidecacheConfig
import Testing

/// The breaker and the retry budget on a clock the test moves: no sleeping.
@Suite struct UpstreamGuardClockTests {
    static func breaker(_ time: ManualMonotonicClock) -> UpstreamBreaker {
        var config = SidecacheConfiguration.CircuitBreakerConfig()
        config.consecutiveFailures = 3
        config.openFor = .seconds(30)
        config.halfOpenProbes = 1
        return UpstreamBreaker(config: config, clock: time.clock, logger: Logger(label: "test"), metrics: SidecacheMetrics())
    }

    static func admitted(_ breaker: UpstreamBreaker) -> BreakerPass? {
        if case .go(let pass) = breaker.admit() { return pass }
        return nil
    }

    @Test func theBreakerStaysOpenForItsPeriodAndThenLetsAProbeThrough() throws {
        let time = ManualMonotonicClock(frozenAt: 1_000_000_000)
        let breaker = Self.breaker(time)
        for _ in 0..<3 { try #require(Self.admitted(breaker)).record(status: 503) }
        guard case .rejected(let retryAfter) = breaker.admit() else { Issue.record("not open"); return }
        #expect(retryAfter == 30_000_000_000)
        time.advance(.seconds(29))
        #expect(Self.admitted(breaker) == nil)
        time.advance(.seconds(1))
        let probe = try #require(Self.admitted(breaker))
        #expect(breaker.status.state == "half-open")
        #expect(Self.admitted(breaker) == nil)  // one probe at a time
        probe.record(status: 200)
        #expect(breaker.status.state == "closed")
    }

    @Test func theRetryBudgetRefillsAsItsWindowMoves() {
        let time = ManualMonotonicClock(frozenAt: 1_000_000_000)
        var config = SidecacheConfiguration.Retries()
        config.budgetPercent = 20
        let policy = RetryPolicy(config: config, clock: time.clock, metrics: SidecacheMetrics())
        for _ in 0..<10 { policy.recordRequest() }
        // 20% of 10 requests, plus the 3 always allowed.
        let granted = (0..<10).filter { _ in policy.grant(attempt: 0) != nil }.count
        #expect(granted == 5)
        time.advance(.seconds(11))
        #expect(policy.grant(attempt: 0) != nil)
    }
}
