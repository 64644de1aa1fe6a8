import HTTPCaching
import NIOCore
import NIOHTTP1
import Testing

/// RFC 9111 §4.2 arithmetic with explicit instants: no test waits for time to pass.
@Suite struct FreshnessTests {
    let t0 = CacheInstant(seconds: 1_800_000_000)

    func entry(_ headers: [(String, String)], policy: CachePolicy = CachePolicy(), requestTime: CacheInstant? = nil,
               responseTime: CacheInstant? = nil) throws -> CachedResponse {
        let h = HTTPHeaders(headers)
        let decision = StorageRules.evaluate(requestMethod: .GET, requestHeaders: [:], status: .ok, responseHeaders: h,
                                             policy: policy, responseTime: responseTime ?? t0)
        guard case .store(let terms) = decision else {
            Issue.record("not storable: \(decision)")
            throw CancellationError()
        }
        return CachedResponse(status: .ok, headers: h, body: ByteBuffer(string: "x"), requestTime: requestTime ?? t0,
                              responseTime: responseTime ?? t0, terms: terms, varyNames: [], varyValues: [], tags: [])
    }

    func date(_ t: CacheInstant) -> String { HTTPDate.format(secondsSinceEpoch: t.seconds) }

    @Test func freshUntilMaxAgeThenStale() throws {
        let e = try entry([("Cache-Control", "max-age=60"), ("Date", date(t0))])
        #expect(e.freshness(at: t0 + .seconds(59)) == .fresh(remaining: .seconds(1)))
        #expect(e.freshness(at: t0 + .seconds(60)) == .stale(staleness: .zero))
        #expect(e.freshness(at: t0 + .seconds(75)) == .stale(staleness: .seconds(15)))
    }

    @Test func ageCountsTheOriginAgeAndTheResponseDelay() throws {
        // §4.2.3: corrected_age_value = age_value + (response_time - request_time).
        let e = try entry([("Cache-Control", "max-age=100"), ("Age", "30"), ("Date", date(t0))],
                          requestTime: t0 - .seconds(2), responseTime: t0)
        #expect(e.age(at: t0) == .seconds(32))
        #expect(e.age(at: t0 + .seconds(10)) == .seconds(42))
        #expect(e.freshness(at: t0 + .seconds(67)) == .fresh(remaining: .seconds(1)))
    }

    @Test func apparentAgeFromAnOldDateWins() throws {
        let e = try entry([("Cache-Control", "max-age=100"), ("Date", date(t0 - .seconds(40)))])
        #expect(e.age(at: t0) == .seconds(40))
    }

    @Test func sMaxAgeBeatsMaxAgeWhichBeatsExpires() throws {
        let all = try entry([("Cache-Control", "max-age=10, s-maxage=20"), ("Expires", date(t0 + .seconds(30))), ("Date", date(t0))])
        #expect(all.terms.freshnessLifetime == .seconds(20))
        let noShared = try entry([("Cache-Control", "max-age=10"), ("Expires", date(t0 + .seconds(30))), ("Date", date(t0))])
        #expect(noShared.terms.freshnessLifetime == .seconds(10))
        let onlyExpires = try entry([("Expires", date(t0 + .seconds(30))), ("Date", date(t0))])
        #expect(onlyExpires.terms.freshnessLifetime == .seconds(30))
    }

    @Test func invalidExpiresMeansAlreadyExpired() throws {
        let e = try entry([("Expires", "0"), ("ETag", "\"a\"")])
        #expect(e.terms.freshnessLifetime == .zero)
        #expect(e.freshness(at: t0) == .stale(staleness: .zero))
    }

