import Resilience
import TestSupport
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

    /// Three failures open the breaker at 2 ns; at `reopenAt` it half-opens and both probes go.
    static let reopenAt = 2 + 5 * second

    static func halfOpenWithBothProbesOut() -> CircuitBreaker {
        var breaker = CircuitBreaker(settings: settings)
        for i in 0..<3 { breaker.record(success: false, now: Int64(i)) }
        #expect(breaker.admit(now: reopenAt) == .probe)
        #expect(breaker.admit(now: reopenAt) == .probe)
        return breaker
    }

    @Test func halfOpenClosesWhenEveryProbeSucceedsAndReopensOnOneFailure() {
        var breaker = Self.halfOpenWithBothProbesOut()
        let reopenAt = Self.reopenAt
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

    @Test func anAbandonedProbeGivesItsPlaceBack() {
        var breaker = Self.halfOpenWithBothProbesOut()
        let reopenAt = Self.reopenAt
        breaker.abandonProbe()  // its client left before the upstream answered
        #expect(breaker.state == .halfOpen(admitted: 1, succeeded: 0))
        #expect(breaker.admit(now: reopenAt + 1) == .probe)
        #expect(breaker.record(success: true, now: reopenAt + 2) == nil)
        #expect(breaker.record(success: true, now: reopenAt + 3) == .closed)
        breaker.abandonProbe()  // closed: nothing to give back
        #expect(breaker.state == .closed)
    }
}

@Suite struct RateLimitTableTests {
    @Test func keysAreLimitedSeparately() {
        let table = RateLimitTable(gcra: GCRA(requests: 1, perNanoseconds: second, burst: 1))
        #expect([table.decide(key: "a", now: 0).admitted, table.decide(key: "a", now: 0).admitted, table.decide(key: "a", now: 0).admitted]
            == [true, true, false])
        #expect(table.decide(key: "b", now: 0).admitted)
        #expect(table.decide(key: "a", now: second).admitted)
    }

    @Test func aFloodOfDistinctKeysStaysWithinTheBound() {
        let table = RateLimitTable(gcra: GCRA(requests: 1, perNanoseconds: 60 * second, burst: 0), maxKeys: 1024, shardCount: 4)
        // Every key stays limited for a minute, so none is idle: the bound must still hold.
        for i in 0..<50_000 { _ = table.decide(key: "client-\(i)", now: Int64(i)) }
        #expect(table.count <= 1024)
        #expect(table.evictions > 0)
    }

    @Test func idleKeysAreDroppedFirst() {
        let table = RateLimitTable(gcra: GCRA(requests: 1000, perNanoseconds: second, burst: 0), maxKeys: 64, shardCount: 1)
        for i in 0..<64 { _ = table.decide(key: "old-\(i)", now: 0) }
        // A second later every old key is back to a full burst: making room drops them, not a live one.
        for i in 0..<10 { _ = table.decide(key: "new-\(i)", now: second) }
        #expect(table.count == 10)
        #expect(table.evictions == 0)
        // A millisecond per key: two seconds later all ten are idle and a sweep forgets them.
        #expect(table.removeIdle(now: 3 * second) == 10)
        #expect(table.count == 0)
    }
}

@Suite struct ClientAddressTests {
    let trusted = ["10.0.0.0/8", "fd00::/8", "192.168.1.7"].compactMap(CIDRBlock.init)

    @Test func addressesAndBlocksParse() {
        #expect(IPAddress("192.168.1.7")?.description == "192.168.1.7")
        #expect(IPAddress("::1")?.description == "0:0:0:0:0:0:0:1")
        #expect(IPAddress("2001:db8::8:800:200c:417a") != nil)
        #expect(IPAddress("::ffff:10.1.2.3")?.isIPv4 == true)
        for bad in ["", "1.2.3", "1.2.3.256", "01234.1.1.1", "1::2::3", "12345::", "g::1", "1.2.3.4.5", "host"] {
            #expect(IPAddress(bad) == nil, "\(bad)")
        }
        #expect(CIDRBlock("10.0.0.0/8")?.contains(IPAddress("10.200.3.4")!) == true)
        #expect(CIDRBlock("10.0.0.0/8")?.contains(IPAddress("11.0.0.1")!) == false)
        #expect(CIDRBlock("172.16.0.0/12")?.contains(IPAddress("172.31.255.255")!) == true)
        #expect(CIDRBlock("172.16.0.0/12")?.contains(IPAddress("172.32.0.0")!) == false)
        #expect(CIDRBlock("fd00::/8")?.contains(IPAddress("fd12::1")!) == true)
        #expect(CIDRBlock("0.0.0.0/0")?.contains(IPAddress("8.8.8.8")!) == true)
        #expect(CIDRBlock("0.0.0.0/0")?.contains(IPAddress("::1")!) == false)  // an IPv4 block holds IPv4 only
        for bad in ["10.0.0.0/33", "10.0.0.0/", "10.0.0.0/x", "::/129", "nonsense/8"] { #expect(CIDRBlock(bad) == nil, "\(bad)") }
    }

    @Test func forwardedForIsBelievedOnlyFromTrustedProxies() {
        // An untrusted peer: its X-Forwarded-For is ignored.
        #expect(ClientAddress.resolve(peer: "203.0.113.9", forwardedFor: ["1.2.3.4"], trusted: trusted) == "203.0.113.9")
        // A trusted peer: the rightmost untrusted address is the client; what the client wrote itself
        // (to the left) does not count.
        #expect(ClientAddress.resolve(peer: "10.0.0.2", forwardedFor: ["6.6.6.6, 198.51.100.4, 10.1.1.1"], trusted: trusted) == "198.51.100.4")
        #expect(ClientAddress.resolve(peer: "10.0.0.2", forwardedFor: ["6.6.6.6", "198.51.100.4"], trusted: trusted) == "198.51.100.4")
        // Only trusted addresses: the leftmost is the best there is.
        #expect(ClientAddress.resolve(peer: "192.168.1.7", forwardedFor: ["10.9.9.9"], trusted: trusted) == "10.9.9.9")
        // Garbage stops the walk at the last good address.
        #expect(ClientAddress.resolve(peer: "10.0.0.2", forwardedFor: ["unknown"], trusted: trusted) == "10.0.0.2")
        #expect(ClientAddress.resolve(peer: "10.0.0.2", forwardedFor: [], trusted: trusted) == "10.0.0.2")
        #expect(ClientAddress.resolve(peer: "10.0.0.2", forwardedFor: ["1.2.3.4"], trusted: []) == "10.0.0.2")
    }
}

@Suite struct RetryTests {

    @Test func backoffStaysWithinItsCeilingAndTheCeilingDoublesToTheMax() {
        let backoff = RetryBackoff(baseNanoseconds: 25 * ms, maxNanoseconds: second)
        #expect((0..<8).map { backoff.ceiling(attempt: $0) } == [25, 50, 100, 200, 400, 800, 1000, 1000].map { $0 * ms })
        #expect(backoff.ceiling(attempt: 200) == second)
        var random = SplitMix64(seed: 0x9E37_79B9_7F4A_7C15)
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
