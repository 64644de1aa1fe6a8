/// Where a background fetch comes from; the order is the priority, highest first.
public enum WarmSource: String, CaseIterable, Sendable, Comparable {
    /// A hot entry refetched before it expires.
    case refresh
    /// A hot entry refetched after a purge removed or marked it.
    case rewarm
    /// The hot set loaded at start.
    case start
    /// A route's declared `prefetch` URLs.
    case prefetch
    /// `Link: rel=prefetch` on the origin's responses.
    case links
    /// The learned successor model.
    case predict
    /// `POST /warm` and `warming.on_start` lists.
    case list

    public var priority: Int { Self.allCases.firstIndex(of: self) ?? Self.allCases.count }

    public static func < (a: WarmSource, b: WarmSource) -> Bool { a.priority < b.priority }
}

/// The one budget every background fetch goes through: at most `maxPerSecond` started per second
/// (a token bucket holding one token, so no second sees more than one over the rate), at most
/// `maxConcurrent` at once, none while the upstream refuses (its circuit breaker open), a bounded
/// queue served by priority that drops the lowest first, and a pace that halves on each failure or
/// slow answer (over twice the usual latency) and recovers step by step on successes.
/// Pure: times in nanoseconds on any monotonic clock, passed in.
public struct WarmBudget<Job: Sendable>: Sendable {
    public struct Settings: Sendable, Equatable {
        public var maxPerSecond: Double
        public var maxConcurrent: Int
        public var queueCapacity: Int

        public init(maxPerSecond: Double, maxConcurrent: Int, queueCapacity: Int = 10_000) {
            self.maxPerSecond = max(0.001, maxPerSecond)
            self.maxConcurrent = max(1, maxConcurrent)
            self.queueCapacity = max(1, queueCapacity)
        }
    }

    public enum Submitted: Sendable {
        case queued
        /// Queued, and to make room this lower-priority job was dropped.
        case queuedDropping(Job, WarmSource)
        /// The queue is full of jobs at least as important: this one is dropped.
        case dropped
    }

    public private(set) var settings: Settings
    /// Jobs started and not yet finished.
    public private(set) var inFlight = 0
    /// The part of `maxPerSecond` in use: 1 normally, down to 1/16 while the upstream struggles.
    public private(set) var pace: Double = 1
    private var tokens: Double = 1
    private var refilledAt: Int64
    /// One FIFO per source, by priority.
    private var queues: [[Job]] = Array(repeating: [], count: WarmSource.allCases.count)
    private var heads: [Int] = Array(repeating: 0, count: WarmSource.allCases.count)
    /// The usual latency (moving average of successful fetches), nanoseconds.
    public private(set) var usualLatency: Double?

    public static var minimumPace: Double { 1.0 / 16 }

    public init(_ settings: Settings, at now: Int64) {
        self.settings = settings
        refilledAt = now
    }

    public var queued: Int { zip(queues, heads).map { $0.count - $1 }.reduce(0, +) }

    public func queued(_ source: WarmSource) -> Int { queues[source.priority].count - heads[source.priority] }

    /// The rate now, after any backing off.
    public var effectiveRate: Double { settings.maxPerSecond * pace }

    public mutating func update(_ settings: Settings) {
        self.settings = settings
    }

    public mutating func submit(_ job: Job, _ source: WarmSource) -> Submitted {
        guard queued >= settings.queueCapacity else {
            queues[source.priority].append(job)
            return .queued
        }
        guard let lowest = WarmSource.allCases.last(where: { queued($0) > 0 }), source < lowest else { return .dropped }
        let dropped = queues[lowest.priority].removeLast()
        queues[source.priority].append(job)
        compact(lowest)
        return .queuedDropping(dropped, lowest)
    }

    /// The next job to start now, if the budget allows one; the caller starts it and reports
    /// `finished` later.
    public mutating func next(at now: Int64, upstreamRefusing: Bool = false) -> (job: Job, source: WarmSource)? {
        guard !upstreamRefusing, inFlight < settings.maxConcurrent else { return nil }
        refill(now)
        guard tokens >= 1, let source = WarmSource.allCases.first(where: { queued($0) > 0 }) else { return nil }
        let i = source.priority
        let job = queues[i][heads[i]]
        heads[i] += 1
        compact(source)
        tokens -= 1
        inFlight += 1
        return (job, source)
    }

    /// When a token is next available, if a job waits for one (nil: nothing waits, or only for
    /// a running job to finish).
    public func nextStart(at now: Int64) -> Int64? {
        guard queued > 0, inFlight < settings.maxConcurrent else { return nil }
        var copy = self
        copy.refill(now)
        guard copy.tokens < 1 else { return now }
        return now + Int64(((1 - copy.tokens) / effectiveRate * 1e9).rounded(.up))
    }

    /// A started job ended: `latency` nanoseconds from start to the upstream's answer, or nil
    /// when it failed.
    public mutating func finished(latency: Int64?) {
        inFlight = max(0, inFlight - 1)
        guard let latency else {
            pace = max(Self.minimumPace, pace / 2)
            return
        }
        let slow = usualLatency.map { Double(latency) > 2 * $0 } ?? false
        if slow {
            pace = max(Self.minimumPace, pace / 2)
        } else {
            pace = min(1, pace + Self.minimumPace)
        }
        usualLatency = usualLatency.map { $0 * 0.9 + Double(latency) * 0.1 } ?? Double(latency)
    }

    /// A started job turned out needless before it reached the upstream: its slot and its
    /// token are given back, and the pace is left as it was.
    public mutating func skipped() {
        inFlight = max(0, inFlight - 1)
        tokens = min(1, tokens + 1)
    }

    /// Drops every queued job (at shutdown or when warming is switched off) and returns them.
    public mutating func drain() -> [(job: Job, source: WarmSource)] {
        var all: [(job: Job, source: WarmSource)] = []
        for source in WarmSource.allCases {
            let i = source.priority
            all += queues[i][heads[i]...].map { ($0, source) }
            queues[i] = []
            heads[i] = 0
        }
        return all
    }

    private mutating func refill(_ now: Int64) {
        guard now > refilledAt else { return }
        tokens = min(1, tokens + Double(now - refilledAt) / 1e9 * effectiveRate)
        refilledAt = now
    }

    /// Frees the consumed front of a queue once it is most of it.
    private mutating func compact(_ source: WarmSource) {
        let i = source.priority
        if heads[i] >= queues[i].count {
            queues[i] = []
            heads[i] = 0
        } else if heads[i] > 64 && heads[i] * 2 > queues[i].count {
            queues[i].removeFirst(heads[i])
            heads[i] = 0
        }
    }
}
