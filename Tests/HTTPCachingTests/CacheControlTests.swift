import HTTPCaching
import NIOHTTP1
import Testing

@Suite struct CacheControlTests {
    @Test func parsesDirectivesCaseInsensitivelyAcrossFieldLines() {
        let cc = CacheControl(fieldValues: ["Public, MAX-AGE=60", "s-maxage=\"120\", must-revalidate"])
        #expect(cc.isPublic)
        #expect(cc.maxAge == 60)
        #expect(cc.sMaxAge == 120)
        #expect(cc.mustRevalidate)
        #expect(!cc.noStore)
    }

    @Test func malformedMaxAgeMeansAlreadyStale() {
        #expect(CacheControl("max-age=abc").maxAge == 0)
        #expect(CacheControl("max-age=").maxAge == 0)
        #expect(CacheControl("max-age=-5").maxAge == 0)
    }

    @Test func hugeDeltaSecondsAreCapped() {
        #expect(CacheControl("max-age=99999999999999999999").maxAge == 2_147_483_648)
    }

    /// RFC 9111 §5.2.2.4, §5.2.2.7: a qualified no-cache or private withholds its fields only.
    @Test func qualifiedFormsWithholdTheirFieldsOnly() {
        let cc = CacheControl("private=\"Set-Cookie\", no-cache=\"X-Foo, X-Bar\"")
        #expect(!cc.isPrivate && !cc.noCache)
        #expect(cc.withheldFields == ["set-cookie", "x-foo", "x-bar"])
        let plain = CacheControl("private, no-cache=\"\"")
        #expect(plain.isPrivate && plain.noCache && plain.withheldFields.isEmpty)
    }

    @Test func staleExtensionsNeedValidNumbers() {
        let cc = CacheControl("stale-while-revalidate=30, stale-if-error=oops")
        #expect(cc.staleWhileRevalidate == 30)
        #expect(cc.staleIfError == nil)
    }

    @Test func unknownDirectivesAreIgnoredButEmptyValueHasNoDirectives() {
        #expect(!CacheControl("community=UCI").hasDirectives)
        #expect(!CacheControl("").hasDirectives)
        #expect(CacheControl(" , no-store ,").noStore)
    }

    @Test func spacingQuotingAndGarbageAroundDirectives() {
        let cc = CacheControl("\tMax-Age = 30 junk, s-maxage=\"40\"extra ,No-Transform")
        #expect(cc.maxAge == 30)
        #expect(cc.sMaxAge == 40)
        #expect(cc.noTransform)
        // An unterminated quoted argument runs to the end of the value.
        #expect(CacheControl("max-age=\"12").maxAge == 12)
        #expect(CacheControl("max-age=\"12, no-store").maxAge == 0)
        #expect(!CacheControl("max-age=\"12, no-store").noStore)
        // A name must match whole: prefixes and longer names are other directives.
        #expect(!CacheControl("no-stores, max-agent=5, public-ish").hasDirectives)
    }
}

@Suite struct HopByHopTests {
    @Test func namesAreRecognisedInAnyCase() {
        for name in ["Connection", "KEEP-ALIVE", "proxy-connection", "TE", "Trailer", "Transfer-Encoding", "upgrade",
                     "Proxy-Authenticate", "proxy-authorization"] {
            #expect(HopByHopHeaders.isAlwaysHopByHop(name), "\(name)")
        }
        for name in ["tee", "Connections", "x-upgrade", "Transfer-Encodings", "Content-Length", ""] {
            #expect(!HopByHopHeaders.isAlwaysHopByHop(name), "\(name)")
        }
    }

    @Test func stripRemovesStandardAndNamedFieldsOnly() {
        var headers = HTTPHeaders([
            ("Connection", "keep-alive, X-Secret , close"), ("X-Secret", "1"), ("x-secret", "2"), ("Keep-Alive", "timeout=5"),
            ("TE", "trailers"), ("Content-Type", "text/plain"), ("X-Kept", "yes"),
        ])
        HopByHopHeaders.strip(&headers)
        #expect(headers.map(\.name) == ["Content-Type", "X-Kept"])
        var untouched = HTTPHeaders([("Content-Length", "3"), ("ETag", "\"a\"")])
        HopByHopHeaders.strip(&untouched)
        #expect(untouched.count == 2)
    }
}

