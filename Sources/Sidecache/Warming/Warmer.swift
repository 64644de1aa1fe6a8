import Foundation
import HTTPCaching
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import RedisClient
import Resilience
import SidecacheConfig
import Synchronization
import Warming

/// Background fetching for hot entries (the top-level `warming` section, routes' `warm`).
///
/// Each hit on a warm route counts toward its key's request rate (`HotSet`, sharded by key so the
/// event loops rarely meet on a lock). A hit on a hot key whose entry is near the end of its
/// freshness lifetime (`RefreshAhead`) queues a refresh: a conditional fill through the usual
/// coalesced fill path, started by the one `WarmBudget` (rate, concurrency, priority, the circuit
/// breaker, backing off). Clients keep getting the stored entry meanwhile; a failed refresh leaves
/// it in place. Every fetch is counted by route and source, and so is whether what it stored was
/// served before the next fetch replaced it (`used`).
final class Warmer: Sendable {
    /// One background fetch: what to ask, for which key and route, and the entry it refreshes.
    struct Job: Sendable {
        let key: CacheKey
        let route: CompiledRoute
        let head: HTTPRequestHead
        let uri: String
        /// The entry served when the fetch was decided (a refresh), or nil (a re-warm).
        let entry: CachedResponse?
        /// A stored entry newer than this (a client's fill, another fetch) makes the job needless.
        let since: CacheInstant
        /// The `POST /warm` (or `warming.on_start`) job it belongs to.
        var list: Int? = nil
    }

    /// One explicit warming job: its URLs' fetches, counted together.
    struct ListJob: Sendable {
        let id: Int
        /// `urls`, `sitemap` or `on_start`.
        let kind: String
        let created: Date
        var urls = 0
        /// Fetches not yet finished (queued or under way).
        var pending = 0
        var counts = Counts()
        /// Why the job stopped early (a sitemap that could not be read).
        var error: String?
        var reading = false

        var state: String { error != nil ? "failed" : reading ? "reading sitemap" : pending > 0 ? "running" : "done" }
    }

    /// How to ask for a hot key again, kept while the key is tracked: for re-warming it after a
    /// purge removed or marked it.
    struct Recipe: Sendable {
        let key: CacheKey
        let route: CompiledRoute
        let head: HTTPRequestHead
        let uri: String
        let tags: [String]
    }

    /// What the fetches of one route and source did.
    struct Counts: Sendable, Equatable {
        var issued = 0
        var stored = 0
        var notModified = 0
        var notStored = 0
        var failed = 0
        /// Dropped by the full queue, or needless by the time the budget allowed them.
        var dropped = 0
        var skipped = 0
        /// Refreshes another instance took the Redis lease for (it stores the result in L2).
        var leasedElsewhere = 0
        /// Warm-start keys found in L2 and copied to the memory cache, without an origin request.
        var fromL2 = 0
        /// `predict: shadow`: successors the model would have fetched, and those the session
        /// did ask for next.
        var shadowPredicted = 0
        var shadowCorrect = 0

        var shadowPrecision: Double? { shadowPredicted == 0 ? nil : Double(shadowCorrect) / Double(shadowPredicted) }
        /// A stored or refreshed entry served at least one client before the next fetch of its key.
        var used = 0
        /// One that was replaced by the next fetch of its key without serving anyone.
        var wasted = 0
        var bytes = 0

        var completed: Int { stored + notModified }
        /// used / completed; nil before any completed.
        var precision: Double? { completed == 0 ? nil : Double(used) / Double(completed) }
    }

    struct CountKey: Hashable, Sendable {
        let route: String
        let source: WarmSource
    }

    private struct Shard {
        var hot: HotSet<HashedKey>
        /// Keys whose entry a fetch stored and no client has been served since, with who fetched it.
        var unused: [HashedKey: CountKey] = [:]
        /// Of those, the keys the hot set did not track when their fetch ended (a prefetch of a
        /// key not yet asked for): looked up on every hit while there are any.
        var untracked = 0
        /// Hot keys of warm routes: at most one per tracked key (for re-warming and the state file).
        var recipes: [HashedKey: Recipe] = [:]
    }

    private struct Schedule {
        var budget: WarmBudget<Job>
        /// Keys queued or being fetched: a key is fetched once at a time.
        var scheduled: Set<String> = []
        var counts: [CountKey: Counts] = [:]
        var wake: Scheduled<Void>?
        var stopped = false
        /// Explicit warming jobs, the newest `keptLists`.
        var lists: [Int: ListJob] = [:]
        var nextList = 1
        /// Warm-start fetches queued or under way, and until when `/readyz` waits for them.
        var startPending = 0
        /// The shared hot set is being read, and warm-start keys are being looked up in L2.
        var readingShared = false
        var l2Pending = 0
        var startDeadline: Int64 = 0
        /// The access log's per-writer state, for the lines of background fetches.
        var timestamps = TimestampCache()
        var logScratch: [UInt8] = []
    }

    /// Never sent to the upstream on a background fetch, whatever the entry varies on.
    static let privateFields: Set<String> = ["authorization", "cookie", "proxy-authorization"]

    static let shardCount = 16
    /// The hot set's time constant, seconds. Measured with bench/replay (Zipf over 10,000 keys,
    /// lifetime 5 s): against 60 s, 20 s cut the hot keys' waits for the origin by a third,
    /// because a young or slowly asked key's rate reads low for about one time constant.
    static let hotnessTau: Double = 20
    private let shards: [NIOLockedValueBox<Shard>]
    private let schedule: NIOLockedValueBox<Schedule>
    private let loop: any EventLoop
    private let clock: MonotonicClock
    /// The runtime whose cache, pools and fills the fetches use; it holds the warmer, and
    /// `stop` lets it go. Not a weak reference: one weak reference gives an object a side table
    /// for its counts, and every retain and release of the runtime, on every request, then took
    /// the slow path (2% of a hit's user time with warming on).
    private let owner = NIOLockedValueBox<ProxyRuntime?>(nil)

