/// A circuit breaker for one upstream: closed, open, half-open. A value that decides and records;
/// the caller owns the lock, the clock (nanoseconds, monotonic) and the logging of transitions.
///
/// Closed -> open when, over the sliding window, at least `minRequests` outcomes were seen and the
/// failure rate reached `failureRate`, or when `consecutiveFailures` failed in a row. Open for
/// `openFor`, then half-open: `halfOpenProbes` requests are let through; all succeed -> closed, one
/// fails -> open again.
public struct CircuitBreaker: Sendable, Equatable {
    public struct Settings: Sendable, Equatable {
        public var window: Int64
        public var minRequests: Int
        public var failureRate: Double
        public var consecutiveFailures: Int
        public var openFor: Int64
        public var halfOpenProbes: Int

        public init(windowNanoseconds: Int64, minRequests: Int, failureRate: Double, consecutiveFailures: Int,
                    openForNanoseconds: Int64, halfOpenProbes: Int) {
            window = max(10, windowNanoseconds)
            self.minRequests = max(1, minRequests)
            self.failureRate = failureRate
            self.consecutiveFailures = max(1, consecutiveFailures)
            openFor = max(0, openForNanoseconds)
            self.halfOpenProbes = max(1, halfOpenProbes)
        }
    }

    public enum State: Sendable, Equatable {
        case closed
        case open(until: Int64)
        /// `admitted` probes sent so far, `succeeded` of them answered well.
        case halfOpen(admitted: Int, succeeded: Int)

        public var name: String {
            switch self {
            case .closed: "closed"
            case .open: "open"
            case .halfOpen: "half-open"
            }
        }
    }

    public enum Admission: Sendable, Equatable {
        case allowed
        /// A half-open probe: its outcome decides the state.
        case probe
        /// Do not send; `retryAfter` nanoseconds until the breaker half-opens.
        case rejected(retryAfter: Int64)
    }

    public let settings: Settings
    public private(set) var state: State = .closed
    private var consecutive = 0
    /// Ten buckets over the window: (start, successes, failures).
    private var buckets: [Bucket] = []

    private struct Bucket: Sendable, Equatable {
        var start: Int64
        var successes = 0
        var failures = 0
    }

    public init(settings: Settings) {
        self.settings = settings
    }

    /// Whether a request may go to the upstream now.
    public mutating func admit(now: Int64) -> Admission {
        switch state {
        case .closed:
            return .allowed
        case .open(let until):
            guard now >= until else { return .rejected(retryAfter: until - now) }
            state = .halfOpen(admitted: 1, succeeded: 0)
            return .probe
        case .halfOpen(let admitted, let succeeded):
            guard admitted < settings.halfOpenProbes else { return .rejected(retryAfter: 0) }
            state = .halfOpen(admitted: admitted + 1, succeeded: succeeded)
            return .probe
        }
    }

    /// Records an outcome; returns the new state when it changed (for the log and metrics).
    @discardableResult
    public mutating func record(success: Bool, now: Int64) -> State? {
        switch state {
        case .closed:
            count(success: success, now: now)
            consecutive = success ? 0 : consecutive + 1
            guard !success, tripped(now: now) else { return nil }
            return trip(now: now)
        case .open:
            return nil  // an answer to a request sent before the breaker opened
        case .halfOpen(let admitted, let succeeded):
            guard success else { return trip(now: now) }
            if succeeded + 1 >= settings.halfOpenProbes {
                state = .closed
                consecutive = 0
                buckets.removeAll()
                return state
            }
            state = .halfOpen(admitted: admitted, succeeded: succeeded + 1)
            return nil
        }
    }

    /// A half-open probe that will never have an outcome (its client left before the upstream
    /// answered) gives its place back, so the breaker cannot stay half-open with every probe spent.
    public mutating func abandonProbe() {
        guard case .halfOpen(let admitted, let succeeded) = state, admitted > succeeded else { return }
        state = .halfOpen(admitted: admitted - 1, succeeded: succeeded)
    }

    /// Failure rate over the window, and the outcomes it counts (for metrics).
    public func windowCounts(now: Int64) -> (successes: Int, failures: Int) {
        buckets.filter { $0.start > now - settings.window }.reduce((0, 0)) { ($0.0 + $1.successes, $0.1 + $1.failures) }
    }

    private func tripped(now: Int64) -> Bool {
        if consecutive >= settings.consecutiveFailures { return true }
        let (successes, failures) = windowCounts(now: now)
        let total = successes + failures
        return total >= settings.minRequests && Double(failures) / Double(total) >= settings.failureRate
    }

    private mutating func trip(now: Int64) -> State {
        state = .open(until: now + settings.openFor)
        consecutive = 0
        buckets.removeAll()
        return state
    }

    private mutating func count(success: Bool, now: Int64) {
        let length = max(1, settings.window / 10)
        let start = now - now % length
        buckets.removeAll { $0.start <= now - settings.window }
        if buckets.last?.start != start { buckets.append(Bucket(start: start)) }
        let last = buckets.count - 1
        if success { buckets[last].successes += 1 } else { buckets[last].failures += 1 }
    }
}
