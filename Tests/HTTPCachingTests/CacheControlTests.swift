import HTTPCaching
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

    @Test func qualifiedFormsCountAsTheDirective() {
        let cc = CacheControl("private=\"Set-Cookie\", no-cache=\"X-Foo, X-Bar\"")
        #expect(cc.isPrivate)
        #expect(cc.noCache)
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
}

@Suite struct HTTPDateTests {
    @Test func parsesAllThreeForms() {
        let expected: Int64 = 784_111_777
        #expect(HTTPDate.parse("Sun, 06 Nov 1994 08:49:37 GMT") == expected)
        #expect(HTTPDate.parse("Sunday, 06-Nov-94 08:49:37 GMT") == expected)
        #expect(HTTPDate.parse("Sun Nov  6 08:49:37 1994") == expected)
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
    }
}
