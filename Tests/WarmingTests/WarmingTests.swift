import Foundation
import TestSupport
import Testing
import Warming

/// The pure parts of warming, with explicit times (nanoseconds) instead of a clock.
@Suite struct HotSetTests {
    static let second: Int64 = 1_000_000_000

    @Test func aSteadyRateReadsAsThatRate() {
        var set = HotSet<String>(capacity: 10, tau: 10)
        // 2 requests a second for 100 s (ten time constants).
        for i in 0..<200 { set.record("a", at: Int64(i) * Self.second / 2) }
        let rate = set.rate(of: "a", at: 100 * Self.second)
        #expect(abs(rate - 2) < 0.1, "\(rate)")
        // Unasked, it decays: after one time constant to about 1/e.
        let later = set.rate(of: "a", at: 110 * Self.second)
        #expect(abs(later - 2 / 2.718281828) < 0.1, "\(later)")
        #expect(set.rate(of: "unknown", at: 0) == 0)
    }

    @Test func aYoungKeyReadsAtItsRateOnceAskedForHalfATimeConstant() {
        var set = HotSet<String>(capacity: 10, tau: 20)
        // One request every 3 s for 15 s (0.33/s; 6 requests): read over its own 15 s, not as
        // 0.33 (1 - e^(-15/20)) = 0.18 over the time constant.
        for i in 0...5 { set.record("young", at: Int64(i) * 3 * Self.second) }
        let rate = set.rate(of: "young", at: 15 * Self.second)
        #expect(abs(rate - 1.0 / 3) < 0.05, "\(rate)")
        // Asked once: no rate at all. Twice a second apart: one request over half a time
        // constant, decayed: 20 (1 - e^(-1/2)) = 7.9 s.
        set.record("once", at: 0)
        #expect(set.rate(of: "once", at: Self.second) == 0)
        set.record("twice", at: 0)
        set.record("twice", at: Self.second)
        let twice = set.rate(of: "twice", at: Self.second)
        #expect(twice > 0.12 && twice < 0.13, "\(twice)")
        // A seeded key reads at its saved rate from the start.
        set.seed("seeded", rate: 2, at: 0)
        #expect(abs(set.rate(of: "seeded", at: 0) - 2) < 1e-9)
    }

    @Test func theHottestComeFirstAndTheThresholdFilters() {
        var set = HotSet<String>(capacity: 10, tau: 30)
        for i in 0..<300 {
            let t = Int64(i) * Self.second / 10
            set.record("hot", at: t)  // 10/s
            if i % 10 == 0 { set.record("warm", at: t) }  // 1/s
            if i % 100 == 0 { set.record("cold", at: t) }  // 0.1/s
        }
        let now = 30 * Self.second
        let top = set.hottest(10, at: now)
        #expect(top.map(\.key) == ["hot", "warm", "cold"])
        #expect(set.hottest(10, atLeast: 0.5, at: now).map(\.key) == ["hot", "warm"])
        #expect(set.hottest(1, at: now).map(\.key) == ["hot"])
    }

