import HTTPCaching
import Warming

/// One reading of the counters (cumulative since start) and gauges the dashboard charts.
struct StatsReading: Sendable {
    struct Route: Sendable {
        /// Requests by cache outcome, and those of them answered with a 5xx status.
        var outcomes = TrafficStats.Counts()
        var serverErrors = TrafficStats.Counts()
        var rateLimited = 0
        /// `LatencyBuckets` counts of the total and the upstream time.
        var totalTime: [Int] = []
        var upstreamTime: [Int] = []
    }

    struct Cache: Sendable {
        var bytes = 0
        var entries = 0
        var maxBytes = 0
        var evictions = 0
        var smallBytes = 0
        var mainBytes = 0
        var ghostKeys = 0
    }

    /// Wall-clock time of the reading, for the chart's time axis.
    var unixMilliseconds: Int64
    var routes: [String: Route] = [:]
    var cache = Cache()
    /// Nil without Redis.
    var redis: ProxyRuntime.RedisStatus?
    /// 0 closed, 1 half-open, 2 open; nil without a circuit breaker.
    var breakerState: Int?
    var breakerFailures = 0
    var upstreamInUse = 0
    var upstreamOpen = 0
    /// Background fetches issued by source, and fetched entries served, since start; nil
    /// without a warming section.
    var warmIssued: [WarmSource: Int]?
    var warmUsed = 0
}

/// A fixed number of values, oldest dropped first; nil where a value is unknown.
struct SeriesRing: Sendable, Equatable {
    let capacity: Int
    private var storage: [Double?]
    /// Where the next value goes.
    private var next = 0
    private(set) var count = 0

    /// A ring that already holds `nils` unknown values (a series that starts after the others).
    init(capacity: Int, nils: Int = 0) {
        self.capacity = max(1, capacity)
        storage = Array(repeating: nil, count: self.capacity)
        count = min(max(0, nils), self.capacity)
        next = count % self.capacity
    }

    mutating func append(_ value: Double?) {
        storage[next] = value
        next = (next + 1) % capacity
        count = min(count + 1, capacity)
    }

    /// The newest `n` values, oldest first.
    func last(_ n: Int) -> [Double?] {
        let n = min(max(0, n), count)
        return (0..<n).map { storage[(next - n + $0 + capacity) % capacity] }
    }

    var values: [Double?] { last(count) }
}

/// What the dashboard charts: one point per reading, each the change since the reading before
/// (requests, outcomes, evictions and errors counted in the interval; latency percentiles of the
/// requests that finished in it) or the gauge's value then (bytes, entries, states). The last
/// `capacity` points are kept (15 minutes at one reading a second). Pure: readings go in, points
/// come out.
struct StatsSeries: Sendable {
    /// Series of all routes together and of the process.
    static let globalNames = [
        "requests", "hit_ratio", "hit", "miss", "stale", "revalidated", "coalesced", "bypass", "local", "rate_limited", "errors",
        "p50_ms", "p99_ms", "upstream_p50_ms", "upstream_p99_ms",
        "cache_bytes", "cache_entries", "max_bytes", "evictions", "small_bytes", "main_bytes", "ghost_keys",
        "redis_connected", "redis_subscribed", "redis_errors", "breaker_state", "breaker_failures", "upstream_in_use", "upstream_open",
        "warm_used",
    ] + WarmSource.allCases.map { "warm_\($0.rawValue)" }
    /// Series of each route.
    static let routeNames = ["requests", "hit_ratio", "errors", "rate_limited", "p50_ms", "p99_ms", "upstream_p50_ms", "upstream_p99_ms"]

    let capacity: Int
    private(set) var times: SeriesRing
    private(set) var global: [String: SeriesRing]
    private(set) var routes: [String: [String: SeriesRing]] = [:]
    private var previous: StatsReading?

    /// `baseline`, when given, is what the first point is counted from (the reading at start).
    init(capacity: Int = 900, baseline: StatsReading? = nil) {
        self.capacity = capacity
        times = SeriesRing(capacity: capacity)
        global = Dictionary(uniqueKeysWithValues: Self.globalNames.map { ($0, SeriesRing(capacity: capacity)) })
        previous = baseline
    }

    /// Adds the point from the previous reading to `reading` (the first reading without a
    /// baseline only becomes the baseline).
    mutating func record(_ reading: StatsReading) {
        defer { previous = reading }
        guard let previous else { return }
        let earlier = times.count
        times.append(Double(reading.unixMilliseconds))
        for (name, value) in Self.globalPoint(from: previous, to: reading) {
            global[name, default: SeriesRing(capacity: capacity, nils: earlier)].append(value)
        }
        for name in Set(routes.keys).union(reading.routes.keys) {
            let point = reading.routes[name].map { Self.routePoint(from: previous.routes[name] ?? StatsReading.Route(), to: $0) } ?? [:]
            var rings = routes[name] ?? [:]
            for series in Self.routeNames {
                rings[series, default: SeriesRing(capacity: capacity, nils: earlier)].append(point[series] ?? nil)
            }
            routes[name] = rings
        }
    }