    @Test func anExpiresOutsideTheDateGrammarOrGivenTwiceMeansAlreadyExpired() throws {
        let good = date(t0 + .seconds(30))
        #expect(try entry([("Expires", good), ("Date", date(t0))]).terms.freshnessLifetime == .seconds(30))
        #expect(try entry([("Expires", good.lowercased()), ("Date", date(t0))]).terms.freshnessLifetime == .seconds(30))
        var parts = good.split(separator: " ").map(String.init)  // Fri, 15 Jan 2027 08:00:30 GMT
        parts[3] = String(parts[3].suffix(2))
        let twoDigitYear = parts.joined(separator: " ")
        let noComma = String(good.filter { $0 != "," })
        let spaces = good.split(separator: " ").joined(separator: "  ")
        for bad in [twoDigitYear, noComma, spaces] {
            let e = try entry([("Expires", bad), ("Date", date(t0)), ("ETag", "\"a\"")])
            #expect(e.terms.freshnessLifetime == .zero, "Expires: \(bad)")
        }
        let twice = try entry([("Expires", good), ("Expires", good), ("Date", date(t0)), ("ETag", "\"a\"")])
        #expect(twice.terms.freshnessLifetime == .zero)
    }

    /// RFC 9111 §5.1: the first member of a list-valued `Age` counts; one that is not a
    /// non-negative integer makes the response stale, like an age beyond 2^31 (§1.2.2).
    @Test func anInvalidAgeMakesTheResponseStale() throws {
        let listed = try entry([("Cache-Control", "max-age=100"), ("Age", "10, 50"), ("Date", date(t0))])
        #expect(listed.age(at: t0) == .seconds(10))
        for bad in ["old, 0", "-5", "1.5", "", "99999999999999999999999"] {
            let e = try entry([("Cache-Control", "max-age=100, stale-while-revalidate=60"), ("Age", bad), ("Date", date(t0))])
            #expect(!e.freshness(at: t0).isFresh, "Age: \(bad)")
            #expect(!e.isWithinStaleWhileRevalidate(at: t0), "Age: \(bad)")
        }
    }

    /// RFC 9111 §4.2.2: 10% of (Date - Last-Modified), capped, only when the route allows it.
    @Test func heuristicFreshnessIsATenthOfTheTimeSinceLastModified() throws {
        let heuristic = CachePolicy(heuristic: true, heuristicMax: .seconds(3600))
        let recent = [("Last-Modified", date(t0 - .seconds(5000))), ("Date", date(t0))]
        #expect(try entry(recent, policy: heuristic).terms.freshnessLifetime == .seconds(500))
        let old = [("Last-Modified", date(t0 - .seconds(864_000))), ("Date", date(t0))]
        #expect(try entry(old, policy: heuristic).terms.freshnessLifetime == .seconds(3600), "capped by heuristic_max")
        // An explicit lifetime, or a route that did not ask for it, wins.
        #expect(try entry(recent + [("Cache-Control", "max-age=7")], policy: heuristic).terms.freshnessLifetime == .seconds(7))
        let off = StorageRules.evaluate(requestMethod: .GET, requestHeaders: [:], status: .ok, responseHeaders: HTTPHeaders(recent),
                                        policy: CachePolicy(), responseTime: t0)
        #expect(off == .doNotStore(.noFreshness))
        // Not for a status that is not heuristically cacheable, nor with a cookie.
        let created = StorageRules.evaluate(requestMethod: .GET, requestHeaders: [:], status: .created, responseHeaders: HTTPHeaders(recent),
                                            policy: heuristic, responseTime: t0)
        #expect(created != .store(try entry(recent, policy: heuristic).terms))
        let cookie = StorageRules.evaluate(requestMethod: .GET, requestHeaders: [:], status: .ok, responseHeaders: HTTPHeaders(recent + [("Set-Cookie", "a=1")]),
                                           policy: heuristic, responseTime: t0)
        #expect(cookie == .doNotStore(.setCookie))
    }

