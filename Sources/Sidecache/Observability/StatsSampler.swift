import Foundation
import HTTPCaching
import NIOConcurrencyHelpers
import NIOCore
import Warming

/// Reads the counters once a second into a `StatsSeries`, for the dashboard's `GET /stats/series`.
/// Nothing on the request path changes: a reading only loads counters that exist anyway.
final class StatsSampler: Sendable {
    static let interval = TimeAmount.seconds(1)
    /// 15 minutes of one-second points.
    static let capacity = 900

    private let series: NIOLockedValueBox<StatsSeries>
    private let task: RepeatedTask

    /// Takes the baseline reading now, then one reading each `interval`.
    init(on loop: any EventLoop, interval: TimeAmount = StatsSampler.interval, capacity: Int = StatsSampler.capacity,
         read: @escaping @Sendable () -> StatsReading) {
        let series = NIOLockedValueBox(StatsSeries(capacity: capacity, baseline: read()))
        self.series = series
        task = loop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
            let reading = read()
            series.withLockedValue { $0.record(reading) }
        }
    }

    func stop() { task.cancel() }

    /// The points after `sinceMilliseconds` as the JSON of `GET /stats/series`.
    func report(sinceMilliseconds: Int64?) -> [String: Any] {
        let points = series.withLockedValue { $0.points(sinceMilliseconds: sinceMilliseconds) }
        return [
            "interval_seconds": Double(Self.interval.nanoseconds) / 1e9, "capacity": Self.capacity,
            "times": points.times,
            "series": points.global.mapValues(Self.json),
            "routes": points.routes.mapValues { $0.mapValues(Self.json) },
        ]
    }

    /// Values rounded to 4 decimals (ratios and milliseconds need no more), unknown ones null.
    private static func json(_ values: [Double?]) -> [Any] {
        values.map { value -> Any in
            guard let value, value.isFinite else { return NSNull() }
            return value == value.rounded() ? Int(value) : (value * 10_000).rounded() / 10_000
        }
    }
}

extension StatsReading {
    /// What the runtime's counters say now.
    init(stats: TrafficStats, store: MemoryStore, pools: UpstreamPools, redis: ProxyRuntime.RedisStatus?, breaker: UpstreamBreaker?,
         warmer: Warmer?, unixMilliseconds: Int64 = Int64(Date().timeIntervalSince1970 * 1000)) {
        self.init(unixMilliseconds: unixMilliseconds)
        for tally in stats.all {
            routes[tally.route] = Route(outcomes: tally.byOutcome, serverErrors: tally.serverErrorsByOutcome, rateLimited: tally.rateLimited,
                                        totalTime: tally.totalTime.counts, upstreamTime: tally.upstreamTime.counts)
        }
        let c = store.statistics
        cache = Cache(bytes: c.bytes, entries: c.entries, maxBytes: store.currentLimits.maxBytes, evictions: c.evictions,
                      smallBytes: c.smallBytes, mainBytes: c.mainBytes, ghostKeys: c.ghostKeys)
        self.redis = redis
        if let status = breaker?.status {
            breakerState = ["closed": 0, "half-open": 1, "open": 2][status.state] ?? 0
            breakerFailures = status.failures
        }
        let pool = pools.counts
        upstreamInUse = pool.inUse
        upstreamOpen = pool.open
        if let counts = warmer?.report.counts {
            var issued: [WarmSource: Int] = [:]
            for (key, c) in counts {
                issued[key.source, default: 0] += c.issued
                warmUsed += c.used
            }
            warmIssued = issued
        }
    }
}
