import Foundation
import HTTPCaching
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import SidecacheConfig
import Synchronization

/// Everything the request path shares across connections and event loops: the current config
/// snapshot, the cache, the coalescer, the upstream pools and the logs. Purging is the
/// `InvalidationService`'s, reading a changed config file the `ConfigReloader`'s, forgetting idle
/// rate-limit keys the `RateLimitSweeper`'s; the runtime holds them and swaps a reloaded config in.
public final class ProxyRuntime: Sendable {
    /// The snapshot new requests use, and its routes' rate limiters and request tallies: swapped together.
    private let active: NIOLockedValueBox<ActiveConfig>
    private let guardBox: NIOLockedValueBox<UpstreamGuard>
    let store: MemoryStore
    let coalescer = FillCoalescer()
    let invalidation: InvalidationService
    let pools: UpstreamPools
    let logger: Logger
    let levelBox: LogLevelBox
    let accessLog: AccessLog
    let requestIDs = RequestIDGenerator()
    private let accessEnabled: Synchronization.Atomic<Bool>
    private let reloader: ConfigReloader
    private let clock: @Sendable () -> CacheInstant
    let monotonic: MonotonicClock
    private let group: any EventLoopGroup
    private let tier = NIOLockedValueBox<RedisTier?>(nil)
    /// Names this process in invalidation messages, so it can ignore its own.
    let instanceID = RequestIDGenerator().next().text
    let stats = TrafficStats()
    let hotKeys = HotKeys()
    let metrics = SidecacheMetrics()
    let startedAt = NIODeadline.now()
    private let sweeper: RateLimitSweeper
    /// The dashboard's series, one reading a second.
    let sampler: StatsSampler
    /// The outcome of the last reload (SIGHUP or `POST /reload`), nil before the first.
    private let lastReloadBox = NIOLockedValueBox<ReloadRecord?>(nil)

    /// `clock` gives the wall-clock time for RFC 9111 arithmetic, `monotonic` the time of the
    /// breaker, the retry budget and the rate limits; tests pass manual ones.
    public init(snapshot: ConfigSnapshot, group: any EventLoopGroup, logger: Logger, logSink: LogSink, levelBox: LogLevelBox,
                clock: @escaping @Sendable () -> CacheInstant = { CacheInstant.now() }, monotonic: MonotonicClock = .system) {
        self.clock = clock
        self.monotonic = monotonic
        self.active = NIOLockedValueBox(ActiveConfig(snapshot: snapshot, limiters: RouteLimiters(snapshot, previous: nil, clock: monotonic, logger: logger, metrics: metrics),
                                                     tallies: RouteTallies(snapshot, stats: stats),
                                                     warmer: snapshot.configuration.warming.map { Warmer($0, loop: group.next(), clock: monotonic) }))
        self.guardBox = NIOLockedValueBox(UpstreamGuard(upstream: snapshot.configuration.upstream, clock: monotonic, logger: logger, metrics: metrics))
        let store = MemoryStore(limits: snapshot.configuration.cache.memory)
        self.store = store
        let tier = self.tier
        let active = self.active
        self.invalidation = InvalidationService(store: store, metrics: metrics, clock: clock, tier: { tier.withLockedValue { $0 } },
                                                warmer: { active.withLockedValue { $0.warmer } })
        self.reloader = ConfigReloader(logger: logger, metrics: metrics)
        self.pools = UpstreamPools(group: group)
        self.logger = logger
        self.levelBox = levelBox
        self.accessLog = AccessLog(sink: logSink)
        self.accessEnabled = Synchronization.Atomic(snapshot.configuration.logging.access)
        self.group = group
        self.sweeper = RateLimitSweeper(on: group.next(), clock: monotonic, limiters: { active.withLockedValue { $0.limiters.all } })
        let (stats, pools, guardBox) = (self.stats, self.pools, self.guardBox)
        self.sampler = StatsSampler(on: group.next()) {
            StatsReading(stats: stats, store: store, pools: pools, redis: tier.withLockedValue { $0 }.map(RedisStatus.init),
                         breaker: guardBox.withLockedValue { $0.breaker }, warmer: active.withLockedValue { $0.warmer })
        }
        levelBox.level = Logger.Level(rawValue: snapshot.configuration.logging.level) ?? .info
        if let redis = snapshot.configuration.cache.redis { tier.withLockedValue { $0 = makeTier(redis) } }
        current.warmer?.attach(to: self)
    }

