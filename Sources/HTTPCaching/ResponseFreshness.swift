import NIOHTTP1

/// The freshness-relevant facts of a response, read once from its headers.
///
/// RFC 9213 §2.1: when the route's targeted field (by default `CDN-Cache-Control`) is present and
/// parses as a Structured Field Dictionary of well-typed directives, it replaces `Cache-Control` for
/// this cache's decisions.
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
        if let targeted = CacheControl.targeted(fieldValues: headers[targetedField]) {
            cacheControl = targeted
            usedTargetedField = true
        } else {
            cacheControl = CacheControl(fieldValues: headers["cache-control"])
            usedTargetedField = false
        }
        // RFC 9111 §5.3: a value that is not an HTTP-date, or more than one, means already expired.
        let expiresValues = headers["expires"]  // field lines: a date holds a comma itself
        if expiresValues.isEmpty {
            expires = .absent
        } else if expiresValues.count == 1, let at = HTTPDate.parse(expiresValues[0].trimmingSpaces()) {
            expires = .at(at)
        } else {
            expires = .invalid
        }
        date = headers.first(name: "date").flatMap(HTTPDate.parse)
        age = Self.age(headers)
    }

    /// RFC 9111 §5.1: `Age` is delta-seconds; of a list, the first member counts. One that is not a
    /// non-negative integer makes the response stale (it is then taken as the largest age, 2^31,
    /// which no lifetime or stale window covers); so does one beyond 2^31 (§1.2.2).
    static func age(_ headers: HTTPHeaders) -> Int64 {
        guard let line = headers["age"].first else { return 0 }
        let member = String(line.split(separator: ",", maxSplits: 1, omittingEmptySubsequences: false).first ?? "").trimmingSpaces()
        guard !member.isEmpty, member.utf8.allSatisfy({ $0 &- 0x30 < 10 }) else { return maxAge }
        return member.utf8.count > 10 ? maxAge : min(Int64(member) ?? maxAge, maxAge)
    }

    /// 2^31 seconds: the age of a response whose `Age` is invalid or too large (RFC 9111 §1.2.2).
    public static let maxAge: Int64 = 2_147_483_648

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
