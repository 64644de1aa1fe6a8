import HTTPCaching
import Warming
@testable import Sidecache
import Testing

/// The dashboard's series as values: readings in, points out, no clock and no socket.
@Suite struct StatsSeriesTests {
    // MARK: Latency buckets

    @Test func everyTimeFallsInTheBucketWhoseBoundsHoldIt() {
        var previous = -1
        for us: Int64 in [0, 1, 7, 8, 9, 15, 16, 17, 100, 999, 1000, 1023, 1024, 65_535, 1_000_000, 60_000_000, (1 << 27) - 1] {
            let i = LatencyBuckets.index(microseconds: us)
            #expect(LatencyBuckets.lowerBound(i) <= us && us <= LatencyBuckets.upperBound(i), "\(us) µs in bucket \(i)")
            #expect(i >= previous)
            previous = i
        }
        #expect(LatencyBuckets.index(microseconds: -5) == 0)
        #expect(LatencyBuckets.index(microseconds: 1 << 40) == LatencyBuckets.count - 1)
        #expect(LatencyBuckets.index(microseconds: (1 << 27) - 1) == LatencyBuckets.count - 2)
        // Buckets are contiguous and each at most 12.5% of its lower bound wide.
        for i in 1..<(LatencyBuckets.count - 1) {
            #expect(LatencyBuckets.lowerBound(i) == LatencyBuckets.upperBound(i - 1) + 1)
            let width = LatencyBuckets.upperBound(i) - LatencyBuckets.lowerBound(i) + 1
            #expect(i < LatencyBuckets.subBuckets || width * 8 <= LatencyBuckets.lowerBound(i))
        }
    }

    @Test func quantilesAreTheMiddleOfTheBucketHoldingTheNearestRank() {
        var counts = [Int](repeating: 0, count: LatencyBuckets.count)
        #expect(LatencyBuckets.quantile(0.5, in: counts) == nil)
        // 98 fast requests (around 1 ms), 2 slow ones (around 500 ms).
        counts[LatencyBuckets.index(microseconds: 1000)] = 98
        counts[LatencyBuckets.index(microseconds: 500_000)] = 2
        let p50 = try! #require(LatencyBuckets.quantile(0.5, in: counts))
        let p99 = try! #require(LatencyBuckets.quantile(0.99, in: counts))
        #expect(abs(p50 - 1000) * 8 <= 1000)
        #expect(abs(p99 - 500_000) * 8 <= 500_000)
        #expect(LatencyBuckets.quantile(0.98, in: counts) == p50)
        #expect(LatencyBuckets.difference([5, 3], [2, 3]) == [3, 0])
    }

    @Test func aHistogramCountsWhatItIsGiven() {
        let histogram = LatencyHistogram()
        for us: Int64 in [3, 3, 2000, 90_000_000_000] { histogram.record(microseconds: us) }
        let counts = histogram.counts
        #expect(counts.count == LatencyBuckets.count && counts.reduce(0, +) == 4)
        #expect(counts[3] == 2 && counts[LatencyBuckets.count - 1] == 1)
    }

    // MARK: The ring

    @Test func aRingKeepsTheNewestValuesOldestFirst() {
        var ring = SeriesRing(capacity: 3)
        #expect(ring.values.isEmpty)
        ring.append(1)
        ring.append(nil)
        #expect(ring.values == [1, nil])
        ring.append(3)
        ring.append(4)
        #expect(ring.values == [nil, 3, 4] && ring.count == 3)
        #expect(ring.last(2) == [3, 4] && ring.last(9) == [nil, 3, 4])
        var late = SeriesRing(capacity: 3, nils: 2)
        late.append(7)
        late.append(8)
        #expect(late.values == [nil, 7, 8])
    }

    // MARK: Points

    static func reading(at ms: Int64, hits: Int = 0, misses: Int = 0, serverErrorMisses: Int = 0, local: Int = 0, rateLimited: Int = 0,
                        route: String = "items", evictions: Int = 0, bytes: Int = 0, latencies: [Int64] = [], redisErrors: Int? = nil) -> StatsReading {
        var r = StatsReading.Route()
        r.outcomes.byOutcome[CacheOutcome.hit.index] = hits
        r.outcomes.byOutcome[CacheOutcome.miss.index] = misses
        r.outcomes.byOutcome[CacheOutcome.local.index] = local
        r.serverErrors.byOutcome[CacheOutcome.miss.index] = serverErrorMisses
        r.rateLimited = rateLimited
        var total = [Int](repeating: 0, count: LatencyBuckets.count)
        for us in latencies { total[LatencyBuckets.index(microseconds: us)] += 1 }
        r.totalTime = total
        r.upstreamTime = [Int](repeating: 0, count: LatencyBuckets.count)
        var reading = StatsReading(unixMilliseconds: ms)
        reading.routes[route] = r
        reading.cache = .init(bytes: bytes, entries: bytes / 100, maxBytes: 1000, evictions: evictions)
        reading.redis = redisErrors.map { ProxyRuntime.RedisStatus(connected: true, subscribed: true, errors: $0) }
        return reading
    }