    /// The invalidation log the fills consult.
    var invalidations: InvalidationLog { invalidation.log }

    /// The Redis tier when one is configured.
    var redisTier: RedisTier? { tier.withLockedValue { $0 } }

    /// The shared tier behind the memory cache, as the request path and the fills see it.
    var sharedTier: (any SharedCacheTier)? { redisTier }

    public struct RedisStatus: Sendable, Equatable {
        /// At least one command connection is up.
        public var connected: Bool
        /// The invalidation channel is subscribed.
        public var subscribed: Bool
        /// Commands that failed or timed out since the tier started (each fell back to L1 and the upstream).
        public var errors: Int

        init(_ tier: RedisTier) {
            self.init(connected: tier.connected, subscribed: tier.subscribed, errors: tier.errorCount)
        }

        public init(connected: Bool, subscribed: Bool, errors: Int) {
            self.connected = connected
            self.subscribed = subscribed
            self.errors = errors
        }
    }

    /// Nil when no Redis is configured.
    public var redisStatus: RedisStatus? { redisTier.map(RedisStatus.init) }

    private func makeTier(_ config: SidecacheConfiguration.Redis) -> RedisTier {
        let invalidation = self.invalidation
        let logger = self.logger
        let group = self.group
        return RedisTier(
            config: config, group: group, logger: logger, instanceID: instanceID, errorCounter: metrics.redisErrors,
            onInvalidation: { message in invalidation.heard(message, on: group.next()) },
            onResubscribed: {
                // Messages sent while the subscription was down are lost: what L1 holds may have
                // been invalidated elsewhere.
                let removed = invalidation.forgetAll()
                logger.warning("resubscribed to the invalidation channel; cleared the memory cache, which may have missed invalidations",
                               metadata: ["entries_removed": "\(removed)"])
            }
        )
    }

    /// Switches the Redis tier on, off or to new settings after a reload.
    private func replaceTier(with config: SidecacheConfiguration.Redis?) {
        let old = tier.withLockedValue { current -> RedisTier? in
            defer { current = config.map(makeTier) }
            return current
        }
        old?.shutdown()
    }

    /// Closes the Redis connections (at shutdown).
    public func shutdown() {
        sweeper.stop()
        sampler.stop()
        current.warmer?.stop()
        replaceTier(with: nil)
    }

    /// Purges every entry carrying `tag` here, in Redis and on every other instance.
    public func invalidate(tag: String, soft: Bool = false) -> EventLoopFuture<PurgeCount> {
        invalidation.invalidate(.tag(tag), soft: soft, on: group.next())
    }

    /// Purges every entry whose URL path is `path`, everywhere (see `invalidate(tag:)`).
    public func invalidate(path: String, soft: Bool = false) -> EventLoopFuture<PurgeCount> {
        invalidation.invalidate(.path(path), soft: soft, on: group.next())
    }

    /// Purges every entry whose URL path matches the glob or regex, everywhere.
    public func invalidate(pattern: PurgePattern, soft: Bool = false) -> EventLoopFuture<PurgeCount> {
        invalidation.invalidate(.pattern(pattern), soft: soft, on: group.next())
    }

    /// Purges everything, everywhere.
    public func invalidateAll(soft: Bool = false) -> EventLoopFuture<PurgeCount> {
        invalidation.invalidate(.all, soft: soft, on: group.next())
    }

    func now() -> CacheInstant { clock() }