    /// The points after `sinceMilliseconds` (all kept when nil): their times, then each series'
    /// values in the same order.
    func points(sinceMilliseconds: Int64?) -> (times: [Int64], global: [String: [Double?]], routes: [String: [String: [Double?]]]) {
        let all = times.values.map { Int64($0 ?? 0) }
        let n = sinceMilliseconds.map { since in all.count - (all.firstIndex { $0 > since } ?? all.count) } ?? all.count
        return (Array(all.suffix(n)), global.mapValues { $0.last(n) }, routes.mapValues { $0.mapValues { $0.last(n) } })
    }

    // MARK: One point

    /// A counter's change; a counter that went back (made anew, e.g. Redis after a reload) counts from 0.
    static func delta(_ later: Int, _ earlier: Int) -> Int {
        later >= earlier ? later - earlier : later
    }

    static func delta(_ later: TrafficStats.Counts, _ earlier: TrafficStats.Counts) -> TrafficStats.Counts {
        TrafficStats.Counts(byOutcome: zip(later.byOutcome, earlier.byOutcome).map { delta($0, $1) })
    }

    static func milliseconds(_ q: Double, _ counts: [Int]) -> Double? {
        LatencyBuckets.quantile(q, in: counts).map { Double($0) / 1000 }
    }

    static func routePoint(from earlier: StatsReading.Route, to later: StatsReading.Route) -> [String: Double?] {
        let outcomes = delta(later.outcomes, earlier.outcomes)
        let errors = delta(later.serverErrors, earlier.serverErrors)
        let total = LatencyBuckets.difference(later.totalTime, earlier.totalTime)
        let upstream = LatencyBuckets.difference(later.upstreamTime, earlier.upstreamTime)
        return [
            "requests": Double(outcomes.requests), "hit_ratio": outcomes.hitRatio, "errors": Double(errors.requests),
            "rate_limited": Double(delta(later.rateLimited, earlier.rateLimited)),
            "p50_ms": milliseconds(0.5, total), "p99_ms": milliseconds(0.99, total),
            "upstream_p50_ms": milliseconds(0.5, upstream), "upstream_p99_ms": milliseconds(0.99, upstream),
        ]
    }

    static func globalPoint(from earlier: StatsReading, to later: StatsReading) -> [String: Double?] {
        var outcomes = TrafficStats.Counts()
        var errors = TrafficStats.Counts()
        var rateLimited = 0
        var total = [Int](repeating: 0, count: LatencyBuckets.count)
        var upstream = total
        for (name, route) in later.routes {
            let before = earlier.routes[name] ?? StatsReading.Route()
            outcomes = outcomes + delta(route.outcomes, before.outcomes)
            errors = errors + delta(route.serverErrors, before.serverErrors)
            rateLimited += delta(route.rateLimited, before.rateLimited)
            for (i, n) in LatencyBuckets.difference(route.totalTime, before.totalTime).enumerated() where i < total.count { total[i] += n }
            for (i, n) in LatencyBuckets.difference(route.upstreamTime, before.upstreamTime).enumerated() where i < upstream.count { upstream[i] += n }
        }
        var point: [String: Double?] = [
            "requests": Double(outcomes.requests), "hit_ratio": outcomes.hitRatio,
            "rate_limited": Double(rateLimited), "errors": Double(errors.requests),
            "p50_ms": milliseconds(0.5, total), "p99_ms": milliseconds(0.99, total),
            "upstream_p50_ms": milliseconds(0.5, upstream), "upstream_p99_ms": milliseconds(0.99, upstream),
            "cache_bytes": Double(later.cache.bytes), "cache_entries": Double(later.cache.entries), "max_bytes": Double(later.cache.maxBytes),
            "evictions": Double(delta(later.cache.evictions, earlier.cache.evictions)),
            "small_bytes": Double(later.cache.smallBytes), "main_bytes": Double(later.cache.mainBytes), "ghost_keys": Double(later.cache.ghostKeys),
            "redis_connected": later.redis.map { $0.connected ? 1 : 0 }, "redis_subscribed": later.redis.map { $0.subscribed ? 1 : 0 },
            "redis_errors": later.redis.map { Double(delta($0.errors, earlier.redis?.errors ?? 0)) },
            "breaker_state": later.breakerState.map(Double.init), "breaker_failures": later.breakerState.map { _ in Double(later.breakerFailures) },
            "upstream_in_use": Double(later.upstreamInUse), "upstream_open": Double(later.upstreamOpen),
            "warm_used": later.warmIssued.map { _ in Double(delta(later.warmUsed, earlier.warmUsed)) },
        ]
        for source in WarmSource.allCases {
            // updateValue: a nil (no warming) stays a point, where assigning nil would drop the series.
            point.updateValue(later.warmIssued.map { Double(delta($0[source] ?? 0, earlier.warmIssued?[source] ?? 0)) }, forKey: "warm_\(source.rawValue)")
        }
        // The outcomes stack to `requests`: a 5xx answer counts as an error, a rate-limit refusal
        // (answered locally) as rate_limited, whatever its cache outcome.
        for outcome in CacheOutcome.allCases {
            var n = outcomes[outcome] - errors[outcome]
            if outcome == .local { n -= rateLimited }
            point[outcome.rawValue] = Double(max(0, n))
        }
        return point
    }
}
