import HTTPCaching
import NIOCore
import NIOHTTP1
import Testing

@Suite struct MemoryStoreTests {
    let now = CacheInstant(seconds: 1_800_000_000)
    let terms = StorageTerms(freshnessLifetime: .seconds(60), staleWhileRevalidate: .zero, staleIfError: .zero,
                             revalidateAlways: false, mayServeStale: true)

    func entry(bytes: Int, tags: [String] = [], vary: [String] = [], values: [String] = []) -> CachedResponse {
        CachedResponse(status: .ok, headers: HTTPHeaders([("Content-Length", "\(bytes)")]),
                       body: ByteBuffer(repeating: 0x61, count: bytes), requestTime: now, responseTime: now, terms: terms,
                       varyNames: vary, varyValues: values, tags: tags)
    }

    func key(_ path: String, query: String = "") -> CacheKey {
        CacheKeyPolicy().key(host: "h", uri: path + query, headers: [:])
    }

    @Test func underLRUEvictsLeastRecentlyUsedToStayWithinBytes() {
        // Room for three entries (body plus accounted overhead), not four.
        let budget = 3 * (entry(bytes: 3000).cost + 600)
        let store = MemoryStore(limits: .init(maxBytes: budget, maxObjectBytes: 5_000, policy: .lru), shardCount: 1)
        store.store(entry(bytes: 3000), for: key("/a"))
        store.store(entry(bytes: 3000), for: key("/b"))
        _ = store.lookup(key("/a"), requestHeaders: [:], now: now)  // /a is now more recent than /b
        store.store(entry(bytes: 3000), for: key("/c"))
        store.store(entry(bytes: 3000), for: key("/d"))
        #expect(store.lookup(key("/b"), requestHeaders: [:], now: now) == nil)
        #expect(store.lookup(key("/a"), requestHeaders: [:], now: now) != nil)
        #expect(store.statistics.bytes <= budget)
        #expect(store.statistics.evictions == 1)
    }

    @Test func objectsAboveTheLimitAreNotStored() {
        let store = MemoryStore(limits: .init(maxBytes: 100_000, maxObjectBytes: 1000))
        #expect(!store.store(entry(bytes: 1001), for: key("/big")))
        #expect(store.statistics.entries == 0)
    }

    @Test func anObjectLargerThanAShardIsNotStoredAndPushesNothingOut() {
        // 16 shards of 100,000 bytes: 150,000 is under max_object_bytes but over a shard.
        let store = MemoryStore(limits: .init(maxBytes: 1_600_000, maxObjectBytes: 500_000))
        for i in 0..<200 { store.store(entry(bytes: 1000), for: key("/small/\(i)")) }
        let before = store.statistics
        #expect(!store.fits(entry(bytes: 150_000)) && store.fits(entry(bytes: 90_000)))
        #expect(!store.store(entry(bytes: 150_000), for: key("/big")))
        #expect(store.statistics.entries == before.entries && store.statistics.evictions == before.evictions)
        #expect(store.store(entry(bytes: 90_000), for: key("/fits")))
    }

    @Test func floodOfDistinctKeysStaysBounded() {
        let store = MemoryStore(limits: .init(maxBytes: 1 << 20, maxObjectBytes: 1 << 20))
        for i in 0..<20_000 { store.store(entry(bytes: 100), for: key("/k/\(i)")) }
        #expect(store.statistics.bytes <= 1 << 20)
        #expect(store.statistics.entries < 20_000)
        // A 100-byte body costs about 1 KiB with its headers, encoded head and bookkeeping.
        #expect(store.statistics.entries > 900)
    }

    @Test func variantsAreKeptApartAndReplacedInPlace() {
        let store = MemoryStore(limits: .init(maxBytes: 1 << 20, maxObjectBytes: 1 << 20))
        let k = key("/v")
        store.store(entry(bytes: 10, vary: ["accept-language"], values: ["de"]), for: k)
        store.store(entry(bytes: 20, vary: ["accept-language"], values: ["fr"]), for: k)
        store.store(entry(bytes: 30, vary: ["accept-language"], values: ["de"]), for: k)
        #expect(store.statistics.entries == 2)
        let de = store.lookup(k, requestHeaders: HTTPHeaders([("Accept-Language", "de")]), now: now)
        #expect(de?.body.readableBytes == 30)
        #expect(store.lookup(k, requestHeaders: HTTPHeaders([("Accept-Language", "en")]), now: now) == nil)
    }

    @Test func invalidationByPathFindsEveryQueryAndVariant() {
        let store = MemoryStore(limits: .init(maxBytes: 1 << 20, maxObjectBytes: 1 << 20))
        store.store(entry(bytes: 10), for: key("/api/items/1", query: "?lang=de"))
        store.store(entry(bytes: 10), for: key("/api/items/1"))
        store.store(entry(bytes: 10), for: key("/api/items/2"))
        #expect(store.invalidate(path: "/api/items/1") == 2)
        #expect(store.lookup(key("/api/items/2"), requestHeaders: [:], now: now) != nil)
        #expect(store.statistics.entries == 1)
    }

