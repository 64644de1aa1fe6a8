import HTTPWire
import NIOCore

/// The `Cache-Status` field (RFC 9211) of one response, as a value: how the cache handled the
/// request, built where the decision is made and rendered once, into the response head's bytes
/// (`write`) or as text for a header list. Parameters come out in the RFC's order (§2.1–2.8),
/// then sidecache's own `tier`.
///
/// A fresh hit's value, the common one, is rendered from static strings and one number: no string
/// is built on the hit path.
public struct CacheStatus: Sendable, Equatable {
    /// `fwd`: why the request went to the next hop (RFC 9211 §2.2).
    public enum Forward: String, Sendable, CaseIterable {
        /// The cache was configured not to handle the request (route without caching, no route).
        case bypass
        /// The method is not cached.
        case method
        /// The request's own directives or fields (Range, no-cache) made the cache forward it.
        case request
        /// Nothing usable was stored.
        case miss
        /// A stored response was stale and went to the origin for validation (or failed there).
        case stale
    }

    /// `detail`: what else the cache wants to say (RFC 9211 §2.8). Stable names, shared with logs.
    public struct Detail: Sendable, Equatable, Hashable, CustomStringConvertible {
        public let name: String

        public init(_ name: String) { self.name = name }

        public var description: String { name }

        /// Served stale while a background fetch refreshes the entry (RFC 5861 §3).
        public static let staleWhileRevalidate = Detail("stale-while-revalidate")
        /// The upstream's circuit breaker is open: the upstream was not asked.
        public static let circuitOpen = Detail("circuit-open")
        /// The request's route refused it: over its rate limit.
        public static let rateLimited = Detail("rate-limited")
        /// A coalesced request learned the shared fetch was not storable and fetched on its own.
        public static let uncacheable = Detail("uncacheable")
        /// A purge matched while the response was being fetched: it was served, not stored.
        public static let invalidated = Detail("invalidated")
        /// The response was not stored for the reason given (RFC 9211 lets `detail` say why).
        public static func notStored(_ reason: NotStoredReason) -> Detail { Detail(reason.rawValue) }
        /// The upstream failed with `kind` and a stored response was served instead (RFC 5861 §4).
        public static func staleIfError(_ kind: String) -> Detail { Detail("stale-if-error-" + kind) }
    }

    /// `tier`: where a hit was found when that was not the memory cache.
    public enum Tier: String, Sendable {
        case l2
    }

    public var hit: Bool
    public var forward: Forward?
    /// `fwd-status`: the status the next hop answered.
    public var forwardStatus: UInt?
    /// `ttl`: seconds of freshness left; negative when served stale.
    public var ttl: Int64?
    public var stored: Bool
    public var collapsed: Bool
    public var detail: Detail?
    public var tier: Tier?

    @inlinable
    public init(hit: Bool = false, forward: Forward? = nil, forwardStatus: UInt? = nil, ttl: Int64? = nil, stored: Bool = false,
                collapsed: Bool = false, detail: Detail? = nil, tier: Tier? = nil) {
        self.hit = hit
        self.forward = forward
        self.forwardStatus = forwardStatus
        self.ttl = ttl
        self.stored = stored
        self.collapsed = collapsed
        self.detail = detail
        self.tier = tier
    }

    /// Served from a stored response with `ttl` seconds of freshness left (negative: stale).
    @inlinable
    public static func hit(ttl: Int64, detail: Detail? = nil, tier: Tier? = nil) -> CacheStatus {
        CacheStatus(hit: true, ttl: ttl, detail: detail, tier: tier)
    }

    /// Went to the upstream (or would have, when `detail` says why it did not get there).
    public static func forwarded(_ reason: Forward, status: UInt? = nil, stored: Bool = false, collapsed: Bool = false,
                                 detail: Detail? = nil) -> CacheStatus {
        CacheStatus(forward: reason, forwardStatus: status, stored: stored, collapsed: collapsed, detail: detail)
    }

    /// Answered by sidecache without the cache or the upstream: only a `detail` says why.
    public static func answeredLocally(_ detail: Detail) -> CacheStatus { CacheStatus(detail: detail) }

    /// The field value as text, for a header list: the same bytes as `write`, built as a string.
    public var text: String {
        var s = String()
        s.reserveCapacity(maxBytes)
        s += "sidecache"  // as `write`
        if hit { s += "; hit" }
        if let forward { s += "; fwd="; s += forward.rawValue }
        if let forwardStatus { s += "; fwd-status="; s += String(forwardStatus) }
        if let ttl { s += "; ttl="; s += String(ttl) }
        if stored { s += "; stored" }
        if collapsed { s += "; collapsed" }
        if let detail { s += "; detail="; s += detail.name }
        if tier == .l2 { s += "; tier=l2" }
        return s
    }

    /// At least the bytes `write` adds.
    @inlinable
    public var maxBytes: Int {
        var total = 9 + 5 + 6 + 20 + 20 + 16 + 8 + 11 + 9
        total += forward.map { $0.rawValue.utf8.count } ?? 0
        total += detail.map { $0.name.utf8.count + 9 } ?? 0
        return total
    }

    /// Rendered into the response head. Inlinable: every hit writes it, and across the module
    /// boundary it would cost a call and a copy of the value.
    @inlinable
    public func write(to out: inout HeadBytes) {
        out.put("sidecache")
        if hit { out.put("; hit") }
        if let forward {
            out.put("; fwd=")
            out.put(forward.rawValue)
        }
        if let forwardStatus {
            out.put("; fwd-status=")
            out.putDecimal(Int64(forwardStatus))
        }
        if let ttl {
            out.put("; ttl=")
            out.putDecimal(ttl)
        }
        if stored { out.put("; stored") }
        if collapsed { out.put("; collapsed") }
        if let detail {
            out.put("; detail=")
            out.put(detail.name)
        }
        if tier == .l2 { out.put("; tier=l2") }
    }
}
