import CoreMetrics
import HTTPCaching
import NIOConcurrencyHelpers
import NIOHTTP1
import Prometheus
import Resilience

/// The Prometheus metrics of one process, recorded through swift-metrics into a registry of its
/// own (not the global `MetricsSystem`, so several runtimes can live in one test process) and
/// rendered in the text format for `GET /metrics`.
///
/// Labelled series are made on first use and kept. Request counts are kept lock-free per route
/// (`RequestTally`) and added to their series when the metrics are rendered.
final class SidecacheMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    private let factory: PrometheusMetricsFactory

    private struct RequestSeries: Hashable {
        let route: String
        let series: RequestTally.Series
    }

    enum MethodClass: String, CaseIterable, Sendable {
        case read, write, other
    }

    /// Each request series' counter and the count already added to it.
    private let requests = NIOLockedValueBox<[RequestSeries: (counter: CoreMetrics.Counter, exported: Int)]>([:])
    private let upstream = NIOLockedValueBox<[String: CoreMetrics.Timer]>([:])
    private let purges = NIOLockedValueBox<[String: CoreMetrics.Counter]>([:])
    private let reloads: (ok: CoreMetrics.Counter, failed: CoreMetrics.Counter)
    let redisErrors: CoreMetrics.Counter
    private let cacheBytes: CoreMetrics.Meter
    private let cacheEntries: CoreMetrics.Meter
    private let cacheEvictions: CoreMetrics.Counter
    private let evictionsSeen = NIOLockedValueBox(0)
    /// The memory cache's queues (S3-FIFO's small and main), and what moved between them.
    private let queueBytes: (small: CoreMetrics.Meter, main: CoreMetrics.Meter)
    private let queueKeys: (small: CoreMetrics.Meter, main: CoreMetrics.Meter)
    private let ghostKeys: CoreMetrics.Meter
    private let policyCounters: [String: CoreMetrics.Counter]
    /// Each policy counter's total already exported (the store keeps totals; Prometheus counters add).
    private let policySeen = NIOLockedValueBox<[String: Int]>([:])
    private let redisUp: CoreMetrics.Meter
    private let configVersion: CoreMetrics.Meter
    private let breakerState: CoreMetrics.Meter
    private let breakerTransitions: [String: CoreMetrics.Counter]
    /// Requests answered at once because the upstream's circuit breaker was open.
    let breakerRejected: CoreMetrics.Counter
    /// Retries sent to the upstream, and retries the budget refused.
    let retries: CoreMetrics.Counter
    let retryBudgetExhausted: CoreMetrics.Counter
    /// Shared (`scope: redis`) limit decisions taken locally because Redis did not answer.
    let rateLimitFallbacks: CoreMetrics.Counter

    init() {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [
            .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25),
            .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500),
            .seconds(5), .seconds(10), .seconds(30),
        ]
        self.factory = factory
        reloads = (CoreMetrics.Counter(label: "sidecache_config_reloads_total", dimensions: [("result", "success")], factory: factory),
                   CoreMetrics.Counter(label: "sidecache_config_reloads_total", dimensions: [("result", "failure")], factory: factory))
        redisErrors = CoreMetrics.Counter(label: "sidecache_redis_errors_total", factory: factory)
        cacheBytes = CoreMetrics.Meter(label: "sidecache_cache_bytes", factory: factory)
        cacheEntries = CoreMetrics.Meter(label: "sidecache_cache_entries", factory: factory)
        cacheEvictions = CoreMetrics.Counter(label: "sidecache_cache_evictions_total", factory: factory)
        queueBytes = (CoreMetrics.Meter(label: "sidecache_cache_queue_bytes", dimensions: [("queue", "small")], factory: factory),
                      CoreMetrics.Meter(label: "sidecache_cache_queue_bytes", dimensions: [("queue", "main")], factory: factory))
        queueKeys = (CoreMetrics.Meter(label: "sidecache_cache_queue_keys", dimensions: [("queue", "small")], factory: factory),
                     CoreMetrics.Meter(label: "sidecache_cache_queue_keys", dimensions: [("queue", "main")], factory: factory))
        ghostKeys = CoreMetrics.Meter(label: "sidecache_cache_ghost_keys", factory: factory)
        policyCounters = [
            "promotions": CoreMetrics.Counter(label: "sidecache_cache_promotions_total", factory: factory),
            "ghost_hits": CoreMetrics.Counter(label: "sidecache_cache_ghost_hits_total", factory: factory),
            "evicted_small": CoreMetrics.Counter(label: "sidecache_cache_queue_evictions_total", dimensions: [("queue", "small")], factory: factory),
            "evicted_main": CoreMetrics.Counter(label: "sidecache_cache_queue_evictions_total", dimensions: [("queue", "main")], factory: factory),
        ]
        redisUp = CoreMetrics.Meter(label: "sidecache_redis_up", factory: factory)
        configVersion = CoreMetrics.Meter(label: "sidecache_config_version", factory: factory)
        breakerState = CoreMetrics.Meter(label: "sidecache_circuit_breaker_state", factory: factory)
        breakerTransitions = Dictionary(uniqueKeysWithValues: ["closed", "open", "half-open"].map { to in
            (to, CoreMetrics.Counter(label: "sidecache_circuit_breaker_transitions_total", dimensions: [("to", to)], factory: factory))
        })
        breakerRejected = CoreMetrics.Counter(label: "sidecache_circuit_breaker_rejected_total", factory: factory)
        retries = CoreMetrics.Counter(label: "sidecache_upstream_retries_total", factory: factory)
        retryBudgetExhausted = CoreMetrics.Counter(label: "sidecache_upstream_retry_budget_exhausted_total", factory: factory)
        rateLimitFallbacks = CoreMetrics.Counter(label: "sidecache_rate_limit_redis_fallbacks_total", factory: factory)
    }

    /// `sidecache_circuit_breaker_state`: 0 closed, 1 half-open, 2 open; and a transition counted.
    func setBreakerState(_ state: CircuitBreaker.State, counted: Bool = true) {
        switch state {
        case .closed: breakerState.set(0)
        case .halfOpen: breakerState.set(1)
        case .open: breakerState.set(2)
        }
        if counted { breakerTransitions[state.name]?.increment() }
    }

    /// `sidecache_rate_limit_total{route, result}` for one route: admitted, refused, and
    /// shadow_refused (would have been refused in `mode: shadow`). Made once per limiter.
    func rateLimitCounters(route: String) -> (admitted: CoreMetrics.Counter, refused: CoreMetrics.Counter, shadowRefused: CoreMetrics.Counter) {
        func counter(_ result: String) -> CoreMetrics.Counter {
            CoreMetrics.Counter(label: "sidecache_rate_limit_total", dimensions: [("route", route), ("result", result)], factory: factory)
        }
        return (counter("admitted"), counter("refused"), counter("shadow_refused"))
    }

    /// `sidecache_requests_total{route, method, status, cache}`: method class `read` (GET, HEAD),
    /// `write` (POST, PUT, PATCH, DELETE) or `other`; status class `2xx`..`5xx` (`none` when no
    /// response was sent); cache the outcome as in access logs. Adds what each tally counted since
    /// the last export.
    private func exportRequests(_ tallies: [RequestTally]) {
        requests.withLockedValue { table in
            for tally in tallies {
                for (series, count) in tally.counted {
                    let key = RequestSeries(route: tally.route, series: series)
                    let known = table[key] ?? (CoreMetrics.Counter(label: "sidecache_requests_total", dimensions: [
                        ("route", tally.route), ("method", series.method.rawValue), ("status", Self.statusClassLabel(series.statusClass)),
                        ("cache", series.outcome.rawValue),
                    ], factory: factory), 0)
                    if count > known.exported { known.counter.increment(by: count - known.exported) }
                    table[key] = (known.counter, max(count, known.exported))
                }
            }
        }
    }

    /// `sidecache_upstream_duration_seconds{route}`: time to the upstream's response head.
    func recordUpstream(route: String, microseconds: Int64) {
        Self.series(route, in: upstream) {
            CoreMetrics.Timer(label: "sidecache_upstream_duration_seconds", dimensions: [("route", route)], factory: factory)
        }.recordMicroseconds(microseconds)
    }

    /// `sidecache_purges_total{kind, mode}`: purges started on this instance (admin and writes).
    func recordPurge(kind: String, soft: Bool) {
        let mode = soft ? "soft" : "hard"
        Self.series(kind + "/" + mode, in: purges) {
            CoreMetrics.Counter(label: "sidecache_purges_total", dimensions: [("kind", kind), ("mode", mode)], factory: factory)
        }.increment()
    }

    /// Counters exported from totals kept elsewhere, by label and dimensions, with what each
    /// has been given so far.
    private let totals = NIOLockedValueBox<[String: (counter: CoreMetrics.Counter, exported: Int)]>([:])

    /// Adds to `label{dimensions}` what `total` grew by since the last export.
    private func export(_ label: String, _ dimensions: [(String, String)], total: Int) {
        let id = label + dimensions.map { "|\($0.0)=\($0.1)" }.joined()
        totals.withLockedValue { table in
            let known = table[id] ?? (CoreMetrics.Counter(label: label, dimensions: dimensions, factory: factory), 0)
            if total > known.exported { known.counter.increment(by: total - known.exported) }
            table[id] = (known.counter, max(total, known.exported))
        }
    }

    /// `sidecache_warm_requests_total{route,source,result}` (stored, not_modified, not_stored,
    /// failed, dropped, skipped, leased_elsewhere, from_l2), `sidecache_warm_used_total{route,source}`,
    /// `sidecache_warm_wasted_total{route,source}` and `sidecache_warm_bytes_total{route,source}`.
    private func exportWarming(_ counts: [Warmer.CountKey: Warmer.Counts]) {
        for (key, c) in counts {
            let where_ = [("route", key.route), ("source", key.source.rawValue)]
            for (result, n) in [("stored", c.stored), ("not_modified", c.notModified), ("not_stored", c.notStored), ("failed", c.failed),
                                ("dropped", c.dropped), ("skipped", c.skipped), ("leased_elsewhere", c.leasedElsewhere),
                                ("from_l2", c.fromL2)] {
                export("sidecache_warm_requests_total", where_ + [("result", result)], total: n)
            }
            export("sidecache_warm_used_total", where_, total: c.used)
            export("sidecache_warm_wasted_total", where_, total: c.wasted)
            export("sidecache_warm_bytes_total", where_, total: c.bytes)
        }
    }

    /// The series for `key`, made on first use.
    private static func series<Key: Hashable, Metric>(_ key: Key, in table: NIOLockedValueBox<[Key: Metric]>, make: () -> Metric) -> Metric {
        table.withLockedValue { table in
            if let existing = table[key] { return existing }
            let made = make()
            table[key] = made
            return made
        }
    }

    func recordReload(succeeded: Bool) {
        (succeeded ? reloads.ok : reloads.failed).increment()
    }

    /// The text exposition, with the gauges read now.
    func render(cache: MemoryStore.Statistics, requests tallies: [RequestTally], redisConnected: Bool?, configVersion version: Int,
                warming: [Warmer.CountKey: Warmer.Counts] = [:]) -> [UInt8] {
        exportRequests(tallies)
        exportWarming(warming)
        cacheBytes.set(cache.bytes)
        cacheEntries.set(cache.entries)
        let newEvictions = evictionsSeen.withLockedValue { seen in
            defer { seen = max(seen, cache.evictions) }
            return max(0, cache.evictions - seen)
        }
        if newEvictions > 0 { cacheEvictions.increment(by: newEvictions) }
        queueBytes.small.set(cache.smallBytes)
        queueBytes.main.set(cache.mainBytes)
        queueKeys.small.set(cache.smallKeys)
        queueKeys.main.set(cache.mainKeys)
        ghostKeys.set(cache.ghostKeys)
        let totals = ["promotions": cache.promotions, "ghost_hits": cache.ghostHits,
                      "evicted_small": cache.evictedFromSmall, "evicted_main": cache.evictedFromMain]
        let added = policySeen.withLockedValue { seen -> [String: Int] in
            var added: [String: Int] = [:]
            for (name, total) in totals {
                added[name] = max(0, total - (seen[name] ?? 0))
                seen[name] = max(seen[name] ?? 0, total)
            }
            return added
        }
        for (name, n) in added where n > 0 { policyCounters[name]?.increment(by: n) }
        if let redisConnected { redisUp.set(redisConnected ? 1 : 0) }
        configVersion.set(version)
        return registry.emitToBuffer()
    }

    static func methodClass(_ method: HTTPMethod) -> MethodClass {
        switch method {
        case .GET, .HEAD: .read
        case .POST, .PUT, .PATCH, .DELETE: .write
        default: .other
        }
    }

    static func statusClassLabel(_ statusClass: Int) -> String {
        (1...5).contains(statusClass) ? "\(statusClass)xx" : "none"
    }
}