    @Test func invalidationByTag() {
        let store = MemoryStore(limits: .init(maxBytes: 1 << 20, maxObjectBytes: 1 << 20))
        store.store(entry(bytes: 10, tags: ["items", "item:1"]), for: key("/i/1"))
        store.store(entry(bytes: 10, tags: ["items", "item:2"]), for: key("/i/2"))
        #expect(store.invalidate(tag: "item:1") == 1)
        #expect(store.invalidate(tag: "items") == 1)
        #expect(store.invalidate(tag: "nothing") == 0)
        #expect(store.statistics.entries == 0)
        #expect(store.statistics.bytes == 0)
    }

    @Test func accountingReturnsToZeroWhenEverythingIsRemoved() {
        let store = MemoryStore(limits: .init(maxBytes: 1 << 20, maxObjectBytes: 1 << 20))
        for i in 0..<50 { store.store(entry(bytes: 100, tags: ["t\(i % 3)"]), for: key("/k/\(i)")) }
        store.store(entry(bytes: 10, vary: ["accept-language"], values: ["de"]), for: key("/k/1"))
        #expect(store.statistics.bytes > 50 * 100)
        store.invalidate(tag: "t0")
        store.invalidate(path: "/k/1")
        store.invalidate(tag: "t1")
        store.invalidate(tag: "t2")
        #expect(store.statistics.bytes == 0)
        #expect(store.statistics.entries == 0)
    }

    @Test func shrinkingTheLimitEvictsAtOnce() {
        let store = MemoryStore(limits: .init(maxBytes: 100_000, maxObjectBytes: 10_000), shardCount: 1)
        for i in 0..<20 { store.store(entry(bytes: 4000), for: key("/k/\(i)")) }
        store.updateLimits(.init(maxBytes: 20_000, maxObjectBytes: 10_000))
        #expect(store.statistics.bytes <= 20_000)
    }

    @Test func aPatternPurgeRemovesEveryKeyOfTheMatchingPathsAndNothingElse() throws {
        let store = MemoryStore(limits: .init(maxBytes: 50_000_000, maxObjectBytes: 10_000))
        for i in 0..<200 {
            store.store(entry(bytes: 10), for: key("/api/items/\(i)"))
            store.store(entry(bytes: 10), for: key("/api/items/\(i)", query: "?lang=de"))
        }
        store.store(entry(bytes: 10), for: key("/api/other/1"))
        let regex = try PurgePattern(regex: "^/api/items/1[0-9]$")
        #expect(store.invalidate(pathsMatching: regex.matcher()) == 20)  // ten paths, two keys each
        #expect(store.lookup(key("/api/items/15"), requestHeaders: [:], now: now) == nil)
        #expect(store.lookup(key("/api/items/150"), requestHeaders: [:], now: now) != nil)
        let glob = try PurgePattern(glob: "/api/items/*")
        #expect(store.invalidate(pathsMatching: glob.matcher()) == 380)
        #expect(store.statistics.entries == 1)
        #expect(store.lookup(key("/api/other/1"), requestHeaders: [:], now: now) != nil)
    }

    @Test func aSoftPurgeMakesEntriesStaleFromThePurgeOnAndKeepsThem() throws {
        let swr = StorageTerms(freshnessLifetime: .seconds(60), staleWhileRevalidate: .seconds(30), staleIfError: .zero,
                               revalidateAlways: false, mayServeStale: true)
        let fresh = CachedResponse(status: .ok, headers: [:], body: ByteBuffer(string: "x"), requestTime: now, responseTime: now,
                                   terms: swr, varyNames: [], varyValues: [], tags: ["t"])
        let store = MemoryStore(limits: .init(maxBytes: 1_000_000, maxObjectBytes: 10_000))
        store.store(fresh, for: key("/a"))
        store.store(fresh, for: key("/b"))
        let purgedAt = now + .seconds(5)
        #expect(store.invalidate(tag: "t", mode: .markStale(at: purgedAt)) == 2)
        #expect(store.statistics.entries == 2)
        let later = purgedAt + .seconds(10)
        let marked = try #require(store.lookup(key("/a"), requestHeaders: [:], now: later))
        #expect(marked.freshness(at: later) == .stale(staleness: .seconds(10)))
        #expect(marked.isWithinStaleWhileRevalidate(at: later))
        #expect(!marked.isWithinStaleWhileRevalidate(at: purgedAt + .seconds(31)))
        // A second soft purge does not move the time an entry went stale.
        store.invalidate(path: "/a", mode: .markStale(at: later))
        let again = try #require(store.lookup(key("/a"), requestHeaders: [:], now: later))
        #expect(again.freshness(at: later) == .stale(staleness: .seconds(10)))
    }