    @Test func aScanOfOneTimeKeysMakesNoneHotAndKeepsTheHotOnes() {
        var set = HotSet<String>(capacity: 100, tau: 30)
        var t: Int64 = 0
        for i in 0..<20_000 {
            t = Int64(i) * Self.second / 100  // 100 requests a second for 200 s
            if i % 4 == 0 { set.record("hot-\(i / 4 % 10)", at: t) }  // ten keys at 2.5/s each
            else { set.record("scan-\(i)", at: t) }  // each once
        }
        #expect(set.count == 100)
        let hot = set.hottest(100, atLeast: 0.5, at: t)
        #expect(Set(hot.map(\.key)) == Set((0..<10).map { "hot-\($0)" }), "\(hot.prefix(12))")
        for h in hot { #expect(abs(h.rate - 2.5) < 0.3, "\(h)") }
    }

    @Test func weightsAreRescaledWithoutChangingRatesOrOrder() {
        var set = HotSet<Int>(capacity: 4, tau: 1)
        // 400 time constants later (past the rescaling point), rates still read right.
        let start: Int64 = 0
        set.record(1, at: start)
        var t = start
        for i in 0..<800 {
            t = Int64(i) * Self.second / 2
            set.record(2, at: t)
            if i % 2 == 0 { set.record(3, at: t) }
        }
        #expect(set.hottest(4, at: t).map(\.key) == [2, 3])
        let rate2 = set.rate(of: 2, at: t)
        #expect(rate2 > 1.5 && rate2 < 2.6, "\(rate2)")
        #expect(set.rate(of: 1, at: t) < 1e-100)
        set.remove(2)
        #expect(set.rate(of: 2, at: t) == 0 && set.count == 2)
        set.removeAll()
        #expect(set.count == 0)
    }
}

@Suite struct HotSetReferenceTests {
    /// The table's rules written plainly: a dictionary of weights, the coldest found by a scan.
    struct Reference {
        var capacity: Int
        var tau: Double
        var entries: [Int: (weight: Double, error: Double, first: Double)] = [:]

        func added(_ t: Int64) -> Double { exp(Double(t) / 1e9 / tau) }

        func coldest() -> Int? { entries.min { $0.value.weight < $1.value.weight }?.key }

        mutating func record(_ key: Int, at t: Int64) -> (rate: Double, evicted: Int?) {
            let a = added(t)
            if var e = entries[key] {
                e.weight += a
                entries[key] = e
                return (rate(key, at: t), nil)
            }
            var evicted: Int?
            var inherited = 0.0
            if entries.count >= capacity, let c = coldest() {
                inherited = entries[c]?.weight ?? 0
                entries[c] = nil
                evicted = c
            }
            entries[key] = (inherited + a, inherited, a)
            return (rate(key, at: t), evicted)
        }

        mutating func seed(_ key: Int, rate: Double, at t: Int64) {
            guard entries[key] == nil else { return }
            let w = rate * tau * added(t)
            if entries.count >= capacity, let c = coldest() {
                guard w > entries[c]?.weight ?? 0 else { return }
                entries[c] = nil
            }
            entries[key] = (w, 0, 0)
        }

        func rate(_ key: Int, at t: Int64) -> Double {
            guard let e = entries[key] else { return 0 }
            let current = added(t)
            guard e.first > 0 else { return max(0, e.weight - e.error) / current / tau }
            let span = max(current - e.first, current * (1 - exp(-0.5)))
            return max(0, e.weight - e.error - e.first) / span / tau
        }
    }

