import Foundation
import HTTPCaching
import NIOConcurrencyHelpers
import NIOCore
@testable import Sidecache
import TestSupport
import Testing

/// An invalidation that lands while a fill waits for the origin: the fill answers the clients
/// waiting on it with what it fetched, but does not store it (or, for a soft purge, stores it
/// already stale), so the next request does not hit content from before the invalidation.
@Suite struct InvalidationDuringFillTests {
    /// Starts a GET whose fill takes 2 s (room for a loaded machine), runs `invalidate` once the origin has it, then lets the origin answer
    /// "v2" from then on; returns the racing response and the next one.
    func race(path: String = "/api/items/1", _ invalidate: @escaping @Sendable (Sidecar) async throws -> Void) async throws -> (TestResponse, TestResponse) {
        let version = NIOLockedValueBox("v1")
        var result: (TestResponse, TestResponse)?
        // A response timeout well past the origin's 2 s.
        let upstream = { (port: Int) in "upstream:\n  url: \"http://127.0.0.1:\(port)\"\n  response_timeout: 10s" }
        try await withProxy(upstream: upstream, { r in
            .init(status: .ok, headers: [("Cache-Control", "max-age=300")], body: version.withLockedValue { $0 },
                  delay: r.method == .GET ? .seconds(2) : .zero)
        }) { origin, proxy in
            async let racing = get(proxy.port, path)
            // The fill has started once the origin holds its request (it answers 2 s later).
            #expect(await eventually { origin.count(path) == 1 })
            try await invalidate(proxy)
            version.withLockedValue { $0 = "v2" }
            let first = try await racing
            let next = try await get(proxy.port, path)
            result = (first, next)
        }
        return try #require(result)
    }

    @Test func aPurgeOfTheURLDuringTheFillKeepsItFromBeingStored() async throws {
        let (first, next) = try await race { @Sendable proxy throws in _ = try await proxy.runtime.invalidate(path: "/api/items/1").get() }
        #expect(first.text == "v1" && first.header("Cache-Status")?.contains("detail=invalidated") == true)
        #expect(next.xCache == "MISS" && next.text == "v2")
    }

    @Test func aTagPurgeDuringTheFillKeepsItFromBeingStored() async throws {
        let (first, next) = try await race { @Sendable proxy throws in _ = try await proxy.runtime.invalidate(tag: "item:1").get() }
        #expect(first.text == "v1")
        #expect(next.xCache == "MISS" && next.text == "v2")
    }

    @Test func aPatternPurgeDuringTheFillKeepsItFromBeingStored() async throws {
        let (_, next) = try await race { @Sendable proxy throws in _ = try await proxy.runtime.invalidate(pattern: try PurgePattern(glob: "/api/items/*")).get() }
        #expect(next.xCache == "MISS" && next.text == "v2")
    }

    @Test func aWriteToTheURLDuringTheFillKeepsItFromBeingStored() async throws {
        let (_, next) = try await race { @Sendable proxy throws in
            let written = try await request(proxy.port, "PUT", "/api/items/1", body: "new")
            #expect(written.status == 200)
        }
        #expect(next.xCache == "MISS" && next.text == "v2")
    }

    @Test func aSoftPurgeDuringTheFillStoresItAlreadyStale() async throws {
        let (first, next) = try await race { @Sendable proxy throws in _ = try await proxy.runtime.invalidate(path: "/api/items/1", soft: true).get() }
        #expect(first.text == "v1")
        // Stale from the start: served once while it refreshes (the route's stale_while_revalidate).
        #expect(next.xCache == "STALE")
    }

    @Test func aPurgeOfSomethingElseDuringTheFillLetsItBeStored() async throws {
        let (_, next) = try await race { @Sendable proxy throws in _ = try await proxy.runtime.invalidate(path: "/api/items/2").get() }
        #expect(next.xCache == "HIT" && next.text == "v1")
    }

    @Test func theLogRemembersWhatItCanAndForgetsSafely() throws {
        let log = InvalidationLog(capacity: 2)
        let start = log.epoch
        #expect(log.verdict(since: start, path: "/a", tags: []) == nil)
        log.record(.path("/b"), soft: false)
        #expect(log.verdict(since: start, path: "/a", tags: []) == nil)
        #expect(log.verdict(since: start, path: "/b", tags: []) == .removed)
        log.record(.tag("t"), soft: true)
        #expect(log.verdict(since: start, path: "/a", tags: ["t"]) == .markedStale)
        #expect(log.verdict(since: start, path: "/b", tags: ["t"]) == .removed, "a purge wins over a soft purge")
        let afterTwo = log.epoch
        log.record(.pattern(try PurgePattern(glob: "/x/*")), soft: false)
        #expect(log.verdict(since: afterTwo, path: "/x/1", tags: []) == .removed)
        #expect(log.verdict(since: afterTwo, path: "/a", tags: []) == nil)
        // Three since `start` in a log of two: the first is forgotten, so nothing may be stored.
        #expect(log.verdict(since: start, path: "/a", tags: []) == .removed)
        #expect(log.verdict(since: log.epoch, path: "/a", tags: []) == nil)
    }
}