    /// The runtime that holds this warmer: set once it exists. Loads the state file, if one is
    /// configured, and saves it from then on.
    func attach(to runtime: ProxyRuntime) {
        owner.withLockedValue { $0 = runtime }
        warmStart(runtime)
        warmOnStart(runtime)
        // Held until `stop` cancels it (a weak capture would slow every retain of the warmer).
        let task = loop.scheduleRepeatedTask(initialDelay: Self.saveInterval, delay: Self.saveInterval) { _ in
            self.save(blocking: false)
        }
        saver.withLockedValue { $0 = task }
    }

    /// `warming.on_start`: its URLs and its file's (one path per line; `#` starts a comment) as
    /// one warming job. An unreadable file is logged and skipped.
    private func warmOnStart(_ runtime: ProxyRuntime) {
        var urls = onStart.urls
        if let file = onStart.file {
            if let text = try? String(contentsOfFile: file, encoding: .utf8) {
                urls += text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
                    .filter { !$0.isEmpty && !$0.hasPrefix("#") && WarmRequest.isPath($0) }
            } else {
                runtime.logger.warning("cannot read warming.on_start.file; warming without it", metadata: ["file": "\(file)"])
            }
        }
        guard !urls.isEmpty else { return }
        warm(urls, fields: [], kind: "on_start")
    }

    // MARK: The state file

    /// The hot keys of warm routes, hottest first, as the state file keeps them.
    func hotState() -> HotState {
        let t = clock.nanoseconds()
        var entries: [HotState.Entry] = []
        for shard in shards {
            shard.withLockedValue { s in
                for (hot, recipe) in s.recipes {
                    let rate = s.hot.rate(of: hot, at: t)
                    guard let warm = recipe.route.warm, rate >= warm.minRate else { continue }
                    let fields = recipe.head.headers.filter { $0.name.lowercased() != "sec-purpose" }.map { [$0.name, $0.value] }
                    entries.append(HotState.Entry(route: recipe.route.name, target: recipe.uri, fields: fields, rate: rate))
                }
            }
        }
        entries.sort { $0.rate > $1.rate }
        return HotState(entries: Array(entries.prefix(Self.savedKeys)))
    }

    /// Saves the hot set where it is kept: `warming.state_file`, written atomically (a new file
    /// renamed over the old), and with Redis the hot set the instances share. The hot set is read
    /// here; encoding and writing run on the thread pool unless `blocking` (at shutdown, when
    /// the Redis write is waited for, at most the Redis time-out).
    func save(blocking: Bool) {
        guard let runtime else { return }
        let path = stateFile.withLockedValue { $0 }
        let tier = runtime.sharedTier
        guard path != nil || tier != nil else { return }
        let state = hotState()
        let logger = runtime.logger
        let seconds = Double(runtime.now().milliseconds) / 1000
        let redisTimeout = runtime.config.configuration.cache.redis?.timeout.milliseconds ?? 1000
        let loop = self.loop
        let write: @Sendable () -> Void = {
            if let path {
                let temporary = path + ".tmp"
                do {
                    try state.encoded().write(to: URL(fileURLWithPath: temporary))
                    guard rename(temporary, path) == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
                } catch {
                    logger.warning("cannot write warming.state_file", metadata: ["file": "\(path)", "error": "\(error)"])
                }
            }
            guard let tier, !state.entries.isEmpty else { return }
            let members = state.entries.map { (member: SharedHotness.member($0), score: SharedHotness.score(rate: $0.rate, at: seconds)) }
            let written = tier.recordHot(members, floorScore: SharedHotness.floorScore(at: seconds), most: Self.savedKeys, on: loop)
            guard blocking, MultiThreadedEventLoopGroup.currentEventLoop == nil else { return }
            let done = DispatchSemaphore(value: 0)
            written.whenComplete { _ in done.signal() }
            if done.wait(timeout: .now() + .milliseconds(Int(redisTimeout))) == .timedOut {
                logger.warning("the shared hot set was not written to Redis in time at shutdown")
            }
        }
        if blocking { write() } else { NIOThreadPool.singleton.submit { _ in write() } }
    }

    /// The warm start: the hot keys of the state file and, with Redis, of the hot set the
    /// instances share, hottest first. Each key counts as hot again at its saved rate (a key now
    /// below its route's `min_rate` is left out); with Redis it is copied from L2 when L2 has it
    /// (no origin request), and otherwise fetched (`start`) under the budget.
    private func warmStart(_ runtime: ProxyRuntime) {
        let fromFile = stateFileEntries(runtime)
        guard let tier = runtime.sharedTier else {
            warm(fromFile, runtime: runtime, tier: nil)
            return
        }
        schedule.withLockedValue { s in
            s.readingShared = true
            s.startDeadline = clock.nanoseconds() + startTimeout
        }
        // The Redis connections are still being made: a read that finds none up is tried again
        // until they have had their connect time-out.
        let connectNanos = max(1_000, runtime.config.configuration.cache.redis?.timeout.milliseconds ?? 1_000) * 1_000_000
        readSharedHotSet(fromFile, runtime: runtime, tier: tier, until: clock.nanoseconds() + connectNanos)
    }

    private func readSharedHotSet(_ fromFile: [HotState.Entry], runtime: ProxyRuntime, tier: any SharedCacheTier, until deadline: Int64) {
        let seconds = Double(runtime.now().milliseconds) / 1000
        tier.hotMembers(limit: Self.savedKeys, on: loop).whenComplete { [self] result in
            var members: [(member: String, score: Double)] = []
            switch result {
            case .success(let read):
                members = read
            case .failure(let error as RedisError) where error.kind == .unavailable && clock.nanoseconds() < deadline:
                loop.scheduleTask(in: .milliseconds(50)) { self.readSharedHotSet(fromFile, runtime: runtime, tier: tier, until: deadline) }
                return
            case .failure(let error):
                runtime.logger.warning("cannot read the shared hot set from Redis; warming without it", metadata: ["error": "\(error)"])
            }
            // Up to 100,000 recipes to decode: on the thread pool, not on a loop serving clients.
            let read = members
            NIOThreadPool.singleton.submit { [self] _ in
                let shared = read.compactMap { SharedHotness.entry(member: $0.member, score: $0.score, at: seconds) }
                if !read.isEmpty { runtime.logger.notice("warming from the shared hot set in Redis", metadata: ["keys": "\(shared.count)"]) }
                warm(fromFile + shared, runtime: runtime, tier: tier)
                // After `warm` counted its lookups: /readyz never reads ready in between.
                schedule.withLockedValue { $0.readingShared = false }
            }
        }
    }