    @Test func recordSeedAndRemoveAgreeWithAPlainScanOfTheTableWhateverTheSlotHint() {
        // Ten seeds; each runs 3,000 operations over 40 keys on a table of 8, so the table
        // fills, empties by removals, and fills again (the heap is built, then kept).
        for seed in 0..<10 {
            var rng = SplitMix64(seed: UInt64(seed))
            var set = HotSet<Int>(capacity: 8, tau: 5)
            var reference = Reference(capacity: 8, tau: 5)
            var lastSlot: [Int: Int] = [:]
            var t: Int64 = 0
            for step in 0..<3_000 {
                t += Int64.random(in: 1...400_000_000, using: &rng)
                let key = Int.random(in: 0..<40, using: &rng)
                switch Int.random(in: 0..<10, using: &rng) {
                case 0:
                    let rate = Double.random(in: 0.01...3, using: &rng)
                    set.seed(key, rate: rate, at: t)
                    reference.seed(key, rate: rate, at: t)
                case 1:
                    set.remove(key)
                    reference.entries[key] = nil
                default:
                    // The slot it last returned for the key as the hint: stale after the key
                    // moved or left, and sometimes a slot picked at random.
                    let hint = Int.random(in: 0..<4, using: &rng) == 0 ? Int.random(in: -1..<10, using: &rng) : lastSlot[key] ?? -1
                    let got = set.record(key, at: t, hint: hint)
                    lastSlot[key] = got.slot
                    let want = reference.record(key, at: t)
                    #expect(got.evicted == want.evicted, "seed \(seed) step \(step)")
                    #expect(abs(got.rate - want.rate) <= 1e-9 * max(1, want.rate), "seed \(seed) step \(step): \(got.rate) \(want.rate)")
                }
                #expect(set.count == reference.entries.count, "seed \(seed) step \(step)")
            }
            for key in 0..<40 {
                #expect(abs(set.rate(of: key, at: t) - reference.rate(key, at: t)) <= 1e-9 * max(1, reference.rate(key, at: t)))
            }
        }
    }
}

@Suite struct HotSetFlagsTests {
    @Test func flagsFollowTheirKeyThroughTheHeapAndAreClearedWhenItIsPushedOut() {
        var set = HotSet<String>(capacity: 2, tau: 10)
        set.record("a", at: 0)
        set.setFlags(0b01, of: "a")
        set.setFlags(0b10, of: "a")
        set.setFlags(0b01, of: "missing")
        #expect(set.flags(of: "a") == 0b11 && set.flags(of: "missing") == 0 && !set.contains("missing"))
        // b overtakes a; the heap reorders and the flags move with the keys.
        for i in 0..<5 { set.record("b", at: Int64(i)) }
        set.setFlags(0b100, of: "b")
        #expect(set.record("a", at: 10).flags == 0b11)
        set.setFlags(0b01, on: false, of: "a")
        #expect(set.flags(of: "a") == 0b10 && set.flags(of: "b") == 0b100)
        // c pushes out the coldest (a): a's flags go with it, c starts with none.
        let pushed = set.record("c", at: 20)
        #expect(pushed.evicted == "a" && pushed.flags == 0 && set.flags(of: "c") == 0 && set.flags(of: "b") == 0b100)
        set.remove("b")
        #expect(set.flags(of: "b") == 0 && set.count == 1 && set.contains("c"))
    }
}

@Suite struct RefreshAheadTests {
    @Test func aRefreshIsDueInTheLastPartOfTheLifetimeOnly() {
        let ahead = RefreshAhead(fraction: 0.1)
        // Lifetime 100 s, jitter 0: the last 10 s.
        #expect(!ahead.isDue(age: 89, lifetime: 100, jitter: 0))
        #expect(ahead.isDue(age: 90, lifetime: 100, jitter: 0))
        #expect(ahead.isDue(age: 99.9, lifetime: 100, jitter: 0))
        // Stale: the stale-while-revalidate path's, not this one's.
        #expect(!ahead.isDue(age: 100, lifetime: 100, jitter: 0))
        // The largest jitter halves the window.
        #expect(!ahead.isDue(age: 94, lifetime: 100, jitter: 0.999))
        #expect(ahead.isDue(age: 95.1, lifetime: 100, jitter: 0.999))
        #expect(!RefreshAhead(fraction: 0).isDue(age: 99, lifetime: 100, jitter: 0))
        #expect(!ahead.isDue(age: 0, lifetime: 0, jitter: 0))
    }

    @Test func keysFilledTogetherSpreadTheirRefreshes() {
        let jitters = (0..<1000).map { RefreshAhead.jitter(for: UInt64($0)) }
        #expect(jitters.allSatisfy { $0 >= 0 && $0 < 1 })
        // Spread over [0, 1): every tenth has some.
        let deciles = Set(jitters.map { Int($0 * 10) })
        #expect(deciles.count == 10)
        #expect(RefreshAhead.jitter(for: 42) == RefreshAhead.jitter(for: 42))
    }
}

@Suite struct WarmBudgetTests {
    static let ms: Int64 = 1_000_000