    /// RFC 9111 §5.2.2.3: a cache that implements the status's rules ignores no-store next to
    /// must-understand; for a status it does not implement, nothing is stored.
    @Test func mustUnderstandLiftsNoStoreForUnderstoodStatuses() throws {
        let lifted = try entry([("Cache-Control", "must-understand, no-store, max-age=60")])
        #expect(lifted.terms.freshnessLifetime == .seconds(60))
        let unknown = StorageRules.evaluate(requestMethod: .GET, requestHeaders: [:], status: .init(statusCode: 299),
                                            responseHeaders: ["Cache-Control": "must-understand, no-store, max-age=60"], policy: CachePolicy(), responseTime: t0)
        #expect(unknown == .doNotStore(.status))
        let plain = StorageRules.evaluate(requestMethod: .GET, requestHeaders: [:], status: .ok, responseHeaders: ["Cache-Control": "no-store, max-age=60"],
                                          policy: CachePolicy(), responseTime: t0)
        #expect(plain == .doNotStore(.noStore))
    }

    @Test func routeTTLAppliesOnlyWithoutOriginLifetimeUnlessOverriding() throws {
        let ttl = CachePolicy(defaultTTL: .seconds(300))
        #expect(try entry([], policy: ttl).terms.freshnessLifetime == .seconds(300))
        #expect(try entry([("Cache-Control", "max-age=5")], policy: ttl).terms.freshnessLifetime == .seconds(5))
        let override = CachePolicy(defaultTTL: .seconds(300), overrideOrigin: true)
        #expect(try entry([("Cache-Control", "max-age=5")], policy: override).terms.freshnessLifetime == .seconds(300))
    }

    @Test func noCacheIsStoredButNeverFresh() throws {
        let e = try entry([("Cache-Control", "no-cache, max-age=600"), ("ETag", "\"v1\"")])
        #expect(e.terms.revalidateAlways)
        #expect(e.freshness(at: t0) == .stale(staleness: .zero))
        #expect(!e.isWithinStaleWhileRevalidate(at: t0))
    }

    @Test func staleWindowsComeFromRouteOrOriginWhicheverIsLonger() throws {
        let policy = CachePolicy(staleWhileRevalidate: .seconds(30), staleIfError: .seconds(60))
        let e = try entry([("Cache-Control", "max-age=10, stale-while-revalidate=5, stale-if-error=600")], policy: policy)
        #expect(e.isWithinStaleWhileRevalidate(at: t0 + .seconds(40)))
        #expect(!e.isWithinStaleWhileRevalidate(at: t0 + .seconds(41)))
        #expect(e.isWithinStaleIfError(at: t0 + .seconds(610)))
        #expect(!e.isWithinStaleIfError(at: t0 + .seconds(611)))
    }

    @Test func mustRevalidateForbidsServingStale() throws {
        let policy = CachePolicy(staleWhileRevalidate: .seconds(30), staleIfError: .seconds(60))
        for directive in ["must-revalidate", "proxy-revalidate"] {
            let e = try entry([("Cache-Control", "max-age=10, \(directive)")], policy: policy)
            #expect(!e.isWithinStaleWhileRevalidate(at: t0 + .seconds(11)))
            #expect(!e.isWithinStaleIfError(at: t0 + .seconds(11)))
        }
    }

    @Test func a304RefreshesHeadersAndRestartsTheClock() throws {
        let e = try entry([("Cache-Control", "max-age=10"), ("ETag", "\"v1\""), ("X-Version", "1"), ("Content-Length", "1")])
        let later = t0 + .seconds(100)
        let updates = HTTPHeaders([("Cache-Control", "max-age=20"), ("X-Version", "2"), ("Content-Length", "0")])
        let decision = StorageRules.evaluate(requestMethod: .GET, requestHeaders: [:], status: .ok, responseHeaders: updates,
                                             policy: CachePolicy(), responseTime: later)
        guard case .store(let terms) = decision else { Issue.record("not storable"); return }
        let refreshed = e.refreshed(headers: e.headersRefreshed(by: updates), requestTime: later, responseTime: later, terms: terms)
        #expect(refreshed.headers.first(name: "x-version") == "2")
        #expect(refreshed.headers.first(name: "content-length") == "1")
        #expect(refreshed.headers.first(name: "etag") == "\"v1\"")
        #expect(refreshed.freshness(at: later + .seconds(5)) == .fresh(remaining: .seconds(15)))
        #expect(refreshed.body == e.body)
    }
}
