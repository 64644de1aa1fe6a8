@testable import Sidecache
import Testing

@Suite struct HotKeysTests {
    @Test func countsTheLastMinuteOnlyMostHitsFirst() {
        let keys = HotKeys(shardCount: 4)
        for _ in 0..<5 { keys.record("old", atSecond: 1012) }
        for _ in 0..<3 { keys.record("a", atSecond: 1055) }
        keys.record("b", atSecond: 1059)
        keys.record("a", atSecond: 1061)
        let top = keys.top(20, atSecond: 1061)
        #expect(top.map(\.key) == ["old", "a", "b"])
        // Once its 10-second bucket is more than a minute old, it no longer counts.
        let later = keys.top(20, atSecond: 1070)
        #expect(later.map(\.key) == ["a", "b"] && later.first?.hits == 4)
        #expect(keys.top(1, atSecond: 1070).count == 1)
    }

    @Test func aFloodOfDistinctKeysIsBounded() {
        let keys = HotKeys(shardCount: 1)
        for i in 0..<(HotKeys.keysPerBucket + 500) { keys.record("k\(i)", atSecond: 5) }
        keys.record("k0", atSecond: 5)
        let top = keys.top(Int.max, atSecond: 5)
        #expect(top.count == HotKeys.keysPerBucket)
        #expect(top.first?.key == "k0" && top.first?.hits == 2)
    }
}
