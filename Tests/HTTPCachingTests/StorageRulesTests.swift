import HTTPCaching
import NIOHTTP1
import Testing

@Suite struct StorageRulesTests {
    let now = CacheInstant(seconds: 1_800_000_000)

    func decide(_ response: [(String, String)], status: HTTPResponseStatus = .ok, request: [(String, String)] = [],
                policy: CachePolicy = CachePolicy(defaultTTL: .seconds(60)), method: HTTPMethod = .GET) -> StorageDecision {
        StorageRules.evaluate(requestMethod: method, requestHeaders: HTTPHeaders(request), status: status,
                              responseHeaders: HTTPHeaders(response), policy: policy, responseTime: now)
    }

    func reason(_ d: StorageDecision) -> NotStoredReason? {
        if case .doNotStore(let r) = d { return r }
        return nil
    }

    @Test func noStoreAndPrivateAreNeverStored() {
        #expect(reason(decide([("Cache-Control", "no-store, max-age=60")])) == .noStore)
        #expect(reason(decide([("Cache-Control", "private, max-age=60")])) == .isPrivate)
    }

    @Test func authorizationNeedsExplicitPermission() {
        let auth = [("Authorization", "Bearer x")]
        #expect(reason(decide([("Cache-Control", "max-age=60")], request: auth)) == .authorization)
        #expect(reason(decide([("Cache-Control", "public, max-age=60")], request: auth)) == nil)
        #expect(reason(decide([("Cache-Control", "s-maxage=60")], request: auth)) == nil)
        #expect(reason(decide([("Cache-Control", "must-revalidate, max-age=60")], request: auth)) == nil)
    }

    @Test func setCookieNeedsTheOriginsOwnFreshness() {
        #expect(reason(decide([("Set-Cookie", "a=b")])) == .setCookie)
        #expect(reason(decide([("Set-Cookie", "a=b"), ("Cache-Control", "max-age=60")])) == nil)
    }

    @Test func routeTTLCoversOnlyStatusesCacheableByDefault() {
        #expect(reason(decide([], status: .notFound)) == nil)
        #expect(reason(decide([], status: .internalServerError)) == .status)
        #expect(reason(decide([("Cache-Control", "max-age=5")], status: .internalServerError)) == nil)
        #expect(reason(decide([], status: .partialContent)) == .partialContent)
    }

    @Test func withoutTTLOnlyWhatTheOriginAllows() {
        #expect(reason(decide([], policy: CachePolicy())) == .noFreshness)
        #expect(reason(decide([("Cache-Control", "max-age=5")], policy: CachePolicy())) == nil)
    }

    @Test func varyStarIsNeverStored() {
        #expect(reason(decide([("Vary", "*"), ("Cache-Control", "max-age=60")])) == .varyStar)
    }

    @Test func targetedFieldOverridesCacheControl() {
        // RFC 9213: CDN-Cache-Control wins for this cache, in both directions.
        #expect(reason(decide([("Cache-Control", "max-age=60"), ("CDN-Cache-Control", "no-store")])) == .noStore)
        guard case .store(let t) = decide([("Cache-Control", "no-store"), ("CDN-Cache-Control", "max-age=90")], policy: CachePolicy()) else {
            Issue.record("expected store")
            return
        }
        #expect(t.freshnessLifetime == .seconds(90))
        let other = CachePolicy(targetedField: "Sidecache-Cache-Control")
        guard case .store(let t2) = decide([("CDN-Cache-Control", "no-store"), ("Sidecache-Cache-Control", "max-age=7")], policy: other) else {
            Issue.record("expected store")
            return
        }
        #expect(t2.freshnessLifetime == .seconds(7))
        // RFC 9213 §2.1: a field that does not parse as an SF Dictionary, or that gives a known
        // directive a value of the wrong type, is ignored whole, and Cache-Control decides.
        for ignored in ["max-age=\"60\"", "max-age=60.5", "max-age=-1", "max-age=tok", "max-age=60,", "no-store=1",
                        "public, max-age=(1 2)", "\"quoted\"", "max-age=60;;", ""] {
            #expect(reason(decide([("Cache-Control", "no-store"), ("CDN-Cache-Control", ignored)])) == .noStore, "CDN-Cache-Control: \(ignored)")
        }
        // §3.1: one that parses applies even when it names no directive this cache knows.
        #expect(reason(decide([("Cache-Control", "no-store"), ("CDN-Cache-Control", "none")])) == nil)
        guard case .store(let t3) = decide([("Cache-Control", "no-store"), ("CDN-Cache-Control", "max-age=30, x-vendor=\"a\", no-cache=\"Set-Cookie\"")]) else {
            Issue.record("expected store")
            return
        }
        #expect(t3.freshnessLifetime == .seconds(30) && !t3.revalidateAlways && t3.withheldFields == ["set-cookie"])
    }

    @Test func clientNoStoreMattersOnlyWhenTheRouteHonoursIt() {
        let req = [("Cache-Control", "no-store")]
        #expect(reason(decide([("Cache-Control", "max-age=60")], request: req)) == nil)
        let honour = CachePolicy(defaultTTL: .seconds(60), honorClientNoCache: true)
        #expect(reason(decide([("Cache-Control", "max-age=60")], request: req, policy: honour)) == .clientNoStore)
    }

    @Test func unsafeMethodsAreNotStored() {
        #expect(reason(decide([("Cache-Control", "max-age=60")], method: .POST)) == .method)
    }
}