    @Test func noSecondStartsMoreThanTheRatePlusOne() {
        var budget = WarmBudget<Int>(.init(maxPerSecond: 50, maxConcurrent: 1000), at: 0)
        for i in 0..<1000 { _ = budget.submit(i, .refresh) }
        var starts: [Int64] = []
        var now: Int64 = 0
        while now < 5_000 * Self.ms {
            while let started = budget.next(at: now) {
                starts.append(now)
                budget.finished(latency: Self.ms)
                _ = started
            }
            now = budget.nextStart(at: now) ?? (now + Self.ms)
        }
        // Every window of one second, wherever it starts.
        for (i, start) in starts.enumerated() {
            let inWindow = starts[i...].prefix { $0 < start + 1_000 * Self.ms }.count
            #expect(inWindow <= 51)
        }
        #expect(starts.count >= 245 && starts.count <= 251, "\(starts.count)")
    }

    @Test func concurrencyIsBoundedAndHigherPrioritiesGoFirst() {
        var budget = WarmBudget<String>(.init(maxPerSecond: 1000, maxConcurrent: 2), at: 0)
        _ = budget.submit("list", .list)
        _ = budget.submit("predict", .predict)
        _ = budget.submit("refresh", .refresh)
        _ = budget.submit("rewarm", .rewarm)
        var now: Int64 = 0
        var order: [String] = []
        for _ in 0..<2 {
            now += 10 * Self.ms
            if let next = budget.next(at: now) { order.append(next.job) }
        }
        now += 10 * Self.ms
        #expect(budget.next(at: now) == nil && budget.inFlight == 2)  // two at once at most
        #expect(budget.nextStart(at: now) == nil)  // waits for a running one, not for time
        budget.finished(latency: Self.ms)
        if let next = budget.next(at: now) { order.append(next.job) }
        budget.finished(latency: Self.ms)
        if let next = budget.next(at: now + 10 * Self.ms) { order.append(next.job) }
        #expect(order == ["refresh", "rewarm", "predict", "list"])
    }

    @Test func aFullQueueDropsTheLowestFirst() {
        var budget = WarmBudget<String>(.init(maxPerSecond: 1, maxConcurrent: 1, queueCapacity: 2), at: 0)
        #expect(isQueued(budget.submit("a", .list)))
        #expect(isQueued(budget.submit("b", .prefetch)))
        // Full: a refresh pushes out the list job; another list job is itself dropped.
        guard case .queuedDropping(let dropped, let source) = budget.submit("c", .refresh) else {
            Issue.record("the refresh was not queued")
            return
        }
        #expect(dropped == "a" && source == .list)
        guard case .dropped = budget.submit("d", .list) else {
            Issue.record("a list job was queued over more important ones")
            return
        }
        #expect(budget.queued == 2 && budget.queued(.refresh) == 1 && budget.queued(.prefetch) == 1)
        #expect(budget.drain().map(\.job) == ["c", "b"] && budget.queued == 0)
    }

    func isQueued(_ s: WarmBudget<String>.Submitted) -> Bool {
        if case .queued = s { return true }
        return false
    }

    @Test func nothingStartsWhileTheUpstreamRefuses() {
        var budget = WarmBudget<Int>(.init(maxPerSecond: 100, maxConcurrent: 4), at: 0)
        _ = budget.submit(1, .refresh)
        #expect(budget.next(at: Self.ms * 100, upstreamRefusing: true) == nil)
        #expect(budget.next(at: Self.ms * 100)?.job == 1)
    }