    /// The entries of `warming.state_file`: none when it is missing (the first start) or damaged
    /// (logged).
    private func stateFileEntries(_ runtime: ProxyRuntime) -> [HotState.Entry] {
        guard let path = stateFile.withLockedValue({ $0 }), let data = FileManager.default.contents(atPath: path) else { return [] }
        do throws(HotState.Damaged) {
            let entries = try HotState.decode(data).entries
            runtime.logger.notice("warming from warming.state_file", metadata: ["file": "\(path)", "keys": "\(entries.count)"])
            return entries
        } catch {
            runtime.logger.warning("warming.state_file is damaged; starting without it", metadata: ["file": "\(path)", "error": "\(error.description)"])
            return []
        }
    }

    /// Seeds the hot set with `entries` (the hottest of each key) and warms each: from L2 when
    /// there is a shared tier, else from the origin.
    private func warm(_ entries: [HotState.Entry], runtime: ProxyRuntime, tier: (any SharedCacheTier)?) {
        let snapshot = runtime.config
        let t = clock.nanoseconds()
        var jobs: [Job] = []
        var seen: Set<String> = []
        for entry in entries.sorted(by: { $0.rate > $1.rate }) {
            var headers = HTTPHeaders(entry.fields.compactMap { $0.count == 2 ? ($0[0], $0[1]) : nil })
            let (path, query) = CacheKeyPolicy.split(uri: entry.target)
            guard let route = snapshot.routes.first(where: { $0.name == entry.route }), let warm = route.warm, entry.rate >= warm.minRate,
                  route.matches(method: .GET, path: path), snapshot.route(method: .GET, path: path) === route else { continue }
            let key = route.keyPolicy.key(host: headers.first(name: "host") ?? "", path: path, query: query, headers: headers)
            guard seen.insert(key.value).inserted else { continue }
            headers.add(name: "Sec-Purpose", value: "prefetch")
            let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: entry.target, headers: headers)
            let hot = HashedKey(key.value)
            shard(hash: hot.hash).withLockedValue { s in
                s.hot.seed(hot, rate: entry.rate, at: t)
                guard s.hot.contains(hot) else { return }
                // Without the flag: the key's next hit replaces this recipe with one that knows
                // the entry's tags (for re-warming after a tag purge).
                s.recipes[hot] = Recipe(key: key, route: route, head: head, uri: entry.target, tags: [])
            }
            jobs.append(Job(key: key, route: route, head: head, uri: entry.target, entry: nil, since: CacheInstant(milliseconds: 0)))
        }
        schedule.withLockedValue { $0.startDeadline = clock.nanoseconds() + startTimeout }
        guard let tier else {
            for job in jobs { submit(job, .start) }
            return
        }
        schedule.withLockedValue { $0.l2Pending = jobs.count }
        let lookups = jobs
        loop.execute { [self] in
            let loader = NIOLoopBound(L2Loader(lookups), eventLoop: loop)
            loadFromL2(loader, tier: tier, runtime: runtime)
        }
    }

    /// The warm-start keys still to look up in L2, and the lookups under way; on `loop`.
    private final class L2Loader {
        var jobs: ArraySlice<Job>
        var inFlight = 0

        init(_ jobs: [Job]) {
            self.jobs = jobs[...]
        }
    }

    /// At most this many warm-start lookups in L2 at a time.
    static let l2Lookups = 64

    /// Looks the next keys up in L2: a copy is stored in the memory cache (`from_l2`; one no
    /// longer servable is kept to be validated), a key L2 lacks is fetched from the origin.
    private func loadFromL2(_ loader: NIOLoopBound<L2Loader>, tier: any SharedCacheTier, runtime: ProxyRuntime) {
        while loader.value.inFlight < Self.l2Lookups, let job = loader.value.jobs.popFirst() {
            loader.value.inFlight += 1
            tier.lookup(job.key, requestHeaders: job.head.headers, now: runtime.now(), on: loop) { [self] found in
                loader.value.inFlight -= 1
                let now = runtime.now()
                var fetch: Job? = job
                if let found {
                    runtime.store.store(found, for: job.key)
                    // A copy too old to serve is kept and validated: the fetch sends its validators.
                    fetch = CacheDecision.isServable(found, at: now) ? nil
                        : Job(key: job.key, route: job.route, head: job.head, uri: job.uri, entry: found, since: found.responseTime)
                }
                schedule.withLockedValue { s in
                    s.l2Pending = max(0, s.l2Pending - 1)
                    if fetch == nil { s.counts[CountKey(route: job.route.name, source: .start), default: Counts()].fromL2 += 1 }
                }
                if let fetch { submit(fetch, .start) }
                loadFromL2(loader, tier: tier, runtime: runtime)
            }
        }
    }

    private var runtime: ProxyRuntime? { owner.withLockedValue { $0 } }

    /// Where the hot set is saved, and the task that saves it every `saveInterval`.
    private let stateFile: NIOLockedValueBox<String?>
    private let startTimeout: Int64
    /// What sessions ask for next (routes with `warm.predict`), keyed by path and query.
    private let model: NIOLockedValueBox<SuccessorModel<String, String>>
    /// `warming.on_start`: paths, and a file of more.
    private let onStart: (urls: [String], file: String?)
    private let saver = NIOLockedValueBox<RepeatedTask?>(nil)
    static let saveInterval = TimeAmount.seconds(5)
    /// At most this many keys are saved, hottest first.
    static let savedKeys = 100_000

    init(_ settings: SidecacheConfiguration.Warming, loop: any EventLoop, clock: MonotonicClock) {
        self.loop = loop
        self.clock = clock
        stateFile = NIOLockedValueBox(settings.stateFile)
        startTimeout = settings.startTimeout.milliseconds * 1_000_000
        onStart = (settings.onStartURLs, settings.onStartFile)
        model = NIOLockedValueBox(SuccessorModel(maxKeys: settings.maxTrackedKeys, maxSessions: settings.maxTrackedKeys))
        let now = clock.nanoseconds()
        let perShard = max(1, settings.maxTrackedKeys / Self.shardCount)
        shards = (0..<Self.shardCount).map { _ in NIOLockedValueBox(Shard(hot: HotSet(capacity: perShard, tau: Self.hotnessTau, startingAt: now))) }
        schedule = NIOLockedValueBox(Schedule(budget: WarmBudget(Self.budgetSettings(settings), at: now)))
    }

    static func budgetSettings(_ settings: SidecacheConfiguration.Warming) -> WarmBudget<Job>.Settings {
        .init(maxPerSecond: settings.maxRequestsPerSecond, maxConcurrent: settings.maxConcurrent)
    }

    /// A reload kept a `warming` section: its budget's new limits (the tracked keys stay).
    func update(_ settings: SidecacheConfiguration.Warming) {
        schedule.withLockedValue { $0.budget.update(Self.budgetSettings(settings)) }
        stateFile.withLockedValue { $0 = settings.stateFile }
    }

    /// Stops starting fetches and drops the queued ones (fetches under way finish); the hot set
    /// is saved a last time, and the runtime is let go.
    func stop() {
        saver.withLockedValue { $0?.cancel() }
        save(blocking: true)
        schedule.withLockedValue { s in
            s.stopped = true
            s.wake?.cancel()
            s.wake = nil
            s.startPending = 0
            s.l2Pending = 0
            s.readingShared = false
            for (job, source) in s.budget.drain() {
                if let list = job.list {
                    s.lists[list]?.pending -= 1
                    s.lists[list]?.counts.dropped += 1
                }
                s.scheduled.remove(job.key.value)
                s.counts[CountKey(route: job.route.name, source: source), default: Counts()].dropped += 1
            }
        }
        owner.withLockedValue { $0 = nil }
    }

    private func shard(hash: Int) -> NIOLockedValueBox<Shard> {
        shards[Int(UInt(bitPattern: hash) % UInt(shards.count))]
    }

    static let maxUntrackedPerShard = 10_000
    /// Fetched entries of keys the hot set does not track, over all shards: while there are none,
    /// a hit on a route without `warm` costs one load of this.
    private let untrackedTotal = Atomic<Int>(0)

    /// `HotSet` flags: the key has a recipe in `recipes`; its entry was fetched and is in `unused`.
    private static let hasRecipe: UInt8 = 1
    private static let fetchedUnused: UInt8 = 2
    /// A refresh is set for the start of the key's window.
    private static let refreshSet: UInt8 = 4

    // MARK: The hit path

    /// A client was served `entry` for `key` on a warm route: counts the request, marks a fetched
    /// entry used, and queues a refresh when the key is hot and the entry near its end.
    func served(_ entry: CachedResponse, key: CacheKey, route: CompiledRoute, warm: SidecacheConfiguration.Warm?, request: ActiveRequest,
                now: CacheInstant) {
        guard let warm else {
            // A route without warm: only whether a prefetch stored what was served.
            guard untrackedTotal.load(ordering: .relaxed) > 0 else { return }
            let hot = HashedKey(key.value)
            let fetchedBy = shard(hash: hot.hash).withLockedValue { s -> CountKey? in
                guard s.untracked > 0, !s.hot.contains(hot), let by = s.unused.removeValue(forKey: hot) else { return nil }
                s.untracked -= 1
                return by
            }
            if let fetchedBy {
                untrackedTotal.wrappingSubtract(1, ordering: .relaxed)
                schedule.withLockedValue { $0.counts[fetchedBy, default: Counts()].used += 1 }
            }
            return
        }
        // One hash of the key picks the shard and the refresh jitter; the flags say, without
        // another lookup, whether the key has a recipe and whether a fetched entry waits for use.
        let hot = HashedKey(key.value)
        let hash = hot.hash
        let (rate, fetchedBy, refreshSet) = shard(hash: hash).withLockedValue { s -> (Double, CountKey?, Bool) in
            let hint = Int(entry.counterSlot.load(ordering: .relaxed))
            let (rate, evicted, flags, at) = s.hot.record(hot, at: clock.nanoseconds(), hint: hint)
            if at != hint { entry.counterSlot.store(Int32(truncatingIfNeeded: at), ordering: .relaxed) }
            let refreshSet = flags & Self.refreshSet != 0
            if let evicted {
                s.recipes[evicted] = nil
                s.unused[evicted] = nil
            }
            if rate >= warm.minRate, flags & Self.hasRecipe == 0,
               let head = Self.backgroundHead(for: request, varyingOn: entry.varyNames, keyHeaders: route.keyPolicy.headers) {
                s.recipes[hot] = Recipe(key: key, route: route, head: head, uri: request.uri, tags: entry.tags)
                s.hot.setFlags(Self.hasRecipe, of: hot)
            }
            if flags & Self.fetchedUnused != 0 {
                s.hot.setFlags(Self.fetchedUnused, on: false, of: hot)
                return (rate, s.unused.removeValue(forKey: hot), refreshSet)
            }
            guard s.untracked > 0, let by = s.unused.removeValue(forKey: hot) else { return (rate, nil, refreshSet) }
            s.untracked -= 1
            untrackedTotal.wrappingSubtract(1, ordering: .relaxed)
            return (rate, by, refreshSet)
        }
        if let fetchedBy { schedule.withLockedValue { $0.counts[fetchedBy, default: Counts()].used += 1 } }
        guard let fraction = warm.refreshAhead, rate >= warm.minRate else { return }
        let lifetime = Double(entry.terms.freshnessLifetime.milliseconds) / 1000
        let age = Double(entry.age(at: now).milliseconds) / 1000
        let jitter = RefreshAhead.jitter(for: UInt64(bitPattern: Int64(hash)))
        let ahead = RefreshAhead(fraction: fraction)
        if ahead.isDue(age: age, lifetime: lifetime, jitter: jitter) {
            guard let head = Self.backgroundHead(for: request, varyingOn: entry.varyNames, keyHeaders: route.keyPolicy.headers) else { return }
            submit(Job(key: key, route: route, head: head, uri: request.uri, entry: entry, since: entry.responseTime), .refresh)
            return
        }
        // Not due yet: a hot key may well see no hit inside its window, so the refresh is also
        // set for the window's start, once per key until it fires (the flag read above saves
        // a second lock on every hit while it is set).
        guard !refreshSet else { return }
        setRefresh(hot: hot, age: age, lifetime: lifetime, window: ahead.window(lifetime: lifetime, jitter: jitter), minRate: warm.minRate) {
            Self.backgroundHead(for: request, varyingOn: entry.varyNames, keyHeaders: route.keyPolicy.headers).map { head in
                Job(key: key, route: route, head: head, uri: request.uri, entry: entry, since: entry.responseTime)
            }
        }
    }

    /// Sets a refresh (`job()`, made only when none is set yet) for the start of its key's
    /// window; it starts then if the key is still hot. A key that went cold is left to expire.
    private func setRefresh(hot: HashedKey, age: Double, lifetime: Double, window: Double, minRate: Double, _ job: () -> Job?) {
        guard age < lifetime else { return }
        let wait = lifetime - age - window
        let set = shard(hash: hot.hash).withLockedValue { s -> Bool in
            guard s.hot.flags(of: hot) & Self.refreshSet == 0 else { return false }
            s.hot.setFlags(Self.refreshSet, of: hot)
            return true
        }
        guard set else { return }
        guard let job = job() else {
            shard(hash: hot.hash).withLockedValue { $0.hot.setFlags(Self.refreshSet, on: false, of: hot) }
            return
        }
        loop.scheduleTask(in: .milliseconds(max(1, Int64(wait * 1000)))) { [self] in
            let stillHot = shard(hash: hot.hash).withLockedValue { s -> Bool in
                s.hot.setFlags(Self.refreshSet, on: false, of: hot)
                return s.hot.rate(of: hot, at: clock.nanoseconds()) >= minRate
            }
            if stillHot { submit(job, .refresh) }
        }
    }

    /// A key being refreshed stays hot down to this share of `min_rate` (hysteresis): a rate read
    /// from a few requests a lifetime swings by half either way, and a key truly at `min_rate`
    /// would otherwise drop out of its chain about every other lifetime and make a client wait.
    static let keepHotShare = 0.5

    /// The rate down to which a key already known hot stays hot on `warm`'s route: in a refresh
    /// chain, and for a re-warm after a purge.
    static func keptHotRate(_ warm: SidecacheConfiguration.Warm) -> Double { warm.minRate * keepHotShare }

    /// A refresh (or a re-warm, or a warm start) stored the entry of a hot key: the next refresh
    /// is set for the start of the entry's window at once. Left to the next hit, a key asked about once
    /// a lifetime would often see none in time, and its next client would wait for the origin.
    private func chainRefresh(after job: Job, runtime: ProxyRuntime) {
        guard let warm = job.route.warm, let fraction = warm.refreshAhead else { return }
        let now = runtime.now()
        guard let entry = runtime.store.lookup(job.key, requestHeaders: job.head.headers, now: now) else { return }
        let hot = HashedKey(job.key.value)
        let lifetime = Double(entry.terms.freshnessLifetime.milliseconds) / 1000
        let age = Double(entry.age(at: now).milliseconds) / 1000
        let window = RefreshAhead(fraction: fraction).window(lifetime: lifetime, jitter: RefreshAhead.jitter(for: UInt64(bitPattern: Int64(hot.hash))))
        setRefresh(hot: hot, age: age, lifetime: lifetime, window: window, minRate: Self.keptHotRate(warm)) {
            Job(key: job.key, route: job.route, head: job.head, uri: job.uri, entry: entry, since: entry.responseTime)
        }
    }

    // MARK: Declared prefetch

    /// After a request on a route with `warm.prefetch`: each listed URL, filled from the request's
    /// path, that the cache holds no fresh entry for is fetched (`prefetch`), with the request's
    /// `Host`, the fields the target route's key depends on and the content negotiation ones.
    func prefetchDeclared(after request: ActiveRequest) {
        guard let route = request.route, let templates = route.warm?.prefetch, !templates.isEmpty else { return }
        let parameters = route.pattern.match(request.path) ?? []
        prefetch(templates.map { $0.render(parameters) }, after: request, source: .prefetch)
    }

    // MARK: Learned prefetch

    /// After a 2xx on a route with `warm.predict`: the step from the session's previous request
    /// is counted, and the successors of this one at least `min_confidence` likely are fetched
    /// (`on`) or only counted as what would have been (`shadow`, scored when the session's next
    /// request comes).
    func predictNext(after request: ActiveRequest, peer: String) {
        guard let route = request.route, let warm = route.warm, warm.predict != .off else { return }
        let session: String?
        switch warm.session {
        case .clientIP:
            let trusted = request.snapshot.configuration.trustedProxies
            session = trusted.isEmpty ? peer
                : ClientAddress.resolve(peer: peer, forwardedFor: request.head.headers[canonicalForm: "x-forwarded-for"], trusted: trusted)
        case .header(let name): session = request.head.headers.first(name: name)
        case .cookie(let name): session = Self.cookie(name, in: request.head.headers)
        }
        guard let session, !session.isEmpty else { return }
        let (predictions, outcome) = model.withLockedValue {
            $0.observe(request.uri, session: warm.session.description + "=" + session, at: clock.nanoseconds(), minimum: warm.minConfidence)
        }
        let counted = CountKey(route: route.name, source: .predict)
        if warm.predict == .shadow {
            schedule.withLockedValue { s in
                s.counts[counted, default: Counts()].shadowPredicted += predictions.count
                s.counts[counted, default: Counts()].shadowCorrect += outcome?.correct ?? 0
            }
            return
        }
        if !predictions.isEmpty { prefetch(predictions.map(\.key), after: request, source: .predict) }
    }

    /// The value of cookie `name` in the request's `Cookie` fields.
    static func cookie(_ name: String, in headers: HTTPHeaders) -> String? {
        for field in headers["cookie"] {
            for pair in field.split(separator: ";") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                if parts.count == 2, parts[0].trimmingCharacters(in: .whitespaces) == name { return parts[1].trimmingCharacters(in: .whitespaces) }
            }
        }
        return nil
    }

    /// What an origin's response to `request` announced with `Link: rel=prefetch` / `preload`.
    func prefetchAnnounced(_ linkValues: [String], after request: ActiveRequest) {
        let targets = LinkHints.prefetchTargets(linkValues, host: request.head.headers.first(name: "host"))
        if !targets.isEmpty { prefetch(targets, after: request, source: .links) }
    }

    /// Fetches each of `uris` (path and query on this origin) that the cache holds no fresh entry
    /// for, with the request's `Host`, the target route's key fields and content negotiation ones.
    private func prefetch(_ uris: [String], after request: ActiveRequest, source: WarmSource) {
        guard let runtime else { return }
        let now = runtime.now()
        for uri in uris {
            guard case .fetch(let job) = Self.job(for: uri, fields: request.head.headers, in: request.snapshot, runtime: runtime, now: now) else { continue }
            submit(job, source)
        }
    }

    enum Planned {
        case fetch(Job)
        /// Fresh in the cache already.
        case fresh
        /// No cached route takes a GET of it.
        case notCached
    }

    /// The background fetch of `uri` with what of `fields` the target route's key depends on
    /// (and `Host` and the content negotiation ones), unless the cache has it fresh.
    static func job(for uri: String, fields: HTTPHeaders, in snapshot: ConfigSnapshot, runtime: ProxyRuntime, now: CacheInstant) -> Planned {
        let (path, query) = CacheKeyPolicy.split(uri: uri)
        guard let target = snapshot.route(method: .GET, path: path), target.cacheEnabled else { return .notCached }
        let names = Set(target.keyPolicy.headers + ["host", "accept", "accept-encoding", "accept-language"]).subtracting(privateFields)
        var headers = HTTPHeaders()
        for (name, value) in fields where names.contains(name.lowercased()) { headers.add(name: name, value: value) }
        let key = target.keyPolicy.key(host: headers.first(name: "host") ?? "", path: path, query: query, headers: headers)
        if let stored = runtime.store.lookup(key, requestHeaders: headers, now: now), case .fresh = stored.freshness(at: now) { return .fresh }
        headers.add(name: "Sec-Purpose", value: "prefetch")
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: uri, headers: headers)
        return .fetch(Job(key: key, route: target, head: head, uri: uri, entry: nil, since: now))
    }

    // MARK: Explicit warming

    static let keptLists = 50

    /// Starts a warming job for `uris` (paths with queries) sent with `fields`; `Host` defaults to
    /// the listen address. Returns its id at once; `lists` shows its progress.
    @discardableResult
    func warm(_ uris: [String], fields: [(String, String)], kind: String) -> Int {
        let id = newList(kind: kind, reading: false)
        add(uris, fields: fields, to: id)
        return id
    }

    func newList(kind: String, reading: Bool) -> Int {
        schedule.withLockedValue { s in
            let id = s.nextList
            s.nextList += 1
            s.lists[id] = ListJob(id: id, kind: kind, created: Date(), reading: reading)
            for old in s.lists.keys.sorted().dropLast(Self.keptLists) where s.lists[old]?.pending == 0 { s.lists[old] = nil }
            return id
        }
    }

    /// Queues the fetches of `uris` for list `id` (the cache's fresh ones count as skipped).
    func add(_ uris: [String], fields: [(String, String)], to id: Int) {
        guard let runtime else { return }
        var headers = HTTPHeaders(fields)
        if headers.first(name: "host") == nil { headers.add(name: "Host", value: runtime.config.configuration.listen.description) }
        let snapshot = runtime.config
        let now = runtime.now()
        var jobs: [Job] = []
        var fresh = 0
        var uncached = 0
        for uri in uris {
            switch Self.job(for: uri, fields: headers, in: snapshot, runtime: runtime, now: now) {
            case .fetch(var job):
                job.list = id
                jobs.append(job)
            case .fresh: fresh += 1
            case .notCached: uncached += 1
            }
        }
        schedule.withLockedValue { s in
            s.lists[id]?.urls += uris.count
            s.lists[id]?.counts.skipped += fresh + uncached
            s.lists[id]?.reading = false
        }
        for job in jobs { submit(job, .list) }
    }

    /// Starts a warming job for the `<loc>` paths of the sitemap at `path`, fetched through the
    /// upstream; returns its id at once.
    @discardableResult
    func warm(sitemap path: String, fields: [(String, String)]) -> Int {
        let id = newList(kind: "sitemap", reading: true)
        guard let runtime else {
            fail(list: id, "shutting down")
            return id
        }
        let host = HTTPHeaders(fields).first(name: "host") ?? runtime.config.configuration.listen.description
        loop.execute { [self] in
            UpstreamDocumentFetch.get(path, host: host, runtime: runtime, on: loop) { [self] result in
                switch result {
                case .success(let body):
                    let paths = Sitemap.paths(in: String(buffer: body))
                    if paths.isEmpty { fail(list: id, "sitemap \(path): no <loc> entries in it") } else { add(paths, fields: fields, to: id) }
                case .failure(let failure):
                    fail(list: id, "sitemap \(path): \(failure)")
                    runtime.logger.warning("cannot read the sitemap to warm", metadata: ["sitemap": "\(path)", "error": "\(failure)"])
                }
            }
        }
        return id
    }

    /// A list that could not go on (its sitemap could not be read).
    func fail(list id: Int, _ reason: String) {
        schedule.withLockedValue { s in
            s.lists[id]?.reading = false
            s.lists[id]?.error = reason
        }
    }

    /// The explicit warming jobs, newest first.
    var lists: [ListJob] {
        schedule.withLockedValue { $0.lists.values.sorted { $0.id > $1.id } }
    }

    // MARK: Purges

    /// A purge here removed or marked entries: the hot keys it matched on routes that re-warm
    /// (hot down to `keptHotRate`, as in a refresh chain) are fetched again in the background
    /// (`rewarm`), so the next client finds a fresh entry. Clients that come before a fetch
    /// starts fill the key themselves, and the fetch is then skipped.
    func invalidated(_ targets: [InvalidationMessage.Target], at now: CacheInstant) {
        let tests: [(Recipe) -> Bool] = targets.map { target in
            switch target {
            case .path(let path): return { $0.key.path == path }
            case .tag(let tag): return { $0.tags.contains(tag) }
            case .pattern(let pattern):
                let test = pattern.matcher()
                return { test($0.key.path) }
            case .all: return { _ in true }
            }
        }
        let matches: (Recipe) -> Bool = { recipe in tests.contains { $0(recipe) } }
        let t = clock.nanoseconds()
        var jobs: [(job: Job, rate: Double)] = []
        for shard in shards {
            shard.withLockedValue { s in
                for recipe in s.recipes.values where matches(recipe) {
                    let rate = s.hot.rate(of: HashedKey(recipe.key.value), at: t)
                    guard let warm = recipe.route.warm, warm.rewarmAfterPurge, rate >= Self.keptHotRate(warm) else { continue }
                    jobs.append((Job(key: recipe.key, route: recipe.route, head: recipe.head, uri: recipe.uri, entry: nil, since: now), rate))
                }
            }
        }
        // Hottest first: under the budget's pace, a key asked r times a second and fetched after
        // d seconds sends about r × d clients to the origin meanwhile.
        for (job, _) in jobs.sorted(by: { $0.rate > $1.rate }) { submit(job, .rewarm) }
    }

    /// The head of a background fetch for what `request` asked: GET, its target and Host, the
    /// fields the key and the entry's `Vary` depend on and the content negotiation ones, and
    /// `Sec-Purpose: prefetch`. Nil when the entry varies on a private field (never replayed).
    static func backgroundHead(for request: ActiveRequest, varyingOn vary: [String], keyHeaders: [String]) -> HTTPRequestHead? {
        let names = Set(vary.map { $0.lowercased() } + keyHeaders + ["host", "accept", "accept-encoding", "accept-language"])
        guard names.isDisjoint(with: privateFields) else { return nil }
        var headers = HTTPHeaders()
        for (name, value) in request.head.headers where names.contains(name.lowercased()) { headers.add(name: name, value: value) }
        headers.add(name: "Sec-Purpose", value: "prefetch")
        return HTTPRequestHead(version: .http1_1, method: .GET, uri: request.head.uri, headers: headers)
    }

    // MARK: Scheduling

    func submit(_ job: Job, _ source: WarmSource) {
        let queued = schedule.withLockedValue { s -> Bool in
            let counted = CountKey(route: job.route.name, source: source)
            guard !s.stopped, s.scheduled.insert(job.key.value).inserted else {
                // Already queued or being fetched: for a list, that is as good as done.
                if let list = job.list { s.lists[list]?.counts.skipped += 1 }
                return false
            }
            switch s.budget.submit(job, source) {
            case .queued:
                if source == .start { s.startPending += 1 }
                if let list = job.list { s.lists[list]?.pending += 1 }
                return true
            case .queuedDropping(let dropped, let droppedSource):
                if source == .start { s.startPending += 1 }
                if let list = job.list { s.lists[list]?.pending += 1 }
                if droppedSource == .start { s.startPending -= 1 }
                if let list = dropped.list {
                    s.lists[list]?.pending -= 1
                    s.lists[list]?.counts.dropped += 1
                }
                s.scheduled.remove(dropped.key.value)
                s.counts[CountKey(route: dropped.route.name, source: droppedSource), default: Counts()].dropped += 1
                return true
            case .dropped:
                s.scheduled.remove(job.key.value)
                s.counts[counted, default: Counts()].dropped += 1
                if let list = job.list { s.lists[list]?.counts.dropped += 1 }
                return false
            }
        }
        if queued { loop.execute { self.pump() } }
    }

    /// Starts what the budget allows now, and sets a wake-up for the next start.
    private func pump() {
        guard let runtime else { return }
        let refusing = runtime.upstreamGuard.breaker?.status.state == "open"
        let now = clock.nanoseconds()
        let ready = schedule.withLockedValue { s -> [(Job, WarmSource)] in
            guard !s.stopped else { return [] }
            var ready: [(Job, WarmSource)] = []
            while let next = s.budget.next(at: now, upstreamRefusing: refusing) { ready.append(next) }
            s.wake?.cancel()
            s.wake = nil
            // While the breaker is open nothing starts; look again in a second.
            let at = refusing && s.budget.queued > 0 ? now + 1_000_000_000 : s.budget.nextStart(at: now)
            if let at {
                s.wake = loop.scheduleTask(in: .nanoseconds(max(1_000_000, at - now))) { self.pump() }
            }
            return ready
        }
        for (job, source) in ready { start(job, source, runtime: runtime) }
    }

    private func start(_ job: Job, _ source: WarmSource, runtime: ProxyRuntime) {
        let counted = CountKey(route: job.route.name, source: source)
        let started = clock.nanoseconds()
        let request = ActiveRequest(head: job.head, uri: job.uri, config: runtime.current, routed: true, requestID: runtime.requestIDs.next(),
                                    started: .now())
        // Needless now: the route went away in a reload, or a client's fill or another refresh
        // stored a newer entry already, or a fill of the key is under way.
        let current = runtime.store.lookup(job.key, requestHeaders: job.head.headers, now: runtime.now())
        let newer = current.map { $0.responseTime > job.since } ?? false
        guard request.route?.name == job.route.name, !newer, runtime.coalescer.join(job.key.value, waiter: nil) == .leader else {
            finished(job, counted, ending: nil, latency: nil)
            return
        }
        // With Redis, one instance of all those sharing it refreshes a key per lifetime: the
        // lease lasts until the renewed entry's own window opens (the lifetime less the
        // refresh-ahead share), and at least until this entry would expire. Every other
        // instance's entry of the key reaches its window within that time, and finds the lease
        // taken; the holder's next refresh finds it gone. A Redis that does not answer leases
        // nothing and stops nothing: the refresh goes on. An entry that expired while its refresh
        // waited for the budget takes the lease too: without it, two instances whose refreshes
        // both started late each went to the origin.
        if source == .refresh, let tier = runtime.sharedTier, let entry = job.entry {
            var remaining: Int64 = 0
            if case .fresh(let left) = entry.freshness(at: runtime.now()) { remaining = left.milliseconds }
            let untilNextWindow = Int64(Double(entry.terms.freshnessLifetime.milliseconds) * (1 - (job.route.warm?.refreshAhead ?? 0)))
            tier.lease(job.key, milliseconds: max(remaining + 1000, untilNextWindow), holder: runtime.instanceID,
                       on: loop) { [self] taken in
                guard taken == false else { return fetch(job, counted, request: request, current: current, started: started, source: source) }
                runtime.coalescer.finish(job.key.value, with: .retry)
                schedule.withLockedValue { $0.counts[counted, default: Counts()].leasedElsewhere += 1 }
                finished(job, counted, ending: nil, latency: nil, countSkipped: false)
            }
            return
        }
        fetch(job, counted, request: request, current: current, started: started, source: source)
    }

    /// Fetches for a job whose key this warmer leads (the coalescer's leader).
    private func fetch(_ job: Job, _ counted: CountKey, request: ActiveRequest, current: CachedResponse?, started: Int64, source: WarmSource) {
        guard let runtime else {
            finished(job, counted, ending: nil, latency: nil)
            return
        }
        schedule.withLockedValue { $0.counts[counted, default: Counts()].issued += 1 }
        request.key = job.key
        let validating = current ?? job.entry
        CacheFill(runtime: runtime, key: job.key, route: job.route, request: request, owner: nil, clientAddress: "127.0.0.1",
                  validating: validating, eventLoop: loop) { [self] ending, status in
            let latency = clock.nanoseconds() - started
            if runtime.accessLogEnabled {
                var bytes = 0
                if case .stored(let stored) = ending { bytes = stored }
                let record = AccessRecord(requestID: request.requestID, method: .GET, path: request.path, route: job.route.name, status: status,
                                          outcome: validating == nil ? .miss : .revalidated, upstreamMicroseconds: latency / 1000,
                                          totalMicroseconds: latency / 1000, bytes: bytes, client: "-", purpose: source.rawValue)
                schedule.withLockedValue { s in
                    runtime.accessLog.write(record, time: runtime.now(), timestamps: &s.timestamps, scratch: &s.logScratch)
                }
            }
            finished(job, counted, ending: ending, latency: latency)
        }.start()
    }

    /// `ending` nil: the job was skipped without a fetch.
    private func finished(_ job: Job, _ counted: CountKey, ending: CacheFill.Ending?, latency: Int64?, countSkipped: Bool = true) {
        // A fetch that renewed or stored a key that is hot already (a refresh, a re-warm, a warm
        // start) keeps it fresh from then on; a prefetch waits for the key to be asked.
        if let ending, ending != .failed, ending != .notStored, [.refresh, .rewarm, .start].contains(counted.source), let runtime {
            chainRefresh(after: job, runtime: runtime)
        }
        var replacedUnused: CountKey?
        if let ending, ending != .failed, ending != .notStored {
            let hot = HashedKey(job.key.value)
            replacedUnused = shard(hash: hot.hash).withLockedValue { s in
                let replaced = s.unused[hot]
                if s.hot.contains(hot) {
                    s.hot.setFlags(Self.fetchedUnused, of: hot)
                } else if replaced == nil {
                    // Bounded: past this many, fetched keys nobody asked for go uncounted.
                    guard s.untracked < Self.maxUntrackedPerShard else { return nil }
                    s.untracked += 1
                    untrackedTotal.wrappingAdd(1, ordering: .relaxed)
                }
                s.unused[hot] = counted
                return replaced
            }
        }
        schedule.withLockedValue { s in
            s.scheduled.remove(job.key.value)
            if counted.source == .start { s.startPending = max(0, s.startPending - 1) }
            if let list = job.list, var l = s.lists[list] {
                l.pending = max(0, l.pending - 1)
                switch ending {
                case nil: l.counts.skipped += 1
                case .stored(let bytes):
                    l.counts.stored += 1
                    l.counts.bytes += bytes
                case .notModified: l.counts.notModified += 1
                case .notStored: l.counts.notStored += 1
                case .failed: l.counts.failed += 1
                }
                s.lists[list] = l
            }
            if let replacedUnused { s.counts[replacedUnused, default: Counts()].wasted += 1 }
            switch ending {
            case nil:
                if countSkipped { s.counts[counted, default: Counts()].skipped += 1 }
                s.budget.skipped()
            case .stored(let bytes):
                s.counts[counted, default: Counts()].stored += 1
                s.counts[counted, default: Counts()].bytes += bytes
                s.budget.finished(latency: latency)
            case .notModified:
                s.counts[counted, default: Counts()].notModified += 1
                s.budget.finished(latency: latency)
            case .notStored:
                s.counts[counted, default: Counts()].notStored += 1
                s.budget.finished(latency: latency)
            case .failed:
                s.counts[counted, default: Counts()].failed += 1
                s.budget.finished(latency: nil)
            }
        }
        pump()
    }

    // MARK: Reports

    /// The warm start's fetches still queued or under way, while `warming.start_timeout` has not
    /// passed since it began; nil once it is done (or there was none).
    var warmingStart: Int? {
        let now = clock.nanoseconds()
        return schedule.withLockedValue { s in
            let pending = s.startPending + s.l2Pending + (s.readingShared ? 1 : 0)
            return pending > 0 && now < s.startDeadline ? pending : nil
        }
    }

    /// The counts by route and source, and the budget's state.
    var report: (counts: [CountKey: Counts], queued: Int, inFlight: Int, pace: Double, rate: Double) {
        schedule.withLockedValue { s in (s.counts, s.budget.queued, s.budget.inFlight, s.budget.pace, s.budget.effectiveRate) }
    }

    /// The hottest keys of all routes now, hottest first.
    func hottest(_ limit: Int) -> [(key: String, rate: Double)] {
        let now = clock.nanoseconds()
        return shards.flatMap { $0.withLockedValue { $0.hot.hottest(limit, at: now) } }.sorted { $0.rate > $1.rate }.prefix(limit)
            .map { (key: $0.key.name, rate: $0.rate) }
    }
}
