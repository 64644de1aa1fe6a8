import Resilience
import Testing

let ms: Int64 = 1_000_000
let second: Int64 = 1_000_000_000

/// Runs the limiter over request times (ms) and returns admit (true) / refuse (false) per request.
func run(_ gcra: GCRA, at times: [Int64]) -> [Bool] {
    var tat: Int64?
    return times.map { t in
        let (decision, next) = gcra.decide(tat: tat, now: t * ms)
        tat = next
        return decision.admitted
    }
}

@Suite struct GCRATests {
    @Test func anIdleKeyAdmitsTheBurstPlusOneThenTheSteadyRate() {
        // 10 per second (one every 100 ms), burst 2: three at once, then one per 100 ms.
        let gcra = GCRA(requests: 10, perNanoseconds: second, burst: 2)
        #expect(run(gcra, at: [0, 0, 0, 0, 50, 99, 100, 150, 200, 200]) == [true, true, true, false, false, false, true, false, true, false])
    }

    @Test func remainingRetryAfterAndReset() {
        let gcra = GCRA(requests: 10, perNanoseconds: second, burst: 2)
        var tat: Int64?
        var remaining: [Int] = []
        for _ in 0..<3 {
            let (d, next) = gcra.decide(tat: tat, now: 0)
            tat = next
            remaining.append(d.remaining)
        }
        #expect(remaining == [2, 1, 0])
        let (refused, unchanged) = gcra.decide(tat: tat, now: 30 * ms)
        #expect(!refused.admitted && unchanged == tat)
        #expect(refused.retryAfter == 70 * ms && refused.resetAfter == 270 * ms)
        // After a quiet second the key is idle again.
        if let tat { #expect(GCRA.isIdle(tat: tat, now: second)) }
    }

    @Test func withoutBurstRequestsAreSpacedExactly() {
        let gcra = GCRA(requests: 4, perNanoseconds: second, burst: 0)
        #expect(run(gcra, at: [0, 1, 249, 250, 499, 500, 1000]) == [true, false, false, true, false, true, true])
        // Over a long even stream the admitted count matches the rate.
        let admitted = run(gcra, at: Array(stride(from: Int64(0), to: 10_000, by: 10))).filter { $0 }.count
        #expect(admitted == 40)
    }
}

@Suite struct CircuitBreakerTests {
    static let settings = CircuitBreaker.Settings(windowNanoseconds: 10 * second, minRequests: 4, failureRate: 0.5,
                                                  consecutiveFailures: 3, openForNanoseconds: 5 * second, halfOpenProbes: 2)

    @Test func consecutiveFailuresOpenItAndItRejectsUntilOpenForEnds() {
        var breaker = CircuitBreaker(settings: Self.settings)
        #expect(breaker.record(success: false, now: 0) == nil)
        #expect(breaker.record(success: false, now: 1) == nil)
        #expect(breaker.record(success: false, now: 2) == .open(until: 2 + 5 * second))
        #expect(breaker.admit(now: 3) == .rejected(retryAfter: 5 * second - 1))
        #expect(breaker.admit(now: 2 + 5 * second) == .probe)
        #expect(breaker.state == .halfOpen(admitted: 1, succeeded: 0))
    }

    @Test func theFailureRateOverTheWindowOpensItOnlyWithEnoughRequests() {
        var breaker = CircuitBreaker(settings: Self.settings)
        breaker.record(success: true, now: 0)
        breaker.record(success: false, now: 1)
        breaker.record(success: true, now: 2)
        #expect(breaker.state == .closed)  // 3 outcomes: below min_requests
        #expect(breaker.record(success: false, now: 3) == .open(until: 3 + 5 * second))  // 2 of 4 failed
    }

    @Test func oldOutcomesLeaveTheWindow() {
        var breaker = CircuitBreaker(settings: Self.settings)
        breaker.record(success: false, now: 0)
        breaker.record(success: false, now: 1)
        breaker.record(success: true, now: 2)  // resets the run of failures
        // 11 s later the two failures are outside the 10 s window.
        for i in 0..<3 { breaker.record(success: true, now: 11 * second + Int64(i)) }
        #expect(breaker.record(success: false, now: 11 * second + 5) == nil)
        #expect(breaker.windowCounts(now: 11 * second + 5) == (successes: 3, failures: 1))
    }

    @Test func halfOpenClosesWhenEveryProbeSucceedsAndReopensOnOneFailure() {
        var breaker = CircuitBreaker(settings: Self.settings)
        for i in 0..<3 { breaker.record(success: false, now: Int64(i)) }
        let reopenAt = 2 + 5 * second
        #expect(breaker.admit(now: reopenAt) == .probe)
        #expect(breaker.admit(now: reopenAt) == .probe)
        #expect(breaker.admit(now: reopenAt) == .rejected(retryAfter: 0))  // only two probes at a time
        #expect(breaker.record(success: true, now: reopenAt + 1) == nil)
        #expect(breaker.record(success: true, now: reopenAt + 2) == .closed)
        #expect(breaker.admit(now: reopenAt + 3) == .allowed)

        for i in 0..<3 { breaker.record(success: false, now: reopenAt + 10 + Int64(i)) }
        let again = reopenAt + 12 + 5 * second
        #expect(breaker.admit(now: again) == .probe)
        #expect(breaker.record(success: false, now: again + 1) == .open(until: again + 1 + 5 * second))
        // A late answer to a request sent while closed changes nothing while open.
        #expect(breaker.record(success: true, now: again + 2) == nil)
    }
}

@Suite struct RetryTests {
    struct Counter: RandomNumberGenerator {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    @Test func backoffStaysWithinItsCeilingAndTheCeilingDoublesToTheMax() {
        let backoff = RetryBackoff(baseNanoseconds: 25 * ms, maxNanoseconds: second)
        #expect((0..<8).map { backoff.ceiling(attempt: $0) } == [25, 50, 100, 200, 400, 800, 1000, 1000].map { $0 * ms })
        #expect(backoff.ceiling(attempt: 200) == second)
        var random = Counter()
        for attempt in 0..<8 {
            let delays = (0..<500).map { _ in backoff.delay(attempt: attempt, using: &random) }
            #expect(delays.allSatisfy { $0 >= 0 && $0 <= backoff.ceiling(attempt: attempt) })
            // Full jitter: spread over the whole range, not bunched at the top.
            #expect(delays.min() ?? 0 < backoff.ceiling(attempt: attempt) / 10)
            #expect(delays.max() ?? 0 > backoff.ceiling(attempt: attempt) * 9 / 10)
        }
    }

    @Test func theBudgetAllowsTwentyPercentPlusAMinimumOverTheWindow() {
        var budget = RetryBudget(ratio: 0.2, windowNanoseconds: 10 * second, minimum: 3)
        for i in 0..<100 { budget.recordRequest(now: Int64(i) * ms) }
        var granted = 0
        for _ in 0..<50 where budget.withdraw(now: 200 * ms) { granted += 1 }
        #expect(granted == 23)  // 20% of 100, plus 3
        // Once the window has moved on, only the minimum is left.
        var later = 0
        for _ in 0..<10 where budget.withdraw(now: 11 * second) { later += 1 }
        #expect(later == 3)
    }
}
