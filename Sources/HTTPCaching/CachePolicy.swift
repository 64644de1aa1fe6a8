/// What a route asks of the cache, beyond what the origin's headers say. Compiled from the config
/// file; the RFC 9111 logic in this module reads it but never knows about YAML.
public struct CachePolicy: Sendable, Equatable {
    /// Freshness lifetime used when the origin gives none (no `s-maxage`, `max-age` or `Expires`).
    public var defaultTTL: CacheDuration?
    /// When true, `defaultTTL` wins even over an explicit lifetime from the origin.
    public var overrideOrigin: Bool
    /// RFC 5861 windows granted by the route; an origin's own directives may widen them.
    public var staleWhileRevalidate: CacheDuration
    public var staleIfError: CacheDuration
    /// Lowercased name of the targeted cache-control field (RFC 9213) that takes precedence over
    /// `Cache-Control` for this cache's decisions.
    public var targetedField: String
    /// A sidecar protects its origin: by default a client's `no-cache`/`max-age=0`/`no-store` does not
    /// force a trip to the origin. Routes may opt in.
    public var honorClientNoCache: Bool
    /// RFC 9111 §4.2.2: a response with `Last-Modified` but no explicit lifetime, of a heuristically
    /// cacheable status, is fresh for 10% of (`Date` - `Last-Modified`), at most `heuristicMax`.
    public var heuristic: Bool
    public var heuristicMax: CacheDuration

    public init(
        defaultTTL: CacheDuration? = nil,
        overrideOrigin: Bool = false,
        staleWhileRevalidate: CacheDuration = .zero,
        staleIfError: CacheDuration = .zero,
        targetedField: String = "cdn-cache-control",
        honorClientNoCache: Bool = false,
        heuristic: Bool = false,
        heuristicMax: CacheDuration = .seconds(86_400)
    ) {
        self.defaultTTL = defaultTTL
        self.overrideOrigin = overrideOrigin
        self.staleWhileRevalidate = staleWhileRevalidate
        self.staleIfError = staleIfError
        self.targetedField = targetedField.lowercased()
        self.honorClientNoCache = honorClientNoCache
        self.heuristic = heuristic
        self.heuristicMax = heuristicMax
    }
}
