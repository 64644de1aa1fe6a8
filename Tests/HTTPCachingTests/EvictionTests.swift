@testable import HTTPCaching
import NIOCore
import NIOHTTP1
import TestSupport
import Testing

/// S3-FIFO and LRU in the table and in the store: which entries a full cache keeps.
@Suite struct EvictionTableTests {
    typealias Table = EvictionTable<String, Int>

    /// Fills a table of capacity 100 (small queue: 10) with keys costing `cost` each, evicting as needed.
    static func insert(_ table: inout Table, _ key: String, cost: Int = 10) -> [String] {
        table.set(key, 0, cost: cost)
        var evicted: [String] = []
        while table.smallQueue.bytes + table.mainQueue.bytes > table.capacity, let victim = table.removeVictim() {
            evicted.append(victim.key)
        }
        return evicted
    }

    @Test func aNewKeyEntersTheSmallQueueAndLeavesFirstUnlessAskedForAgain() {
        var t = Table(policy: .s3fifo, capacity: 100)
        for i in 0..<10 { _ = Self.insert(&t, "k\(i)") }
        #expect(t.smallQueue.entries == 10 && t.mainQueue.entries == 0)
        _ = t.get("k0")
        let evicted = Self.insert(&t, "k10")
        // k0 was asked for again: it moved to main; k1, the oldest of the others, left.
        #expect(evicted == ["k1"])
        #expect(t.counters.promotions == 1 && t.counters.evictedFromSmall == 1)
        #expect(t.peek("k0") != nil && t.peek("k1") == nil)
        #expect(t.ghostEntries == 1)
    }

    @Test func aKeyEvictedFromTheSmallQueueAndAskedForAgainGoesToMain() {
        var t = Table(policy: .s3fifo, capacity: 100)
        for i in 0..<11 { _ = Self.insert(&t, "k\(i)") }
        #expect(t.peek("k0") == nil)
        _ = Self.insert(&t, "k0")
        #expect(t.counters.ghostHits == 1)
        #expect(t.mainQueue.entries == 1)
    }

    @Test func inMainAnEntryAskedForGoesRoundAgain() {
        var t = Table(policy: .s3fifo, capacity: 100)
        // Everything into main through the ghost: fill, evict, ask again.
        for i in 0..<20 { _ = Self.insert(&t, "k\(i)") }
        for i in 0..<10 { _ = Self.insert(&t, "k\(i)") }
        let inMain = (0..<10).filter { t.peek("k\($0)") != nil }
        #expect(t.mainQueue.entries >= 5)
        let favourite = "k\(inMain[0])"
        _ = t.get(favourite)
        for i in 100..<140 { _ = Self.insert(&t, "k\(i)") }
        #expect(t.peek(favourite) != nil || t.counters.evictedFromMain > 0)
    }

    @Test func aKeyLargerThanTheSmallQueueGoesStraightToMain() {
        var t = Table(policy: .s3fifo, capacity: 100)
        _ = Self.insert(&t, "big", cost: 30)
        #expect(t.mainQueue.entries == 1 && t.smallQueue.entries == 0)
    }

    @Test func underLRUAHitMovesTheEntryToTheBack() {
        var t = Table(policy: .lru, capacity: 30)
        for k in ["a", "b", "c"] { _ = Self.insert(&t, k) }
        _ = t.get("a")
        let evicted = Self.insert(&t, "d")
        #expect(evicted == ["b"])
        #expect(t.smallQueue.entries == 0)
    }

    @Test func switchingToLRUKeepsEveryEntry() {
        var t = Table(policy: .s3fifo, capacity: 100)
        for i in 0..<8 { _ = Self.insert(&t, "k\(i)") }
        t.setPolicy(.lru)
        #expect(t.count == 8 && t.smallQueue.entries == 0 && t.mainQueue.entries == 8)
    }

    @Test func removalKeepsTheQueuesAccounted() {
        var t = Table(policy: .s3fifo, capacity: 100)
        for i in 0..<5 { _ = Self.insert(&t, "k\(i)", cost: 7) }
        t.replace("k1", 1, cost: 9)
        #expect(t.smallQueue.bytes == 37)
        for i in 0..<5 { t.remove("k\(i)") }
        #expect(t.count == 0 && t.smallQueue == (0, 0) && t.mainQueue == (0, 0))
    }

