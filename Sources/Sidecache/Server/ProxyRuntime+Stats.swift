import Foundation
import NIOCore
import SidecacheConfig

extension ProxyRuntime {
    /// What `GET /stats` answers: the cache, request counts per route with hit ratios, the keys
    /// most served from the cache in the last minute, Redis, and the config version.
    func statsReport(now: NIODeadline = .now()) -> [String: Any] {
        let cache = store.statistics
        let routes = stats.perRoute
        let total = routes.values.reduce(TrafficStats.Counts(), +)
        let second = Int64(now.uptimeNanoseconds / 1_000_000_000)
        var report: [String: Any] = [
            "config_version": config.version,
            "uptime_seconds": (now - startedAt).nanoseconds / 1_000_000_000,
            "cache": [
                "entries": cache.entries, "bytes": cache.bytes, "evictions": cache.evictions,
                "max_bytes": store.currentLimits.maxBytes, "policy": store.currentLimits.policy.rawValue,
                "queues": [
                    "small": ["keys": cache.smallKeys, "bytes": cache.smallBytes, "evicted_keys": cache.evictedFromSmall],
                    "main": ["keys": cache.mainKeys, "bytes": cache.mainBytes, "evicted_keys": cache.evictedFromMain],
                    "ghost": ["keys": cache.ghostKeys],
                ] as [String: Any],
                "promotions": cache.promotions, "ghost_hits": cache.ghostHits,
            ] as [String: Any],
            "totals": Self.json(total),
            "routes": routes.mapValues(Self.json),
            "top_keys": hotKeys.top(20, atSecond: second).map { ["key": Self.readable($0.key), "hits": $0.hits] as [String: Any] },
        ]
        report["warming"] = current.warmer.map { Self.json($0, settings: config.configuration.warming) } ?? NSNull()
        let snapshot = config
        report["config"] = ["version": snapshot.version, "file": snapshot.sourcePath,
                            "last_reload": lastReload.map { $0.json as Any } ?? NSNull()] as [String: Any]
        if let redis = redisStatus {
            report["redis"] = ["connected": redis.connected, "subscribed": redis.subscribed, "errors": redis.errors]
        } else {
            report["redis"] = NSNull()
        }
        let pool = pools.counts
        report["upstream_pool"] = ["open": pool.open, "in_use": pool.inUse, "idle": pool.idle, "waiting": pool.waiting]
        if let breaker = upstreamGuard.breaker {
            let status = breaker.status
            report["circuit_breaker"] = ["state": status.state, "window_successes": status.successes, "window_failures": status.failures]
        } else {
            report["circuit_breaker"] = NSNull()
        }
        report["rate_limits"] = current.limiters.all.map { limiter -> [String: Any] in
            ["route": limiter.route, "keys": limiter.local.count, "evicted_keys": limiter.local.evictions,
             "scope": limiter.settings.scope.rawValue, "mode": limiter.settings.shadow ? "shadow" : "enforce"]
        }
        return report
    }

    private static func json(_ counts: TrafficStats.Counts) -> [String: Any] {
        [
            "requests": counts.requests, "hits": counts[.hit], "misses": counts[.miss], "stale": counts[.stale],
            "revalidated": counts[.revalidated], "coalesced": counts[.coalesced], "bypass": counts[.bypass],
            "local": counts[.local], "hit_ratio": counts.hitRatio.map { $0 as Any } ?? NSNull(),
        ]
    }

    /// The warming section: the budget's state, and per route and source what the background
    /// fetches did, with their precision (used / completed).
    private static func json(_ warmer: Warmer, settings: SidecacheConfiguration.Warming?) -> [String: Any] {
        let report = warmer.report
        var routes: [String: [String: Any]] = [:]
        for (key, c) in report.counts {
            routes[key.route, default: [:]][key.source.rawValue] = [
                "issued": c.issued, "completed": c.completed, "stored": c.stored, "not_modified": c.notModified, "not_stored": c.notStored,
                "failed": c.failed, "dropped": c.dropped, "skipped": c.skipped, "leased_elsewhere": c.leasedElsewhere, "from_l2": c.fromL2, "used": c.used,
                "shadow_predicted": c.shadowPredicted, "shadow_correct": c.shadowCorrect,
                "shadow_precision": c.shadowPrecision.map { $0 as Any } ?? NSNull(),
                "wasted": c.wasted, "bytes": c.bytes,
                "precision": c.precision.map { $0 as Any } ?? NSNull(),
            ] as [String: Any]
        }
        return [
            "budget": [
                "max_rps": settings?.maxRequestsPerSecond ?? 0, "effective_rps": report.rate, "pace": report.pace,
                "max_concurrent": settings?.maxConcurrent ?? 0, "in_flight": report.inFlight, "queued": report.queued,
            ] as [String: Any],
            "routes": routes,
            "hot_keys": warmer.hottest(20).map { ["key": readable($0.key), "rate_per_second": ($0.rate * 1000).rounded() / 1000] as [String: Any] },
        ]
    }

    /// A cache key with its NUL separator (before the key headers' values) shown as a space.
    private static func readable(_ key: String) -> String {
        key.replacingOccurrences(of: "\u{0}", with: " ")
    }

    /// The upstream connections of every event loop: opening or open, lent to an exchange, idle,
    /// and the exchanges waiting for one.
    public var upstreamPoolCounts: UpstreamPoolCounts { pools.counts }

    /// Cache fills under way, each with the requests coalesced behind it: 0 once traffic stops.
    public var fillsInFlight: Int { coalescer.count }

    /// `GET /metrics` in the Prometheus text format.
    public func renderMetrics() -> [UInt8] {
        metrics.render(cache: store.statistics, requests: stats.all, redisConnected: redisStatus?.connected, configVersion: config.version,
                       warming: current.warmer?.report.counts ?? [:])
    }
}
