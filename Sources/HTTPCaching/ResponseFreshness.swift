import NIOHTTP1

/// The freshness-relevant facts of a response, read once from its headers.
///
/// RFC 9213 §2.1: when the route's targeted field (by default `CDN-Cache-Control`) is present with
/// at least one valid directive, it replaces `Cache-Control` for this cache's decisions.
public struct ResponseDirectives: Sendable {
    public var cacheControl: CacheControl
    /// Seconds since the epoch from `Expires`; `.invalid` when present but unparsable (§5.3: treat as
    /// already expired).
    public var expires: ExpiresValue
    public var date: Int64?
    public var age: Int64
    public var usedTargetedField: Bool

    public enum ExpiresValue: Sendable, Equatable {
        case absent
        case invalid
        case at(Int64)
    }

    public init(headers: HTTPHeaders, targetedField: String) {
        let targeted = CacheControl(fieldValues: headers[targetedField])
        if targeted.hasDirectives {
            cacheControl = targeted
            usedTargetedField = true
        } else {
            cacheControl = CacheControl(fieldValues: headers["cache-control"])
            usedTargetedField = false
        }
        if let raw = headers.first(name: "expires") {
            expires = HTTPDate.parse(raw).map(ExpiresValue.at) ?? .invalid
        } else {
            expires = .absent
        }
        date = headers.first(name: "date").flatMap(HTTPDate.parse)
        let ageText = headers.first(name: "age")?.trimmingSpaces() ?? ""
        age = Int64(ageText).map { max(0, $0) } ?? 0
    }

    /// True when the origin itself said how long the response stays fresh (§4.2.1).
    public var hasExplicitFreshness: Bool {
        cacheControl.hasExplicitLifetime || expires != .absent
    }

    /// §4.2.1: the shared-cache lifetime the origin gave: `s-maxage`, else `max-age`, else
    /// `Expires - Date`. Nil when it gave none.
    public func originLifetime(responseTime: CacheInstant) -> CacheDuration? {
        if let s = cacheControl.sMaxAge { return .seconds(s) }
        if let m = cacheControl.maxAge { return .seconds(m) }
        switch expires {
        case .absent: return nil
        case .invalid: return .zero
        case .at(let e):
            let base = date ?? responseTime.seconds
            return .seconds(max(0, e - base))
        }
    }
}

/// Where a stored response stands at a given moment.
public enum FreshnessState: Sendable, Equatable {
    /// Usable without contacting the origin; `remaining` is what `Cache-Status: ttl=` reports.
    case fresh(remaining: CacheDuration)
    /// Must be revalidated (or refetched) before use; `staleness` is how long past its lifetime it
    /// is (zero for `no-cache` responses, which are never fresh).
    case stale(staleness: CacheDuration)
}

extension FreshnessState {
    public var isFresh: Bool {
        if case .fresh = self { return true }
        return false
    }
}