    @Test func theGhostQueueStaysBoundedWhenItsHashesAreAskedForAgain() {
        var ghost = GhostQueue()
        for h in 0..<100_000 {
            ghost.insert(h, capacity: 100)
            _ = ghost.remove(h)  // evicted, then asked for again at once
        }
        #expect(ghost.count == 0)
        #expect(ghost.storedHashes <= 200)
    }

    @Test func theGhostQueueIsBounded() {
        var ghost = GhostQueue()
        for h in 0..<10_000 { ghost.insert(h, capacity: 100) }
        #expect(ghost.count == 100)
        let forgotten = ghost.remove(5), remembered = ghost.remove(9_999)
        #expect(!forgotten && remembered)
        // A hash inserted again after removal is remembered afresh.
        ghost.insert(9_999, capacity: 100)
        let again = ghost.remove(9_999)
        #expect(again)
    }
}

/// Scan resistance at the store: a Zipf workload over a hot set, then a scan of one-time URLs
/// whose bytes are ten times the cache, interleaved with the same workload (seeded, deterministic).
@Suite struct ScanResistanceTests {
    /// Hot-set hit ratio before the scan and during it, under `policy`.
    static func hitRatios(_ policy: EvictionPolicy) -> (before: Double, during: Double) {
        let now = CacheInstant(seconds: 1_800_000_000)
        let terms = StorageTerms(freshnessLifetime: .seconds(600), staleWhileRevalidate: .zero, staleIfError: .zero,
                                 revalidateAlways: false, mayServeStale: true)
        func entry() -> CachedResponse {
            CachedResponse(status: .ok, headers: HTTPHeaders([("Content-Length", "1000")]), body: ByteBuffer(repeating: 0x61, count: 1000),
                           requestTime: now, responseTime: now, terms: terms, varyNames: [], varyValues: [], tags: [])
        }
        let one = entry()
        let hotKeys = 500
        // The cache holds about 600 entries: the hot set fits.
        let store = MemoryStore(limits: .init(maxBytes: 600 * (one.cost + 600), maxObjectBytes: 10_000, policy: policy), shardCount: 4)
        // Zipf (s = 1) over the hot set, by inverse transform on the harmonic weights.
        let weights = (1...hotKeys).map { 1.0 / Double($0) }
        let total = weights.reduce(0, +)
        var cumulative: [Double] = []
        var sum = 0.0
        for w in weights { sum += w / total; cumulative.append(sum) }
        var rng = SplitMix64(seed: 42)
        func hot() -> CacheKey {
            let u = Double.random(in: 0..<1, using: &rng)
            var lo = 0, hi = cumulative.count - 1
            while lo < hi { let mid = (lo + hi) / 2; if cumulative[mid] < u { lo = mid + 1 } else { hi = mid } }
            return CacheKeyPolicy().key(host: "h", uri: "/hot/\(lo)", headers: [:])
        }
        func ask(_ key: CacheKey) -> Bool {
            if store.lookup(key, requestHeaders: [:], now: now) != nil { return true }
            store.store(one, for: key)
            return false
        }
        for _ in 0..<20_000 { _ = ask(hot()) }  // warm
        var hits = 0
        for _ in 0..<20_000 where ask(hot()) { hits += 1 }
        let before = Double(hits) / 20_000
        // The scan: 6,000 one-time URLs (ten times the cache), one before each hot request.
        hits = 0
        for i in 0..<6_000 {
            _ = ask(CacheKeyPolicy().key(host: "h", uri: "/scan/\(i)", headers: [:]))
            if ask(hot()) { hits += 1 }
        }
        return (before, Double(hits) / 6_000)
    }

    @Test func underS3FIFOTheHotSetKeepsItsHitRatioThroughAScan() {
        let (before, during) = Self.hitRatios(.s3fifo)
        print("scan resistance, s3fifo: hot-set hit ratio \(before) before the scan, \(during) during it")
        #expect(during >= 0.95 * before, "s3fifo: \(before) before, \(during) during the scan")
    }

    @Test func underLRUAScanFlushesTheHotSet() {
        let (before, during) = Self.hitRatios(.lru)
        print("scan resistance, lru: hot-set hit ratio \(before) before the scan, \(during) during it")
        #expect(during < 0.9 * before, "lru: \(before) before, \(during) during the scan")
    }
}