    @Test func failuresAndSlowAnswersSlowItDownAndSuccessesBringItBack() {
        var budget = WarmBudget<Int>(.init(maxPerSecond: 64, maxConcurrent: 4), at: 0)
        budget.finished(latency: 10 * Self.ms)
        #expect(budget.pace == 1 && budget.effectiveRate == 64)
        budget.finished(latency: nil)
        #expect(budget.pace == 0.5)
        budget.finished(latency: 50 * Self.ms)  // five times the usual: slow
        #expect(budget.pace == 0.25 && budget.effectiveRate == 16)
        for _ in 0..<20 { budget.finished(latency: nil) }
        #expect(budget.pace == WarmBudget<Int>.minimumPace)
        for _ in 0..<40 { budget.finished(latency: 10 * Self.ms) }
        #expect(budget.pace == 1)
    }
}

@Suite struct HotStateTests {
    @Test func aSavedStateReadsBackAndCredentialsAreNeverWritten() throws {
        let state = HotState(entries: [
            .init(route: "items", target: "/api/items/1?lang=en", fields: [["Host", "a.test"], ["Cookie", "s=1"], ["X-Tenant", "t"]], rate: 2.5),
            .init(route: "items", target: "/api/items/2", fields: [], rate: 0.5),
        ])
        let data = state.encoded()
        let text = String(decoding: data, as: UTF8.self)
        #expect(!text.contains("Cookie") && text.hasSuffix("end 2\n"))
        let read = try HotState.decode(data)
        #expect(read.entries.count == 2 && read.entries[0].fields == [["Host", "a.test"], ["X-Tenant", "t"]] && read.entries[1].rate == 0.5)
        #expect(try HotState.decode(HotState(entries: []).encoded()).entries.isEmpty)
    }

    @Test func aDamagedFileIsRefusedWhole() {
        let good = String(decoding: HotState(entries: [.init(route: "r", target: "/a", fields: [], rate: 1)]).encoded(), as: UTF8.self)
        for damaged in ["", "something else\n", String(good.dropLast(7)), good.replacingOccurrences(of: "end 1", with: "end 2"),
                        good.replacingOccurrences(of: "\"/a\"", with: "\"a\""), good.replacingOccurrences(of: "{", with: "[")] {
            #expect(throws: HotState.Damaged.self, "\(damaged)") { try HotState.decode(Data(damaged.utf8)) }
        }
    }

    @Test func aSeededKeyReadsAtItsSavedRate() {
        var set = HotSet<String>(capacity: 2, tau: 60)
        set.seed("a", rate: 3, at: 0)
        #expect(abs(set.rate(of: "a", at: 0) - 3) < 1e-9)
        set.record("b", at: 0)
        set.seed("b", rate: 50, at: 0)  // tracked already: keeps its own
        #expect(set.rate(of: "b", at: 0) < 1)
        set.seed("c", rate: 0.001, at: 0)  // colder than the coldest of a full table
        #expect(!set.contains("c"))
        set.seed("d", rate: 9, at: 0)
        #expect(set.contains("d") && !set.contains("b"))
    }
}

@Suite struct LinkHintsTests {
    @Test func prefetchAndPreloadLinksOnThisOriginOnly() {
        let values = [
            #"</api/items/1/reviews>; rel=prefetch, </static/app.js>; rel="preload"; as=script"#,
            #"<https://api.test/api/items/2?x=1#top>; rel="next prefetch", <https://other.test/a>; rel=prefetch"#,
            #"<//cdn.test/b>; rel=prefetch, </api/items/3>; rel=next, </api/items/1/reviews>; rel=prefetch"#,
            #"<http://API.test/c>; REL=Prefetch; title="a, b", </d>; rel=preload"#,
        ]
        #expect(LinkHints.prefetchTargets(values, host: "api.test")
            == ["/api/items/1/reviews", "/static/app.js", "/api/items/2?x=1", "/c", "/d"])
        // Without a Host, only relative references are this origin's.
        #expect(LinkHints.prefetchTargets([values[1]], host: nil).isEmpty)
        #expect(LinkHints.prefetchTargets(["garbage", "<unclosed; rel=prefetch", ""], host: "api.test").isEmpty)
    }
}

@Suite struct SitemapTests {
    @Test func locationsArePathsWithEntitiesDecoded() {
        let xml = """
            <urlset><url><loc>https://www.example.com/a?x=1&amp;y=2</loc></url>
            <url><loc>/b#top</loc></url><url><loc>ftp://x/c</loc></url><url><loc>https://www.example.com</loc></url>
            <url><loc>//cdn/d</loc></url><url><loc>/b</loc></url><url><loc>/e
            """
        #expect(Sitemap.paths(in: xml) == ["/a?x=1&y=2", "/b", "/"])
        #expect(Sitemap.paths(in: xml, limit: 1) == ["/a?x=1&y=2"])
        #expect(Sitemap.paths(in: "not xml").isEmpty)
    }
}

