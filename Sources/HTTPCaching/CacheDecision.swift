/// The cache's decisions about a stored entry, as values computed from the entry, the request and
/// the clock, with the `Cache-Status` each answer carries. The connection carries them out; no
/// socket is needed to test them.
public enum CacheDecision {
    /// What a request does with the entry it found (RFC 9111 §4.2, §4.3; RFC 5861 §3).
    public enum Use: Equatable, Sendable {
        /// Serve it: fresh.
        case serveFresh(CacheStatus)
        /// Serve it stale now and refresh it in the background (stale-while-revalidate).
        case serveStaleAndRefresh(CacheStatus)
        /// Validate (or refetch) it first; it stays the fallback if the upstream fails.
        case validate
    }

    /// `clientAsksRevalidation`: the route honours the client's `no-cache` and the client sent it.
    /// `tier`: where the entry was found when that was not the memory cache.
    public static func use(_ entry: CachedResponse, at now: CacheInstant, clientAsksRevalidation: Bool,
                           tier: CacheStatus.Tier? = nil) -> Use {
        guard !clientAsksRevalidation else { return .validate }
        switch entry.freshness(at: now) {
        case .fresh(let remaining):
            return .serveFresh(.hit(ttl: remaining.seconds, tier: tier))
        case .stale(let staleness) where entry.isWithinStaleWhileRevalidate(at: now):
            return .serveStaleAndRefresh(.hit(ttl: -max(1, staleness.seconds), detail: .staleWhileRevalidate, tier: tier))
        case .stale:
            return .validate
        }
    }

    /// An entry just read from the shared tier may be served (fresh, or within stale-while-revalidate);
    /// otherwise the request that read it validates it.
    public static func isServable(_ entry: CachedResponse, at now: CacheInstant) -> Bool {
        entry.freshness(at: now).isFresh || entry.isWithinStaleWhileRevalidate(at: now)
    }

    /// The `Cache-Status` of the stored entry served instead of an upstream failure, or nil when
    /// the client gets the error. With the breaker open (`upstreamRefused`), any stored copy is
    /// better than a 503 unless the origin forbade serving it stale (must-revalidate, no-cache:
    /// RFC 9111 §4.2.4, §5.2.2.2); otherwise only within stale-if-error (RFC 5861 §4).
    /// `failure` names the upstream's failure in `detail`.
    public static func staleInsteadOfError(_ stale: CachedResponse?, at now: CacheInstant, upstreamRefused: Bool,
                                           failure: String) -> CacheStatus? {
        guard let stale else { return nil }
        if upstreamRefused, stale.terms.mayServeStale, !stale.terms.revalidateAlways {
            var ttl: Int64 = 0
            if case .stale(let staleness) = stale.freshness(at: now) { ttl = -max(1, staleness.seconds) }
            return .hit(ttl: ttl, detail: .circuitOpen)
        }
        guard stale.isWithinStaleIfError(at: now) else { return nil }
        return .forwarded(.stale, detail: .staleIfError(failure))
    }
}