    @Test func eachPointIsTheChangeSinceTheReadingBefore() throws {
        var series = StatsSeries(capacity: 10, baseline: Self.reading(at: 1_000, hits: 5, misses: 5, evictions: 2))
        series.record(Self.reading(at: 2_000, hits: 14, misses: 6, evictions: 2, bytes: 400, latencies: [100, 100, 100, 9_000]))
        series.record(Self.reading(at: 3_000, hits: 14, misses: 6, evictions: 7, bytes: 300, latencies: [100, 100, 100, 9_000]))
        let points = series.points(sinceMilliseconds: nil)
        #expect(points.times == [2_000, 3_000])
        #expect(points.global["requests"] == [10, 0])
        #expect(points.global["hit"] == [9, 0] && points.global["miss"] == [1, 0])
        #expect(points.global["hit_ratio"] == [0.9, nil])
        #expect(points.global["cache_bytes"] == [400, 300] && points.global["max_bytes"] == [1000, 1000])
        #expect(points.global["evictions"] == [0, 5])
        // Latency of the requests finished in the interval; none in the second.
        let p50 = try #require(points.global["p50_ms"]?.first ?? nil)
        let p99 = try #require(points.global["p99_ms"]?.first ?? nil)
        #expect(abs(p50 - 0.1) < 0.013 && abs(p99 - 9) < 1.2)
        #expect(points.global["p99_ms"]?.last == .some(nil))
        #expect(points.routes["items"]?["requests"] == [10, 0])
        #expect(points.global["redis_connected"] == [nil, nil])
        // Only what came after a time the page already has.
        #expect(series.points(sinceMilliseconds: 2_000).times == [3_000])
        #expect(series.points(sinceMilliseconds: 2_000).global["evictions"] == [5])
        #expect(series.points(sinceMilliseconds: 3_000).times.isEmpty)
    }

    @Test func outcomesStackToTheRequestsWithErrorsAndRefusalsApart() {
        var series = StatsSeries(capacity: 4, baseline: Self.reading(at: 0))
        series.record(Self.reading(at: 1_000, hits: 3, misses: 4, serverErrorMisses: 2, local: 5, rateLimited: 4))
        let p = series.points(sinceMilliseconds: nil).global
        #expect(p["requests"] == [12])
        #expect(p["hit"] == [3] && p["miss"] == [2] && p["errors"] == [2] && p["rate_limited"] == [4] && p["local"] == [1])
        let stacked = CacheOutcome.allCases.map { p[$0.rawValue]?.first.flatMap { $0 } ?? 0 }.reduce(0, +) + 4 + 2
        #expect(stacked == 12)
    }

    @Test func aRouteThatAppearsLateIsPaddedAndACounterThatRestartsCountsFromZero() {
        var series = StatsSeries(capacity: 5, baseline: Self.reading(at: 0, redisErrors: 10))
        series.record(Self.reading(at: 1_000, hits: 1, redisErrors: 12))
        var withSecond = Self.reading(at: 2_000, hits: 2, redisErrors: 3)
        withSecond.routes["search"] = Self.reading(at: 2_000, misses: 4, route: "search").routes["search"]
        series.record(withSecond)
        let points = series.points(sinceMilliseconds: nil)
        #expect(points.routes["search"]?["requests"] == [nil, 4])
        #expect(points.routes["items"]?["requests"] == [1, 1])
        #expect(points.global["requests"] == [1, 5])
        // Redis made anew (a reload): its error count starts again.
        #expect(points.global["redis_errors"] == [2, 3])
    }

    @Test func theOldestPointsGoFirstAndEverySeriesStaysAligned() {
        var series = StatsSeries(capacity: 3)
        series.record(Self.reading(at: 0))  // without a baseline, the first reading is one
        for second in 1...5 { series.record(Self.reading(at: Int64(second) * 1_000, hits: second * 2)) }
        let points = series.points(sinceMilliseconds: nil)
        #expect(points.times == [3_000, 4_000, 5_000])
        #expect(points.global["requests"] == [2, 2, 2])
        for (name, values) in points.global { #expect(values.count == 3, "\(name)") }
    }

    @Test func backgroundFetchesAreCountedBySourceOnlyWithWarming() {
        var before = Self.reading(at: 0)
        before.warmIssued = [.refresh: 2]
        var after = Self.reading(at: 1_000)
        after.warmIssued = [.refresh: 5, .rewarm: 1]
        after.warmUsed = 3
        var series = StatsSeries(capacity: 4, baseline: before)
        series.record(after)
        var without = StatsSeries(capacity: 4, baseline: Self.reading(at: 0))
        without.record(Self.reading(at: 1_000))
        let p = series.points(sinceMilliseconds: nil).global
        #expect(p["warm_refresh"] == [3] && p["warm_rewarm"] == [1] && p["warm_list"] == [0] && p["warm_used"] == [3])
        #expect(without.points(sinceMilliseconds: nil).global["warm_refresh"] == [nil])
    }
}
