import NIOHTTP1

/// The outcome of RFC 9111 §3 for one response: store it (with the lifetime and windows to keep), or
/// not (with the reason).
public enum StorageDecision: Sendable, Equatable {
    case store(StorageTerms)
    case doNotStore(NotStoredReason)
}

public struct StorageTerms: Sendable, Equatable {
    public var freshnessLifetime: CacheDuration
    public var staleWhileRevalidate: CacheDuration
    public var staleIfError: CacheDuration
    /// `no-cache`: never fresh, revalidated before every use (§5.2.2.4).
    public var revalidateAlways: Bool
    /// False under `must-revalidate` / `proxy-revalidate` (§5.2.2.2, §5.2.2.8): stale is never served.
    public var mayServeStale: Bool
    /// The response's `Date` (seconds since the epoch) and `Age`, read once here for the age
    /// calculation of RFC 9111 §4.2.3.
    public var originDate: Int64?
    public var originAge: Int64
    /// Fields a qualified `no-cache` or `private` keeps out of what is stored (§5.2.2.4, §5.2.2.7);
    /// the entry is made without them, so they are not part of its encoding.
    public var withheldFields: [String] = []

    public init(freshnessLifetime: CacheDuration, staleWhileRevalidate: CacheDuration, staleIfError: CacheDuration,
                revalidateAlways: Bool, mayServeStale: Bool, originDate: Int64? = nil, originAge: Int64 = 0, withheldFields: [String] = []) {
        self.withheldFields = withheldFields
        self.freshnessLifetime = freshnessLifetime
        self.staleWhileRevalidate = staleWhileRevalidate
        self.staleIfError = staleIfError
        self.revalidateAlways = revalidateAlways
        self.mayServeStale = mayServeStale
        self.originDate = originDate
        self.originAge = originAge
    }
}

/// Decides whether a shared cache may store a response (RFC 9111 §3) and on which terms.
public enum StorageRules {
    /// Status codes that are heuristically cacheable, i.e. may be stored with only a route TTL
    /// (RFC 9110 §15.1). 206 is left out: sidecache does not assemble ranges.
    public static let cacheableByDefault: Set<UInt> = [200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501]

    /// Statuses a shared cache understands well enough to store when the origin gives explicit
    /// freshness (§3: "the response status code is final" and understood).
    /// The final status codes RFC 9110 §15 defines: the ones whose semantics this cache knows.
    static let rfc9110Statuses: Set<UInt> = Set<UInt>(200...205).union([300, 301, 302, 303, 305, 307, 308])
        .union(400...417).union([421, 422, 426]).union(500...505)

    private static func isUnderstoodFinal(_ code: UInt) -> Bool {
        code >= 200 && code < 600 && code != 206 && code != 304
    }

    public static func evaluate(
        requestMethod: HTTPMethod,
        requestHeaders: HTTPHeaders,
        status: HTTPResponseStatus,
        responseHeaders: HTTPHeaders,
        policy: CachePolicy,
        responseTime: CacheInstant
    ) -> StorageDecision {
        guard requestMethod == .GET || requestMethod == .HEAD else { return .doNotStore(.method) }
        let code = status.code
        if code == 206 { return .doNotStore(.partialContent) }
        guard isUnderstoodFinal(code) else { return .doNotStore(.status) }

        let d = ResponseDirectives(headers: responseHeaders, targetedField: policy.targetedField)
        let cc = d.cacheControl
        // §5.2.2.3: must-understand stores only a status whose caching rules this cache implements
        // (those of RFC 9110), and then no-store is ignored.
        if cc.mustUnderstand {
            guard Self.rfc9110Statuses.contains(code) else { return .doNotStore(.status) }
        } else if cc.noStore {
            return .doNotStore(.noStore)
        }
        if cc.isPrivate { return .doNotStore(.isPrivate) }
        if policy.honorClientNoCache {
            let requestCC = CacheControl(fieldValues: requestHeaders["cache-control"])
            if requestCC.noStore { return .doNotStore(.clientNoStore) }
        }
        // §3.5: a request with Authorization is stored only when the response explicitly allows it.
        if requestHeaders.contains(name: "authorization"), !(cc.mustRevalidate || cc.isPublic || cc.sMaxAge != nil) {
            return .doNotStore(.authorization)
        }
        if responseHeaders[canonicalForm: "vary"].contains(where: { $0.trimmingSpaces() == "*" }) {
            return .doNotStore(.varyStar)
        }
        let explicit = d.hasExplicitFreshness
        // A cookie-setting response is shared only when the origin itself said it may be: a route TTL
        // alone must never hand one client's cookie to another.
        // (A qualified no-cache or private naming Set-Cookie keeps it out of the entry: safe to share.)
        if responseHeaders.contains(name: "set-cookie"), !explicit, !cc.withheldFields.contains("set-cookie") { return .doNotStore(.setCookie) }

        let lifetime: CacheDuration
        if policy.overrideOrigin, let ttl = policy.defaultTTL {
            lifetime = ttl
        } else if let origin = d.originLifetime(responseTime: responseTime) {
            lifetime = origin
        } else if policy.heuristic, cacheableByDefault.contains(code), let heuristic = Self.heuristicLifetime(responseHeaders, date: d.date,
                                                                                                           responseTime: responseTime, max: policy.heuristicMax) {
            lifetime = heuristic
        } else if let ttl = policy.defaultTTL, cacheableByDefault.contains(code) {
            lifetime = ttl
        } else if cc.noCache && cacheableByDefault.contains(code) {
            // no-cache responses are worth storing for revalidation even without a lifetime.
            lifetime = .zero
        } else {
            return .doNotStore(explicit ? .noFreshness : (cacheableByDefault.contains(code) ? .noFreshness : .status))
        }
        if !explicit, !cacheableByDefault.contains(code), !(policy.overrideOrigin && policy.defaultTTL != nil) {
            return .doNotStore(.status)
        }

        let mayServeStale = !(cc.mustRevalidate || cc.proxyRevalidate)
        let swr = max(policy.staleWhileRevalidate, cc.staleWhileRevalidate.map { .seconds($0) } ?? .zero)
        let sie = max(policy.staleIfError, cc.staleIfError.map { .seconds($0) } ?? .zero)
        return .store(StorageTerms(
            freshnessLifetime: lifetime,
            staleWhileRevalidate: mayServeStale ? swr : .zero,
            staleIfError: mayServeStale ? sie : .zero,
            revalidateAlways: cc.noCache,
            mayServeStale: mayServeStale,
            originDate: d.date,
            originAge: d.age,
            withheldFields: cc.withheldFields
        ))
    }

    /// RFC 9111 §4.2.2: 10% of the time since `Last-Modified` (by `Date`, else the response time),
    /// capped; nil without a usable `Last-Modified` (or one in the future).
    static func heuristicLifetime(_ headers: HTTPHeaders, date: Int64?, responseTime: CacheInstant, max cap: CacheDuration) -> CacheDuration? {
        guard let text = headers.first(name: "last-modified"), let modified = HTTPDate.parse(text) else { return nil }
        let since = (date ?? responseTime.seconds) - modified
        guard since > 0 else { return nil }
        return min(.seconds(since / 10), cap)
    }
}
