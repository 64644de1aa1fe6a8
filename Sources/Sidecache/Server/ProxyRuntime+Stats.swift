import Foundation
import NIOCore

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
        metrics.render(cache: store.statistics, requests: stats.all, redisConnected: redisStatus?.connected, configVersion: config.version)
    }
}
