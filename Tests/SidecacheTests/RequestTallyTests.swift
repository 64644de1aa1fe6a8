import HTTPCaching
import NIOHTTP1
@testable import Sidecache
import SidecacheConfig
import Testing

@Suite struct RequestTallyTests {
    private static let methods: [(HTTPMethod, SidecacheMetrics.MethodClass)] = [(.GET, .read), (.POST, .write), (.OPTIONS, .other)]
    private static let statuses: [(UInt, Int)] = [(0, 0), (101, 1), (204, 2), (304, 3), (429, 4), (503, 5)]

    @Test func everySeriesIsCountedInItsOwnSlot() {
        let tally = RequestTally(route: "r")
        var expected: [RequestTally.Series: Int] = [:]
        var n = 1
        for (method, methodClass) in Self.methods {
            for (status, statusClass) in Self.statuses {
                for outcome in CacheOutcome.allCases {
                    for _ in 0..<n { tally.record(method: method, status: status, outcome: outcome) }
                    expected[RequestTally.Series(method: methodClass, statusClass: statusClass, outcome: outcome)] = n
                    n += 1
                }
            }
        }
        #expect(expected.count == RequestTally.slotCount)
        let counted = Dictionary(uniqueKeysWithValues: tally.counted.map { ($0.series, $0.count) })
        #expect(counted == expected)
        let hits = expected.filter { $0.key.outcome == .hit }.values.reduce(0, +)
        #expect(tally.byOutcome[.hit] == hits)
        #expect(tally.byOutcome.requests == expected.values.reduce(0, +))
    }

    @Test func statusesOutsideOneToFiveHundredsCountAsNone() {
        #expect(RequestTally.statusClass(0) == 0)
        #expect(RequestTally.statusClass(99) == 0)
        #expect(RequestTally.statusClass(600) == 0)
        #expect(RequestTally.statusClass(599) == 5)
        #expect(SidecacheMetrics.statusClassLabel(0) == "none" && SidecacheMetrics.statusClassLabel(4) == "4xx")
    }

    @Test func aRouteKeepsItsTallyAcrossSnapshotsWhileItsNameStays() throws {
        let stats = TrafficStats()
        func snapshot(_ routes: String) throws -> ConfigSnapshot {
            let yaml = "upstream: { url: \"http://127.0.0.1:1\" }\nroutes:\n" + routes
            return ConfigSnapshot(configuration: try ConfigParser.parse(yaml: yaml, file: "t.yaml"), version: 1, sourcePath: "t.yaml")
        }
        let first = try snapshot("  - { name: a, match: { path: \"/a\" } }\n  - { name: b, match: { path: \"/*\" } }\n")
        let second = try snapshot("  - { name: b, match: { path: \"/*\" } }\n")
        let before = RouteTallies(first, stats: stats)
        let after = RouteTallies(second, stats: stats)
        #expect(before.tally(for: first.routes[1]) === after.tally(for: second.routes[0]))
        #expect(before.tally(for: first.routes[0]).route == "a")
        #expect(after.tally(for: nil).route == TrafficStats.noRoute)
        before.tally(for: first.routes[1]).record(method: .GET, status: 200, outcome: .hit)
        after.tally(for: second.routes[0]).record(method: .GET, status: 200, outcome: .miss)
        // Only routes that served a request are listed.
        #expect(Array(stats.perRoute.keys) == ["b"] && stats.perRoute["b"]?.requests == 2)
    }

    @Test func renderingAddsOnlyWhatWasCountedSinceTheLastRender() {
        let metrics = SidecacheMetrics()
        let tally = RequestTally(route: "items")
        func rendered() -> Double? {
            let text = String(decoding: metrics.render(cache: MemoryStore(limits: .init(maxBytes: 1 << 20, maxObjectBytes: 1 << 10)).statistics, requests: [tally], redisConnected: nil, configVersion: 1), as: UTF8.self)
            return AdminTests.value(AdminTests.samples(text), "sidecache_requests_total",
                                    ["route": "items", "method": "read", "status": "2xx", "cache": "hit"])
        }
        #expect(rendered() == nil)  // no series before a request
        tally.record(method: .GET, status: 200, outcome: .hit)
        tally.record(method: .HEAD, status: 200, outcome: .hit)
        #expect(rendered() == 2)
        #expect(rendered() == 2)
        tally.record(method: .GET, status: 200, outcome: .hit)
        #expect(rendered() == 3)
    }
}
