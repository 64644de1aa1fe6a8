import HTTPCaching
import NIOCore
import NIOHTTP1
import Testing

/// The decisions about a found entry, from the entry, the request's wish and an explicit instant.
@Suite struct CacheDecisionTests {
    let t0 = CacheInstant(seconds: 1_800_000_000)

    func entry(_ cacheControl: String) throws -> CachedResponse {
        let h = HTTPHeaders([("Cache-Control", cacheControl), ("Date", HTTPDate.format(secondsSinceEpoch: t0.seconds))])
        let decision = StorageRules.evaluate(requestMethod: .GET, requestHeaders: [:], status: .ok, responseHeaders: h,
                                             policy: CachePolicy(), responseTime: t0)
        guard case .store(let terms) = decision else {
            Issue.record("not storable: \(decision)")
            throw CancellationError()
        }
        return CachedResponse(status: .ok, headers: h, body: ByteBuffer(string: "x"), requestTime: t0, responseTime: t0, terms: terms,
                              varyNames: [], varyValues: [], tags: [])
    }

    @Test func aFreshEntryIsServedWithTheSecondsItHasLeft() throws {
        let e = try entry("max-age=60")
        #expect(CacheDecision.use(e, at: t0 + .seconds(15), clientAsksRevalidation: false) == .serveFresh(.hit(ttl: 45)))
        #expect(CacheDecision.use(e, at: t0, clientAsksRevalidation: false, tier: .l2) == .serveFresh(.hit(ttl: 60, tier: .l2)))
    }

    @Test func aClientAskingForRevalidationValidatesEvenAFreshEntry() throws {
        #expect(CacheDecision.use(try entry("max-age=60"), at: t0, clientAsksRevalidation: true) == .validate)
    }

    @Test func withinStaleWhileRevalidateItIsServedAndRefreshedBeyondItValidated() throws {
        let e = try entry("max-age=10, stale-while-revalidate=30")
        #expect(CacheDecision.use(e, at: t0 + .seconds(10), clientAsksRevalidation: false)
            == .serveStaleAndRefresh(.hit(ttl: -1, detail: .staleWhileRevalidate)))
        #expect(CacheDecision.use(e, at: t0 + .seconds(25), clientAsksRevalidation: false)
            == .serveStaleAndRefresh(.hit(ttl: -15, detail: .staleWhileRevalidate)))
        #expect(CacheDecision.use(e, at: t0 + .seconds(41), clientAsksRevalidation: false) == .validate)
        #expect(CacheDecision.isServable(e, at: t0 + .seconds(40)))
        #expect(!CacheDecision.isServable(e, at: t0 + .seconds(41)))
    }

    @Test func withoutAStaleWindowTheInstantOfExpiryIsAlreadyValidated() throws {
        // Age equal to the lifetime is stale by zero: no stale-while-revalidate or stale-if-error
        // of zero lets it be served (it used to, for that one millisecond).
        let e = try entry("max-age=10")
        #expect(CacheDecision.use(e, at: t0 + .milliseconds(9_999), clientAsksRevalidation: false) == .serveFresh(.hit(ttl: 0)))
        #expect(CacheDecision.use(e, at: t0 + .seconds(10), clientAsksRevalidation: false) == .validate)
        #expect(!e.isWithinStaleIfError(at: t0 + .seconds(10)))
        #expect(CacheDecision.staleInsteadOfError(e, at: t0 + .seconds(10), upstreamRefused: false, failure: "connect-failed") == nil)
        let swr = try entry("max-age=10, stale-while-revalidate=5, stale-if-error=5")
        #expect(CacheDecision.use(swr, at: t0 + .seconds(10), clientAsksRevalidation: false)
            == .serveStaleAndRefresh(.hit(ttl: -1, detail: .staleWhileRevalidate)))
        #expect(swr.isWithinStaleIfError(at: t0 + .seconds(15)))
    }

    @Test func mustRevalidateIsNeverServedStaleWhileRevalidating() throws {
        let e = try entry("max-age=10, must-revalidate, stale-while-revalidate=30")
        #expect(CacheDecision.use(e, at: t0 + .seconds(11), clientAsksRevalidation: false) == .validate)
    }

    @Test func anUpstreamFailureIsHiddenOnlyWithinStaleIfError() throws {
        let e = try entry("max-age=10, stale-if-error=60")
        #expect(CacheDecision.staleInsteadOfError(e, at: t0 + .seconds(30), upstreamRefused: false, failure: "connect-failed")
            == .forwarded(.stale, detail: .staleIfError("connect-failed")))
        #expect(CacheDecision.staleInsteadOfError(e, at: t0 + .seconds(71), upstreamRefused: false, failure: "connect-failed") == nil)
        #expect(CacheDecision.staleInsteadOfError(nil, at: t0, upstreamRefused: true, failure: "circuit-open") == nil)
    }

    @Test func withTheBreakerOpenAnyStaleCopyServesUnlessTheOriginForbadeIt() throws {
        let plain = try entry("max-age=10")
        #expect(CacheDecision.staleInsteadOfError(plain, at: t0 + .seconds(300), upstreamRefused: true, failure: "circuit-open")
            == .hit(ttl: -290, detail: .circuitOpen))
        let strict = try entry("max-age=10, must-revalidate")
        #expect(CacheDecision.staleInsteadOfError(strict, at: t0 + .seconds(300), upstreamRefused: true, failure: "circuit-open") == nil)
    }
}
