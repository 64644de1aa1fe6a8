import HTTPCaching
import NIOHTTP1
import Testing

@Suite struct CacheKeyTests {
    @Test func queryAllIsSortedSoOrderDoesNotSplitEntries() {
        let p = CacheKeyPolicy(query: .all)
        let a = p.key(host: "API", uri: "/s?b=2&a=1", headers: [:])
        let b = p.key(host: "api", uri: "/s?a=1&b=2", headers: [:])
        #expect(a == b)
        #expect(a.path == "/s")
    }

    @Test func queryNoneAndListDropTheRest() {
        #expect(CacheKeyPolicy(query: .none).key(host: "h", uri: "/s?x=1", headers: [:]) ==
                CacheKeyPolicy(query: .none).key(host: "h", uri: "/s", headers: [:]))
        let only = CacheKeyPolicy(query: .only(["lang"]))
        #expect(only.key(host: "h", uri: "/i/1?utm=x&lang=de", headers: [:]) == only.key(host: "h", uri: "/i/1?lang=de", headers: [:]))
        #expect(only.key(host: "h", uri: "/i/1?lang=fr", headers: [:]) != only.key(host: "h", uri: "/i/1?lang=de", headers: [:]))
    }

    @Test func keyHeadersSeparateTenants() {
        let p = CacheKeyPolicy(query: .all, headers: ["X-Tenant"])
        let a = p.key(host: "h", uri: "/i/1", headers: HTTPHeaders([("x-tenant", "a")]))
        let b = p.key(host: "h", uri: "/i/1", headers: HTTPHeaders([("X-Tenant", "b")]))
        #expect(a != b)
        #expect(a.path == b.path)
    }
}

@Suite struct ConditionalRequestTests {
    @Test func ifNoneMatchUsesWeakComparison() {
        #expect(ConditionalRequest.isNotModified(request: HTTPHeaders([("If-None-Match", "W/\"v1\"")]), etag: "\"v1\"", lastModified: nil))
        #expect(ConditionalRequest.isNotModified(request: HTTPHeaders([("If-None-Match", "\"x\", \"v1\"")]), etag: "W/\"v1\"", lastModified: nil))
        #expect(ConditionalRequest.isNotModified(request: HTTPHeaders([("If-None-Match", "*")]), etag: "\"v1\"", lastModified: nil))
        #expect(!ConditionalRequest.isNotModified(request: HTTPHeaders([("If-None-Match", "\"v2\"")]), etag: "\"v1\"", lastModified: nil))
    }

    @Test func ifModifiedSinceIsIgnoredWhenIfNoneMatchIsPresent() {
        let lm = "Sun, 06 Nov 1994 08:49:37 GMT"
        #expect(ConditionalRequest.isNotModified(request: HTTPHeaders([("If-Modified-Since", lm)]), etag: nil, lastModified: lm))
        #expect(!ConditionalRequest.isNotModified(request: HTTPHeaders([("If-Modified-Since", "Sat, 05 Nov 1994 08:49:37 GMT")]), etag: nil, lastModified: lm))
        #expect(!ConditionalRequest.isNotModified(request: HTTPHeaders([("If-None-Match", "\"other\""), ("If-Modified-Since", lm)]), etag: "\"v1\"", lastModified: lm))
    }

    /// RFC 9111 §4.3.2: without Last-Modified, the stored response's Date stands in.
    @Test func ifModifiedSinceUsesTheStoredDateWithoutLastModified() {
        let lm = "Sun, 06 Nov 1994 08:49:37 GMT"
        #expect(ConditionalRequest.isNotModified(request: HTTPHeaders([("If-Modified-Since", lm)]), etag: nil, lastModified: nil, stored: HTTPDate.parse(lm)))
        #expect(!ConditionalRequest.isNotModified(request: HTTPHeaders([("If-Modified-Since", "Sat, 05 Nov 1994 08:49:37 GMT")]), etag: nil,
                                                  lastModified: nil, stored: HTTPDate.parse(lm)))
        #expect(!ConditionalRequest.isNotModified(request: HTTPHeaders([("If-Modified-Since", lm)]), etag: nil, lastModified: nil))
    }

    /// RFC 9111 §4.1: Accept-Language values that differ only in case or optional white space
    /// select the same variant; other fields compare as sent.
    @Test func varyValuesOfCaseInsensitiveFieldsAreNormalised() {
        func value(_ name: String, _ v: String) -> String { CachedResponse.varyValue(name, in: HTTPHeaders([(name, v)])) }
        #expect(value("accept-language", "en-US, de;q=0.8") == value("accept-language", "EN-us,de ; q=0.8"))
        #expect(value("accept-language", "en") != value("accept-language", "de"))
        #expect(value("x-tenant", "A") != value("x-tenant", "a"))
    }
}

@Suite struct InvalidationTargetsTests {
    @Test func locationAndContentLocationOnTheSameHostOnly() {
        let headers = HTTPHeaders([("Location", "/api/items/9?x=1"), ("Content-Location", "http://evil.example/api/items/1")])
        #expect(InvalidationTargets.paths(requestPath: "/api/items", host: "api.local", responseHeaders: headers) == ["/api/items", "/api/items/9"])
        let same = HTTPHeaders([("Content-Location", "http://api.local/api/items/3")])
        #expect(InvalidationTargets.paths(requestPath: "/api/items", host: "api.local", responseHeaders: same) == ["/api/items", "/api/items/3"])
    }

    @Test func onlySuccessfulUnsafeRequestsInvalidate() {
        #expect(InvalidationTargets.applies(method: .POST, status: 201))
        #expect(InvalidationTargets.applies(method: .DELETE, status: 303))
        #expect(!InvalidationTargets.applies(method: .PUT, status: 500))
        #expect(!InvalidationTargets.applies(method: .GET, status: 200))
    }
}
