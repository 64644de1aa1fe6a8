import Foundation
import HTTPCaching
import Sidecache
import SidecacheConfig
import TestSupport
import Testing

/// `sidecache simulate`'s reader and replay, on logs whose answers are known.
@Suite struct SimulateTests {
    static func line(_ path: String, status: Int = 200, bytes: Int = 100, method: String = "GET") -> String {
        #"10.0.0.1 - - [17/May/2015:10:05:03 +0000] "\#(method) \#(path) HTTP/1.1" \#(status) \#(bytes) "-" "agent/1.0""#
    }

    @Test func onlyGETsAnswered200WithASizeAreRead() {
        let log = [Self.line("/a"), Self.line("/b", status: 404), Self.line("/c", method: "POST"), "garbage", Self.line("/d?x=1", bytes: 7)]
            .joined(separator: "\n")
        let (requests, skipped) = AccessLogFormat.combined.requests(in: Data(log.utf8), objectSize: 0)
        #expect(requests == [LoggedRequest(target: "/a", bytes: 100), LoggedRequest(target: "/d?x=1", bytes: 7)])
        #expect(skipped == 3)
        let json = #"{"time":"t","type":"access","method":"GET","path":"/j","status":200,"bytes":42}"#
        #expect(AccessLogFormat.jsonl.request(fromLine: Substring(json)) == LoggedRequest(target: "/j", bytes: 42))
        #expect(AccessLogFormat.trace.request(fromLine: "17 obj9 512") == LoggedRequest(target: "obj9", bytes: 512))
        let ids = AccessLogFormat.ids.requests(in: Data([0, 0, 0, 7, 0, 0, 1, 0]), objectSize: 64).requests
        #expect(ids == [LoggedRequest(target: "7", bytes: 64), LoggedRequest(target: "256", bytes: 64)])
    }

    @Test func withRoomForEverythingEveryRepeatIsAHit() {
        // /a /b /a /c /a: two hits of five; 200 of 500 bytes.
        let requests = ["/a", "/b", "/a", "/c", "/a"].map { LoggedRequest(target: $0, bytes: 100) }
        let simulator = CacheSimulator(requests)
        for policy in EvictionPolicy.allCases {
            let outcome = simulator.run(maxBytes: 1 << 20, maxObjectBytes: 1 << 20, policy: policy)
            #expect(outcome == CacheSimulator.Outcome(requests: 5, hits: 2, bytes: 500, bytesHit: 200))
        }
        #expect(simulator.footprint == CacheSimulator.Footprint(objects: 3, bytes: 300, oneTimeObjects: 2))
    }

    @Test func anObjectAboveMaxObjectBytesIsNeverAHit() {
        let requests = [LoggedRequest(target: "/big", bytes: 5000), LoggedRequest(target: "/big", bytes: 5000)]
        let outcome = CacheSimulator(requests).run(maxBytes: 1 << 20, maxObjectBytes: 4000, policy: .s3fifo)
        #expect(outcome.hits == 0 && outcome.requests == 2)
    }

    @Test func withAConfigRequestsAreKeyedByTheirRouteAndUncachedRoutesLeftOut() throws {
        let yaml = """
        upstream: { url: "http://127.0.0.1:1" }
        routes:
          - name: items
            match: { path: "/items/{id}" }
            key: { query: [] }
          - name: live
            match: { path: "/live/*" }
            cache: false
        """
        let snapshot = try ConfigSnapshot(configuration: ConfigParser.parse(yaml: yaml, file: "t.yaml"), version: 1, sourcePath: "t.yaml")
        // The query is not part of the items key: the second request is a hit.
        let requests = ["/items/1?utm=a", "/items/1?utm=b", "/live/x", "/live/x"].map { LoggedRequest(target: $0, bytes: 10) }
        let simulator = CacheSimulator(requests, snapshot: snapshot)
        #expect(simulator.uncached == 2)
        let outcome = simulator.run(maxBytes: 1 << 20, maxObjectBytes: 1 << 20, policy: .lru)
        #expect(outcome.requests == 2 && outcome.hits == 1)
    }

    /// The replay's LRU column against an LRU written here independently (one shard, equal
    /// objects, room for exactly `capacity` of them).
    @Test func theLRUColumnEqualsAnIndependentLRU() {
        var rng = SplitMix64(seed: 7)
        let keys = (0..<300).map { String(format: "/k%04d", $0) }
        let requests = (0..<5000).map { _ -> LoggedRequest in
            // Skewed: the square of a uniform number favours low keys.
            let u = Double(rng.next() % 10_000) / 10_000
            return LoggedRequest(target: keys[Int(u * u * 300)], bytes: 1000)
        }
        // One entry's accounted bytes, as the store counts them.
        let probe = CacheSimulator([LoggedRequest(target: "/k0000", bytes: 1000), LoggedRequest(target: "/k0000", bytes: 1000)])
        let unit = Self.accountedBytes(of: probe)
        let capacity = 50
        let replayed = CacheSimulator(requests).run(maxBytes: capacity * unit + unit / 2, maxObjectBytes: 1 << 20, policy: .lru, shardCount: 1)

        var order: [String] = []  // least recently used first
        var hits = 0
        for r in requests {
            if let i = order.firstIndex(of: r.target) {
                hits += 1
                order.remove(at: i)
            } else if order.count == capacity {
                order.removeFirst()
            }
            order.append(r.target)
        }
        #expect(replayed.hits == hits)
        #expect(replayed.requests == requests.count)
    }

    /// The bytes one stored 1000-byte object of a 6-character key costs the store.
    static func accountedBytes(of probe: CacheSimulator) -> Int {
        // Binary search the smallest store that keeps the object for its second request.
        var lo = 1000, hi = 100_000
        while lo < hi {
            let mid = (lo + hi) / 2
            if probe.run(maxBytes: mid, maxObjectBytes: 1 << 20, policy: .lru, shardCount: 1).hits == 1 { hi = mid } else { lo = mid + 1 }
        }
        return lo
    }
}
