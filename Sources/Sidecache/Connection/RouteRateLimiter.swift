import HTTPWire
import CoreMetrics
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import Resilience
import SidecacheConfig

/// The rate limit of one route: its local key table, the counters, and the log of refusals.
/// Survives reloads that leave the route's `rate_limit` unchanged (see `RouteLimiters`).
final class RouteRateLimiter: Sendable {
    let route: String
    let settings: SidecacheConfiguration.RateLimit
    let gcra: GCRA
    let local: RateLimitTable
    /// The time of the local table and of the refusal log.
    let clock: MonotonicClock
    private let counters: (admitted: CoreMetrics.Counter, refused: CoreMetrics.Counter, shadowRefused: CoreMetrics.Counter)
    private let logger: Logger
    private let refusalLog = NIOLockedValueBox(RefusalLog())
    /// Whether the last shared decision fell back to the local table (logged on each change).
    private let usingFallback = NIOLockedValueBox(false)
    let fallbacks: CoreMetrics.Counter

    /// At most one log line per route this often about refusals.
    static let logInterval: Int64 = 10_000_000_000

    private struct RefusalLog {
        var since = 0
        var lastLogged: Int64?
    }

    init(route: String, settings: SidecacheConfiguration.RateLimit, clock: MonotonicClock, logger: Logger, metrics: SidecacheMetrics) {
        self.clock = clock
        self.route = route
        self.settings = settings
        self.gcra = settings.gcra
        self.local = RateLimitTable(gcra: gcra)
        self.counters = metrics.rateLimitCounters(route: route)
        self.fallbacks = metrics.rateLimitFallbacks
        self.logger = logger
    }

    /// The bucket a request falls in.
    func key(for head: HTTPRequestHead, peer: String, trusted: [CIDRBlock]) -> String {
        switch settings.key {
        case .route: return ""
        case .header(let name): return head.headers.first(name: name) ?? ""
        case .clientIP:
            guard !trusted.isEmpty else { return peer }
            return ClientAddress.resolve(peer: peer, forwardedFor: head.headers[canonicalForm: "x-forwarded-for"], trusted: trusted)
        }
    }

    /// This instance's decision.
    func decideLocally(key: String) -> GCRA.Decision {
        local.decide(key: key, now: clock.nanoseconds())
    }

    /// Counts a decision; in shadow mode a refusal is counted and logged but the request admitted.
    /// Returns whether the request may go on.
    func settle(_ decision: GCRA.Decision, key: String) -> Bool {
        if decision.admitted {
            counters.admitted.increment()
            return true
        }
        (settings.shadow ? counters.shadowRefused : counters.refused).increment()
        noteRefusal(key: key)
        return settings.shadow
    }

    /// One line per route per `logInterval` at most, with how many were refused since the last.
    private func noteRefusal(key: String) {
        let now = clock.nanoseconds()
        let count: Int? = refusalLog.withLockedValue { log in
            log.since += 1
            if let last = log.lastLogged, now - last < Self.logInterval { return nil }
            defer { log.since = 0; log.lastLogged = now }
            return log.since
        }
        guard let count else { return }
        let verb = settings.shadow ? "would have refused (shadow mode)" : "refused"
        logger.warning("rate limit \(verb) requests", metadata: [
            "route": "\(route)", "count": "\(count)", "example_key": "\(key.prefix(64))",
            "limit": "\(settings.requests)/\(DurationText.format(settings.per))", "burst": "\(settings.burst)",
        ])
    }

    /// Notes whether a shared decision came from Redis or from the local fallback.
    func noteShared(fellBack: Bool, error: (any Error)? = nil) {
        if fellBack { fallbacks.increment() }
        let changed = usingFallback.withLockedValue { current -> Bool in
            defer { current = fellBack }
            return current != fellBack
        }
        guard changed else { return }
        if fellBack {
            logger.warning("shared rate limit unavailable (redis did not answer); using this instance's local limit", metadata: [
                "route": "\(route)", "error": "\(error.map { "\($0)" } ?? "-")",
            ])
        } else {
            logger.notice("shared rate limit back in use through redis", metadata: ["route": "\(route)"])
        }
    }

    /// `RateLimit-*` fields (IETF draft-ietf-httpapi-ratelimit-headers) for a decision.
    func fields(for decision: GCRA.Decision) -> RateLimitFields {
        RateLimitFields(limit: settings.requests, remaining: decision.remaining, resetSeconds: wholeSeconds(roundingUp: decision.resetAfter),
                        retryAfterSeconds: decision.admitted ? nil : max(1, wholeSeconds(roundingUp: decision.retryAfter)))
    }
}

/// Whole seconds, rounded up, for `Retry-After` and `RateLimit-Reset`.
func wholeSeconds(roundingUp nanoseconds: Int64) -> Int {
    Int((max(0, nanoseconds) + 999_999_999) / 1_000_000_000)
}

/// The fields a rate-limited route adds to its responses.
struct RateLimitFields: Sendable, Equatable {
    var limit: Int
    var remaining: Int
    var resetSeconds: Int
    /// Set on a refusal.
    var retryAfterSeconds: Int?

    func add(to headers: inout HTTPHeaders) {
        headers.add(name: "RateLimit-Limit", value: String(limit))
        headers.add(name: "RateLimit-Remaining", value: String(remaining))
        headers.add(name: "RateLimit-Reset", value: String(resetSeconds))
        if let retryAfterSeconds { headers.add(name: "Retry-After", value: String(retryAfterSeconds)) }
    }

    /// The same fields as raw header lines (for the pre-encoded hit path), each ending in CRLF.
    func write(to out: inout HeadBytes) {
        out.put("RateLimit-Limit: ")
        out.putDecimal(Int64(limit))
        out.put("\r\nRateLimit-Remaining: ")
        out.putDecimal(Int64(remaining))
        out.put("\r\nRateLimit-Reset: ")
        out.putDecimal(Int64(resetSeconds))
        out.put("\r\n")
    }

    /// At least the bytes `write` adds.
    static let maxBytes = 17 + 21 + 21 + 17 + 20 + 2 + 17 + 20 + 2
}

/// The limiters of one config snapshot, indexed like its routes.
final class RouteLimiters: Sendable {
    private let byIndex: [RouteRateLimiter?]

    /// Reuses `previous`'s limiter for every route whose name and settings are unchanged, so a
    /// reload does not hand every client a fresh burst.
    init(_ snapshot: ConfigSnapshot, previous: RouteLimiters?, clock: MonotonicClock, logger: Logger, metrics: SidecacheMetrics) {
        let old = previous?.byIndex.compactMap { $0 } ?? []
        byIndex = snapshot.routes.map { route in
            guard let settings = route.rateLimit else { return nil }
            if let kept = old.first(where: { $0.route == route.name && $0.settings == settings }) { return kept }
            return RouteRateLimiter(route: route.name, settings: settings, clock: clock, logger: logger, metrics: metrics)
        }
    }

    var all: [RouteRateLimiter] { byIndex.compactMap { $0 } }

    func limiter(for route: CompiledRoute) -> RouteRateLimiter? {
        route.index < byIndex.count ? byIndex[route.index] : nil
    }
}