    /// Counts a finished request in `/stats` and `/metrics`.
    func recordCompleted(_ r: ActiveRequest, finishedAt: NIODeadline) {
        r.tally.record(method: r.head.method, status: r.status, outcome: r.outcome)
        r.tally.totalTime.record(microseconds: (finishedAt - r.started).nanoseconds / 1000)
        if let upstream = r.upstreamMicroseconds {
            r.tally.upstreamTime.record(microseconds: upstream)
            metrics.recordUpstream(route: r.tally.route, microseconds: upstream)
        }
        if r.outcome == .hit || r.outcome == .stale, let key = r.key {
            hotKeys.record(key.value, atSecond: Int64(finishedAt.uptimeNanoseconds / 1_000_000_000))
        }
    }

    /// The snapshot new requests use.
    public var config: ConfigSnapshot { active.withLockedValue { $0.snapshot } }

    /// The snapshot and its routes' rate limiters and tallies, read together under one lock.
    var current: ActiveConfig { active.withLockedValue { $0 } }

    /// The circuit breaker and retry policy for requests starting now.
    var upstreamGuard: UpstreamGuard { guardBox.withLockedValue { $0 } }

    var accessLogEnabled: Bool { accessEnabled.load(ordering: .relaxed) }

    public var cacheStatistics: MemoryStore.Statistics { store.statistics }

    /// Loads the file again and swaps the snapshot in if it is valid. An invalid file leaves the
    /// running config untouched; every error is logged and returned.
    @discardableResult
    public func reload() -> Result<ConfigChanges, ConfigErrors> {
        let current = config
        let result = reloader.reload(current) { next in apply(next, replacing: current) }
        lastReloadBox.withLockedValue { $0 = ReloadRecord(at: Date(), result: result, version: config.version) }
        return result
    }

    /// The outcome of the last reload, for `/stats` and the dashboard.
    var lastReload: ReloadRecord? { lastReloadBox.withLockedValue { $0 } }

    /// Swaps in a valid snapshot: routes, limiters (kept where a route's limit is unchanged),
    /// tallies, the upstream guard (kept if unchanged), cache limits, the Redis tier, logging.
    private func apply(_ next: ConfigSnapshot, replacing current: ConfigSnapshot) {
        let stopped = active.withLockedValue { current -> Warmer? in
            // The warmer (its hot set, its counts) stays while the file keeps a warming section.
            var warmer = current.warmer
            var stopped: Warmer?
            switch (warmer, next.configuration.warming) {
            case (let kept?, let settings?): kept.update(settings)
            case (nil, let settings?):
                warmer = Warmer(settings, loop: group.next(), clock: monotonic)
                warmer?.attach(to: self)
            case (let old?, nil): (warmer, stopped) = (nil, old)
            case (nil, nil): break
            }
            current = ActiveConfig(snapshot: next, limiters: RouteLimiters(next, previous: current.limiters, clock: monotonic, logger: logger, metrics: metrics),
                                   tallies: RouteTallies(next, stats: stats), warmer: warmer)
            return stopped
        }
        stopped?.stop()
        guardBox.withLockedValue { current in
            if !current.isCurrent(for: next.configuration.upstream) {
                current = UpstreamGuard(upstream: next.configuration.upstream, clock: monotonic, logger: logger, metrics: metrics)
            }
        }
        store.updateLimits(next.configuration.cache.memory)
        if next.configuration.cache.redis != current.configuration.cache.redis { replaceTier(with: next.configuration.cache.redis) }
        accessEnabled.store(next.configuration.logging.access, ordering: .relaxed)
        levelBox.level = Logger.Level(rawValue: next.configuration.logging.level) ?? .info
    }
}

/// What a request takes from the runtime when it starts: the config snapshot and, by route, its
/// rate limiters and request tallies.
struct ActiveConfig: Sendable {
    let snapshot: ConfigSnapshot
    let limiters: RouteLimiters
    let tallies: RouteTallies
    /// Background fetching, when the config has a `warming` section.
    var warmer: Warmer? = nil
}
