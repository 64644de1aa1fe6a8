/// How a request was answered with respect to the cache. The raw values are stable: they appear in
/// access logs, metrics labels and (through `xCache`) response headers.
public enum CacheOutcome: String, Sendable, CaseIterable {
    /// Served from a fresh stored response.
    case hit
    /// Forwarded because nothing usable was stored.
    case miss
    /// Served a stale stored response (stale-while-revalidate, stale-if-error).
    case stale
    /// A stale stored response was validated by the origin (304) and served.
    case revalidated
    /// Waited for another request's fetch of the same key and was served its result.
    case coalesced
    /// The route or method is not cached: forwarded as is.
    case bypass
    /// Answered by sidecache itself without the cache being involved (errors, refusals).
    case local

    /// The `X-Cache` value in common use (Varnish, CDNs).
    public var xCache: String {
        switch self {
        case .hit: "HIT"
        case .miss, .coalesced: "MISS"
        case .stale: "STALE"
        case .revalidated: "REVALIDATED"
        case .bypass, .local: "BYPASS"
        }
    }
}

/// Why a response was not stored; the raw value appears in `Cache-Status: ...; detail=<reason>`.
public enum NotStoredReason: String, Sendable, CaseIterable {
    case method
    case status
    case noStore = "no-store"
    case isPrivate = "private"
    case authorization
    case setCookie = "set-cookie"
    case varyStar = "vary-star"
    case noFreshness = "no-freshness"
    case tooLarge = "too-large"
    case partialContent = "partial-content"
    case clientNoStore = "client-no-store"
    case upstreamError = "upstream-error"
    /// A coding other than gzip (br, zstd ...) on a route where sidecache negotiates gzip itself.
    case contentEncoding = "content-encoding"
}