@Suite struct SuccessorModelTests {
    static let second: Int64 = 1_000_000_000

    @Test func whatSessionsAskNextIsPredictedWithItsShare() {
        var model = SuccessorModel<String, String>(window: 5 * Self.second)
        var t: Int64 = 0
        for (i, next) in ["b", "b", "b", "c"].enumerated() {
            t += Self.second
            _ = model.observe("a", session: "s\(i)", at: t, minimum: 0.5)
            _ = model.observe(next, session: "s\(i)", at: t + Self.second, minimum: 0.5)
        }
        let all = model.predict(after: "a", at: t, minimum: 0)
        #expect(all.map(\.key) == ["b", "c"])
        #expect(abs(all[0].probability - 0.75) < 0.01 && abs(all[1].probability - 0.25) < 0.01)
        #expect(model.predict(after: "a", at: t, minimum: 0.5).map(\.key) == ["b"])
        #expect(model.predict(after: "zzz", at: t, minimum: 0).isEmpty)
    }

    @Test func aStepLongerThanTheWindowIsNotCountedAndPredictionsAreScored() {
        var model = SuccessorModel<String, String>(window: 5 * Self.second)
        _ = model.observe("a", session: "x", at: 0, minimum: 0.5)
        _ = model.observe("b", session: "x", at: 10 * Self.second, minimum: 0.5)  // too late
        #expect(model.predict(after: "a", at: 10 * Self.second, minimum: 0).isEmpty)
        // Learn a -> b (three of a's four requests so far), then a session asking a is
        // predicted b (three of five), and asking b is scored correct.
        for i in 0..<3 {
            _ = model.observe("a", session: "y\(i)", at: (20 + Int64(i)) * Self.second, minimum: 0.5)
            _ = model.observe("b", session: "y\(i)", at: (20 + Int64(i)) * Self.second + 1, minimum: 0.5)
        }
        let first = model.observe("a", session: "z", at: 30 * Self.second, minimum: 0.5)
        #expect(first.predictions.map(\.key) == ["b"] && first.outcome == nil)
        let next = model.observe("b", session: "z", at: 31 * Self.second, minimum: 0.5)
        #expect(next.outcome == .init(predicted: 1, correct: 1))
        // A wrong guess scores 0.
        _ = model.observe("a", session: "w", at: 40 * Self.second, minimum: 0.5)
        #expect(model.observe("q", session: "w", at: 41 * Self.second, minimum: 0.5).outcome == .init(predicted: 1, correct: 0))
    }

