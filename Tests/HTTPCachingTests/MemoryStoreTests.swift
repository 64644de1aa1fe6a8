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

    @Test func evictsLeastRecentlyUsedToStayWithinBytes() {
        // Room for three entries (body plus accounted overhead), not four.
        let budget = 3 * (entry(bytes: 3000).cost + 600)
        let store = MemoryStore(limits: .init(maxBytes: budget, maxObjectBytes: 5_000), shardCount: 1)
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

    @Test func floodOfDistinctKeysStaysBounded() {
        let store = MemoryStore(limits: .init(maxBytes: 1 << 20, maxObjectBytes: 1 << 20))
        for i in 0..<20_000 { store.store(entry(bytes: 100), for: key("/k/\(i)")) }
        #expect(store.statistics.bytes <= 1 << 20)
        #expect(store.statistics.entries < 20_000)
        #expect(store.statistics.entries > 1000)
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
}