@Suite struct HTTPDateTests {
    @Test func parsesAllThreeForms() {
        let expected: Int64 = 784_111_777
        #expect(HTTPDate.parse("Sun, 06 Nov 1994 08:49:37 GMT") == expected)
        #expect(HTTPDate.parse("Sunday, 06-Nov-94 08:49:37 GMT") == expected)
        #expect(HTTPDate.parse("Sun Nov  6 08:49:37 1994") == expected)
    }

    /// RFC 9110 §5.6.7's grammar exactly (RFC 9111 §5.3: anything else in `Expires` is "already
    /// expired"), with the case of day, month and zone names forgiven.
    @Test func onlyTheExactGrammarIsADate() {
        let expected: Int64 = 784_111_777
        for accepted in ["Sun, 06 Nov 1994 08:49:37 GMT", "sun, 06 NOV 1994 08:49:37 gmt", "Sunday, 06-Nov-94 08:49:37 GMT",
                         "SUNDAY, 06-nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994", "Sun Nov 06 08:49:37 1994"] {
            #expect(HTTPDate.parse(accepted) == expected, "\(accepted)")
        }
        for rejected in [
            "Sun, 06 Nov 94 08:49:37 GMT",      // two-digit year in IMF-fixdate
            "Sun 06 Nov 1994 08:49:37 GMT",     // no comma after the day name
            "Sun,  06 Nov 1994 08:49:37 GMT",   // two spaces
            "Sun, 06 Nov 1994  08:49:37 GMT",
            "Sun, 06-Nov-1994 08:49:37 GMT",    // dashes in IMF-fixdate
            "Sun, 06 Nov 1994 8:49:37 GMT",     // one-digit hour
            "Sun, 6 Nov 1994 08:49:37 GMT",     // one-digit day
            "Sunday, 06-Nov-1994 08:49:37 GMT", // four-digit year in rfc850-date
            "Sun, 06-Nov-94 08:49:37 GMT",      // short day name in rfc850-date
            "Sun Nov 6 08:49:37 1994",          // asctime day without its padding space
            " Sun, 06 Nov 1994 08:49:37 GMT",
        ] {
            #expect(HTTPDate.parse(rejected) == nil, "\(rejected)")
        }
    }

    @Test func formatsIMFFixdateAndRoundTrips() {
        #expect(HTTPDate.format(secondsSinceEpoch: 784_111_777) == "Sun, 06 Nov 1994 08:49:37 GMT")
        for t: Int64 in [0, 951_782_400, 1_700_000_000, 4_102_444_800] {
            #expect(HTTPDate.parse(HTTPDate.format(secondsSinceEpoch: t)) == t)
        }
    }

    @Test func rejectsGarbage() {
        #expect(HTTPDate.parse("0") == nil)
        #expect(HTTPDate.parse("Sun, 32 Nov 1994 08:49:37 GMT") == nil)
        #expect(HTTPDate.parse("yesterday") == nil)
        #expect(HTTPDate.parse("") == nil)
        #expect(HTTPDate.parse("Sun, 06 Nov 1994 08:49:37 UTC") == nil)
        #expect(HTTPDate.parse("Sun, 06 Nov 1994 08:49:37 GMT extra") == nil)
        #expect(HTTPDate.parse("Sun, 06 Nox 1994 08:49:37 GMT") == nil)
        #expect(HTTPDate.parse("Sun, 06 Nov 1994 08:49 GMT") == nil)
        #expect(HTTPDate.parse("Sun, 06 Nov 1994 08:49:37:01 GMT") == nil)
        #expect(HTTPDate.parse("Sun, 06 Nov 1994 24:00:00 GMT") == nil)
        #expect(HTTPDate.parse("Sun, +6 Nov 1994 08:49:37 GMT") == nil)
        #expect(HTTPDate.parse("Sun, 06 Nov 99999999999999999999 08:49:37 GMT") == nil)
    }

    @Test func twoDigitYearsPivotAtSeventy() {
        #expect(HTTPDate.parse("Thursday, 01-Jan-70 00:00:00 GMT") == 0)
        #expect(HTTPDate.parse("Friday, 01-Jan-38 00:00:00 GMT") == 2_145_916_800)
    }
}
