import HTTPCaching
import NIOHTTP1
import Testing

@Suite struct RequestTargetTests {
    @Test(arguments: [
        ("/a/b?q=1", nil, "/a/b?q=1"),
        ("//double/slash", nil, "//double/slash"),
        ("http://example.com/p?x", "example.com", "/p?x"),
        ("HTTPS://Example.com:8443", "Example.com:8443", "/"),
        ("http://h?q=/not/a/path", "h", "/?q=/not/a/path"),
        ("http://h#frag", "h", "/#frag"),
    ] as [(String, String?, String)])
    func originAndAbsoluteFormsGiveTheirAuthorityAndOriginForm(text: String, authority: String?, originForm: String) throws {
        let target = try #require(RequestTarget(text))
        #expect(target.authority.map(String.init) == authority)
        #expect(target.originForm == originForm)
    }

    @Test(arguments: ["", "*", "relative/path", "ftp://h/p", "http:/one-slash", "mailto:x@y"])
    func anythingElseIsNotATarget(text: String) {
        #expect(RequestTarget(text) == nil)
    }

    @Test func aReferenceMayNotBeANetworkPath() {
        #expect(RequestTarget("//other.example/p", reference: true) == nil)
        #expect(RequestTarget("/p", reference: true)?.originForm == "/p")
    }

    @Test func thePathDropsQueryAndFragment() {
        #expect(RequestTarget("http://h/a/b?q=1#f")?.path == "/a/b")
        #expect(RequestTarget("http://h?q")?.path == "/")
    }
}

@Suite struct RequestHeadRulesTests {
    static func head(_ fields: [(String, String)], version: HTTPVersion = .http1_1, uri: String = "/") -> HTTPRequestHead {
        HTTPRequestHead(version: version, method: .GET, uri: uri, headers: HTTPHeaders(fields))
    }

    @Test func http11NeedsExactlyOneHost() {
        #expect(RequestHeadRules.check(Self.head([("Host", "a")]), maxHeaderBytes: 8192) == nil)
        #expect(RequestHeadRules.check(Self.head([]), maxHeaderBytes: 8192) == .hostCount)
        #expect(RequestHeadRules.check(Self.head([("Host", "a"), ("host", "a")]), maxHeaderBytes: 8192) == .hostCount)
        #expect(RequestHeadRules.check(Self.head([], version: .http1_0), maxHeaderBytes: 8192) == nil)
    }

    @Test func aHostThatNamesNoHostIsRefused() {
        #expect(RequestHeadRules.check(Self.head([("Host", "a/b")]), maxHeaderBytes: 8192) == .malformedHost)
        #expect(RequestHeadRules.check(Self.head([("Host", "a b")], version: .http1_0), maxHeaderBytes: 8192) == .malformedHost)
        #expect(RequestHeadRules.check(Self.head([("Host", "[::1]:8080")]), maxHeaderBytes: 8192) == nil)
        #expect(RequestHeadRules.checkHost(Self.head([("Host", "a/b")])) == .malformedHost)
        #expect(RequestHeadRules.checkHost(Self.head([("Host", "[::1]:8080")])) == nil)
    }

    @Test func aHeadOverTheLimitIsRefusedWith431() {
        let big = Self.head([("Host", "a"), ("X-Big", String(repeating: "x", count: 200))])
        #expect(RequestHeadRules.check(big, maxHeaderBytes: 100) == .tooLarge)
        #expect(RequestHeadRules.Rejection.tooLarge.status.code == 431)
        #expect(RequestHeadRules.check(big, maxHeaderBytes: 1000) == nil)
    }
}

@Suite struct ResponseTagsTests {
    @Test func storedTagsAreTheDeclaredThenTheOriginsEachOnce() {
        let headers = HTTPHeaders([("Surrogate-Key", "a  b"), ("Cache-Tag", " b, c ,,d"), ("Surrogate-Key", "route")])
        #expect(ResponseTags.stored(declared: ["route"], headers: headers) == ["route", "a", "b", "c", "d"])
    }

    @Test func invalidatedTagsSplitOnCommasSpacesAndTabs() {
        let headers = HTTPHeaders([("X-Invalidate-Tags", "x,y z\tw"), ("X-Invalidate-Tags", "x")])
        #expect(ResponseTags.invalidated(declared: ["d"], headers: headers) == ["d", "x", "y", "z", "w"])
    }
}

@Suite struct ClientRevalidationTests {
    @Test(arguments: [
        ([("Cache-Control", "no-cache")], true), ([("Cache-Control", "max-age=0")], true), ([("Cache-Control", "no-store")], true),
        ([("Pragma", "no-cache")], true), ([("Cache-Control", "max-age=10")], false), ([], false),
    ] as [([(String, String)], Bool)])
    func theClientAsksForAValidatedAnswer(fields: [(String, String)], asks: Bool) {
        #expect(ConditionalRequest.clientAsksRevalidation(HTTPHeaders(fields)) == asks)
    }
}