    @Test func everythingASessionAsksWithinTheWindowAfterAKeyIsItsSuccessorInAnyOrder() {
        var model = SuccessorModel<String, String>(window: 5 * Self.second)
        // Four sessions ask for the page, then its three assets in a different order each, one of
        // them twice; a fifth asks for the page and stops.
        let orders = [["css", "js", "png"], ["png", "css", "js"], ["js", "png", "css", "css"], ["css", "png", "js"]]
        var t: Int64 = 0
        for (i, assets) in orders.enumerated() {
            t += 10 * Self.second
            _ = model.observe("page", session: "s\(i)", at: t, minimum: 0.5)
            for (j, asset) in assets.enumerated() { _ = model.observe(asset, session: "s\(i)", at: t + Int64(j + 1) * Self.second / 10, minimum: 0.5) }
        }
        t += 10 * Self.second
        _ = model.observe("page", session: "leaver", at: t, minimum: 0.5)
        // Each asset followed four of the page's five requests (a repeat counts once).
        let after = model.predict(after: "page", at: t, minimum: 0)
        #expect(Set(after.map(\.key)) == ["css", "js", "png"])
        for p in after { #expect(abs(p.probability - 0.8) < 0.01, "\(p)") }
        // An asset's successors are what came after it: css was asked five times (twice in a row
        // by one session) and js came after three of them.
        let afterCSS = model.predict(after: "css", at: t, minimum: 0)
        #expect(afterCSS.first { $0.key == "js" }.map { abs($0.probability - 3.0 / 5) < 0.01 } == true, "\(afterCSS)")
        #expect(!afterCSS.contains { $0.key == "page" })
        // A session asking the page is predicted all three; the assets it asks score as they come.
        let asked = model.observe("page", session: "new", at: t + 20 * Self.second, minimum: 0.5)
        #expect(asked.predictions.count == 3)
        #expect(model.observe("js", session: "new", at: t + 20 * Self.second + 1, minimum: 0.5).outcome == .init(predicted: 3, correct: 1))
        // Past the window, nothing is counted and pending predictions lapse.
        #expect(model.observe("png", session: "new", at: t + 40 * Self.second, minimum: 0.5).outcome == nil)
    }

    @Test func keysSessionsAndSuccessorsAreBounded() {
        var model = SuccessorModel<Int, Int>(window: 5 * Self.second, successors: 2, maxKeys: 10, maxSessions: 10)
        for i in 0..<1000 {
            let t = Int64(i) * Self.second / 100
            _ = model.observe(i, session: i % 50, at: t, minimum: 0.5)
            _ = model.observe(i + 1, session: i % 50, at: t + 1, minimum: 0.5)
        }
        #expect(model.keyCount <= 10 && model.sessionCount <= 10)
        for next in 0..<5 {
            _ = model.observe(7, session: 1000 + next, at: 20 * Self.second, minimum: 0.5)
            _ = model.observe(100 + next, session: 1000 + next, at: 20 * Self.second + 1, minimum: 0.5)
        }
        #expect(model.predict(after: 7, at: 20 * Self.second, minimum: 0).count <= 2)
    }
}

@Suite struct SharedHotnessTests {
    @Test func everyInstanceWritesOneMemberPerKeyWithoutRateOrCredentials() throws {
        let a = HotState.Entry(route: "items", target: "/api/items/1", fields: [["X-Tenant", "t"], ["Host", "a.test"], ["Cookie", "s=1"]], rate: 2)
        let b = HotState.Entry(route: "items", target: "/api/items/1", fields: [["host", "a.test"], ["X-Tenant", "t"]], rate: 0.3)
        // Neither the order nor the case of the field names each instance saw matters.
        #expect(SharedHotness.member(a) == SharedHotness.member(b))
        #expect(!SharedHotness.member(a).lowercased().contains("cookie") && !SharedHotness.member(a).contains("rate"))
        let read = try #require(SharedHotness.entry(member: SharedHotness.member(a), score: SharedHotness.score(rate: 2, at: 1000), at: 1000))
        #expect(read.route == "items" && read.target == "/api/items/1" && read.fields == [["host", "a.test"], ["x-tenant", "t"]])
        #expect(abs(read.rate - 2) < 1e-9)
        #expect(SharedHotness.entry(member: "not json", score: 1, at: 0) == nil)
        #expect(SharedHotness.entry(member: SharedHotness.member(a), score: .nan, at: 0) == nil)
    }

    @Test func scoresWrittenAtDifferentTimesStayOrderedByTheRateNow() {
        let t0 = 1_800_000_000.0
        // Written ten minutes apart: the older one's 3/s has decayed to 3/e by the second write.
        let older = SharedHotness.score(rate: 3, at: t0)
        let newer = SharedHotness.score(rate: 1.5, at: t0 + 600)
        #expect(newer > older)
        #expect(abs(SharedHotness.rate(score: older, at: t0 + 600) - 3 / M_E) < 1e-6)
        #expect(abs(SharedHotness.rate(score: newer, at: t0 + 600) - 1.5) < 1e-6)
        // A rate at the floor is dropped once it decays further.
        #expect(SharedHotness.score(rate: 0.002, at: t0) > SharedHotness.floorScore(at: t0))
        #expect(SharedHotness.score(rate: 0.002, at: t0) < SharedHotness.floorScore(at: t0 + 600))
    }
}
