import HTTPCaching
import NIOCore
import NIOHTTP1
@testable import Sidecache
import Testing

/// The Redis layout as values: key names under the prefix, the variant field, the lifetime.
@Suite struct RedisKeySchemaTests {
    @Test func everyKeyIsUnderThePrefixWithItsKind() {
        let keys = RedisKeySchema(prefix: "sc:")
        #expect(keys.entry(CacheKey(value: "h/a?x=1", path: "/a")) == "sc:e:h/a?x=1")
        #expect(keys.path("/a") == "sc:p:/a")
        #expect(keys.tag("item:7") == "sc:t:item:7")
        #expect(keys.rateLimit(route: "api", key: "10.0.0.1") == "sc:rl:api:10.0.0.1")
        #expect(keys.entry(CacheKey(value: "k", path: "/")).hasPrefix(keys.entryPrefix))
        #expect(keys.everything == "sc:*" && keys.allEntries == "sc:e:*")
    }

    @Test func theVariantFieldListsTheVaryValuesOnePerLine() {
        #expect(RedisKeySchema.variantField(names: [], values: []) == "")
        #expect(RedisKeySchema.variantField(names: ["accept-language", "x-tenant"], values: ["de", "t1"]) == "accept-language=de\nx-tenant=t1")
    }

    @Test func anEntryLivesForItsFreshnessAndItsLongerStaleWindowAndAtLeastASecond() throws {
        let t0 = CacheInstant(seconds: 1_800_000_000)
        func entry(_ cc: String) throws -> CachedResponse {
            let h = HTTPHeaders([("Cache-Control", cc)])
            guard case .store(let terms) = StorageRules.evaluate(requestMethod: .GET, requestHeaders: [:], status: .ok, responseHeaders: h,
                                                                 policy: CachePolicy(), responseTime: t0) else { throw CancellationError() }
            return CachedResponse(status: .ok, headers: h, body: ByteBuffer(), requestTime: t0, responseTime: t0, terms: terms,
                                  varyNames: [], varyValues: [], tags: [])
        }
        #expect(RedisKeySchema.ttlMilliseconds(try entry("max-age=60"), now: t0 + .seconds(10)) == 50_000)
        #expect(RedisKeySchema.ttlMilliseconds(try entry("max-age=60, stale-while-revalidate=30, stale-if-error=90"), now: t0) == 150_000)
        #expect(RedisKeySchema.ttlMilliseconds(try entry("max-age=1"), now: t0 + .seconds(30)) == 1000)
    }
}