    @Test func anEntryIsReplacedOnlyWhileItIsTheOneStored() throws {
        let store = MemoryStore(limits: .init(maxBytes: 1_000_000, maxObjectBytes: 100_000))
        let body = ByteBuffer(string: String(repeating: "{\"a\": 1}", count: 200))
        func pending() -> CachedResponse {
            CachedResponse(status: .ok, headers: HTTPHeaders([("Content-Length", "1600"), ("ETag", "\"e\"")]), body: body, requestTime: now,
                           responseTime: now, terms: terms, varyNames: [], varyValues: [], tags: ["t"], gzipPending: true)
        }
        let first = pending()
        store.store(first, for: key("/a"))
        let before = store.statistics.bytes
        let zipped = first.withGzipCopy(try ContentCoding.gzip(body, level: 6))
        #expect(zipped.gzip != nil && !zipped.gzipPending && zipped.body == body)
        #expect(store.replace(first, with: zipped, for: key("/a")))
        #expect(store.lookup(key("/a"), requestHeaders: [:], now: now) === zipped)
        #expect(store.statistics.bytes == before + zipped.cost - first.cost && store.statistics.entries == 1)
        // The old object is no longer the stored one: a second replace of it changes nothing.
        #expect(!store.replace(first, with: first.withGzipCopy(nil), for: key("/a")))
        #expect(store.lookup(key("/a"), requestHeaders: [:], now: now) === zipped)

        // Soft-purged or removed meanwhile: the entry is not brought back.
        let second = pending()
        store.store(second, for: key("/b"))
        store.invalidate(path: "/b", mode: .markStale(at: now))
        #expect(!store.replace(second, with: second.withGzipCopy(nil), for: key("/b")))
        let marked = try #require(store.lookup(key("/b"), requestHeaders: [:], now: now + .seconds(1)))
        #expect(marked.gzipPending && !marked.freshness(at: now + .seconds(1)).isFresh)
        store.remove(key("/b"))
        #expect(!store.replace(marked, with: marked.withGzipCopy(nil), for: key("/b")))
        #expect(store.lookup(key("/b"), requestHeaders: [:], now: now) == nil)
    }

    @Test func aSoftPurgeOfEverythingMarksEveryEntry() throws {
        let store = MemoryStore(limits: .init(maxBytes: 10_000_000, maxObjectBytes: 10_000))
        for i in 0..<600 { store.store(entry(bytes: 10), for: key("/k/\(i)")) }
        #expect(store.invalidateAll(mode: .markStale(at: now)) == 600)
        #expect(store.statistics.entries == 600)
        let entry = try #require(store.lookup(key("/k/7"), requestHeaders: [:], now: now))
        #expect(entry.freshness(at: now) == .stale(staleness: .zero))
    }
}

@Suite struct PurgePatternTests {
    @Test func globsMatchTheWholePathAndStarCrossesSlashes() throws {
        let glob = try PurgePattern(glob: "/api/items/*").matcher()
        #expect(glob("/api/items/42"))
        #expect(glob("/api/items/42/reviews"))
        #expect(!glob("/api/item/42"))
        #expect(!glob("/x/api/items/42"))
        let one = try PurgePattern(glob: "/v?/[a-c]*").matcher()
        #expect(one("/v1/abc") && one("/v2/c"))
        #expect(!one("/v10/a") && !one("/v1/d"))
    }

    @Test func regexesMatchAnywhereUnlessAnchored() throws {
        let anchored = try PurgePattern(regex: #"^/api/items/\d+$"#).matcher()
        #expect(anchored("/api/items/42"))
        #expect(!anchored("/api/items/42/x"))
        let loose = try PurgePattern(regex: "items").matcher()
        #expect(loose("/api/items/42"))
    }

    @Test func badPatternsAreRefusedWithAReason() {
        #expect(throws: PurgePattern.Invalid.self) { try PurgePattern(regex: "([a-z") }
        #expect(throws: PurgePattern.Invalid.self) { try PurgePattern(regex: "") }
        #expect(throws: PurgePattern.Invalid.self) { try PurgePattern(glob: "") }
    }
}

extension MemoryStoreTests {
    /// The path and tag indexes hold one key inline and a set beyond: every transition between the
    /// two keeps exactly the keys that are stored.
    @Test func indexesFollowKeysAddedAndRemovedOneByOne() {
        let store = MemoryStore(limits: .init(maxBytes: 1 << 20, maxObjectBytes: 1 << 20))
        store.store(entry(bytes: 10, tags: ["one", "all"]), for: key("/p", query: "?a=1"))
        store.store(entry(bytes: 10, tags: ["all"]), for: key("/p", query: "?a=2"))
        store.store(entry(bytes: 10, tags: ["all"]), for: key("/p", query: "?a=3"))
        store.store(entry(bytes: 10, tags: ["all"]), for: key("/p", query: "?a=3"))  // the same key again
        #expect(store.invalidate(tag: "one") == 1)  // two keys left under /p
        #expect(store.invalidate(path: "/p") == 2)
        #expect(store.invalidate(tag: "all") == 0)
        store.store(entry(bytes: 10, tags: ["all"]), for: key("/p"))
        store.store(entry(bytes: 10, tags: ["all"]), for: key("/q"))
        #expect(store.invalidate(path: "/q") == 1)  // back to one key under "all"
        #expect(store.invalidate(tag: "all") == 1)
        #expect(store.invalidate(path: "/p") == 0)
        #expect(store.statistics.entries == 0 && store.statistics.bytes == 0)
    }
}
