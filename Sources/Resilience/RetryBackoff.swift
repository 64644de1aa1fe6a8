/// Exponential backoff with full jitter: attempt n (0 for the first retry) waits a uniformly random
/// time in `0...min(max, base * 2^n)` (the AWS architecture blog's "full jitter").
public struct RetryBackoff: Sendable, Equatable {
    public let base: Int64
    public let max: Int64

    public init(baseNanoseconds: Int64, maxNanoseconds: Int64) {
        base = Swift.max(0, baseNanoseconds)
        max = Swift.max(base, maxNanoseconds)
    }

    /// The ceiling for attempt `n` before jitter.
    public func ceiling(attempt: Int) -> Int64 {
        let shift = Swift.min(Swift.max(0, attempt), 62)
        let (scaled, overflow) = base.multipliedReportingOverflow(by: Int64(1) << shift)
        return overflow ? max : Swift.min(max, scaled)
    }

    public func delay<R: RandomNumberGenerator>(attempt: Int, using random: inout R) -> Int64 {
        let top = ceiling(attempt: attempt)
        return top == 0 ? 0 : Int64.random(in: 0...top, using: &random)
    }
}

/// Retries may be at most `ratio` of the requests over a sliding `window` (plus `minimum` per
/// window, so a quiet route can still retry), so retries cannot multiply the load on a failing
/// origin. Counts live in ten buckets; times are nanoseconds on the caller's monotonic clock.
public struct RetryBudget: Sendable, Equatable {
    public let ratio: Double
    public let window: Int64
    public let minimum: Int
    private var buckets: [(start: Int64, requests: Int, retries: Int)] = []

    public init(ratio: Double = 0.2, windowNanoseconds: Int64 = 10_000_000_000, minimum: Int = 3) {
        self.ratio = ratio
        window = Swift.max(10, windowNanoseconds)
        self.minimum = minimum
    }

    public static func == (a: RetryBudget, b: RetryBudget) -> Bool {
        a.ratio == b.ratio && a.window == b.window && a.minimum == b.minimum
            && a.buckets.elementsEqual(b.buckets) { $0.start == $1.start && $0.requests == $1.requests && $0.retries == $1.retries }
    }

    private var bucketLength: Int64 { window / 10 }

    private mutating func bucket(at now: Int64) -> Int {
        let start = now - now % bucketLength
        buckets.removeAll { $0.start <= now - window }
        if let last = buckets.indices.last, buckets[last].start == start { return last }
        buckets.append((start, 0, 0))
        return buckets.count - 1
    }

    /// Counts a request (first attempts only).
    public mutating func recordRequest(now: Int64) {
        let i = bucket(at: now)
        buckets[i].requests += 1
    }

    /// True, and the retry counted, when the budget allows one more retry now.
    public mutating func withdraw(now: Int64) -> Bool {
        let i = bucket(at: now)
        let requests = buckets.reduce(0) { $0 + $1.requests }
        let retries = buckets.reduce(0) { $0 + $1.retries }
        guard Double(retries + 1) <= ratio * Double(requests) + Double(minimum) else { return false }
        buckets[i].retries += 1
        return true
    }
}
