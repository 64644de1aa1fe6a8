import HTTPCaching
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import SidecacheConfig
import Synchronization

/// Everything the request path shares across connections and event loops: the current config
/// snapshot, the cache, the coalescer, the upstream pools and the logs.
public final class ProxyRuntime: Sendable {
    /// The snapshot new requests use, and its routes' rate limiters and request tallies: swapped together.
    private let active: NIOLockedValueBox<ActiveConfig>
    private let guardBox: NIOLockedValueBox<UpstreamGuard>
    let store: MemoryStore
    let coalescer = FillCoalescer()
    /// Invalidations numbered as they happen, so a fill under way does not store what one removed.
    let invalidations = InvalidationLog()
    let pools: UpstreamPools
    let logger: Logger
    let levelBox: LogLevelBox
    let accessLog: AccessLog
    let requestIDs = RequestIDGenerator()
    private let accessEnabled: Synchronization.Atomic<Bool>
    private let loadLock = NIOLock()
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
    private let sweeper = NIOLockedValueBox<RepeatedTask?>(nil)

    /// `clock` gives the wall-clock time for RFC 9111 arithmetic, `monotonic` the time of the
    /// breaker, the retry budget and the rate limits; tests pass manual ones.
    public init(snapshot: ConfigSnapshot, group: any EventLoopGroup, logger: Logger, logSink: LogSink, levelBox: LogLevelBox,
                clock: @escaping @Sendable () -> CacheInstant = { CacheInstant.now() }, monotonic: MonotonicClock = .system) {
        self.clock = clock
        self.monotonic = monotonic
        self.active = NIOLockedValueBox(ActiveConfig(snapshot: snapshot, limiters: RouteLimiters(snapshot, previous: nil, clock: monotonic, logger: logger, metrics: metrics),
                                                     tallies: RouteTallies(snapshot, stats: stats)))
        self.guardBox = NIOLockedValueBox(UpstreamGuard(upstream: snapshot.configuration.upstream, clock: monotonic, logger: logger, metrics: metrics))
        self.store = MemoryStore(limits: snapshot.configuration.cache.memory)
        self.pools = UpstreamPools(group: group)
        self.logger = logger
        self.levelBox = levelBox
        self.accessLog = AccessLog(sink: logSink)
        self.accessEnabled = Synchronization.Atomic(snapshot.configuration.logging.access)
        self.group = group
        levelBox.level = Logger.Level(rawValue: snapshot.configuration.logging.level) ?? .info
        if let redis = snapshot.configuration.cache.redis { tier.withLockedValue { $0 = makeTier(redis) } }
        // Rate-limit keys back to a full burst are forgotten every 10 s.
        let task = group.next().scheduleRepeatedTask(initialDelay: .seconds(10), delay: .seconds(10)) { [weak self] _ in
            guard let self else { return }
            let now = self.monotonic.nanoseconds()
            for limiter in self.current.limiters.all { limiter.local.removeIdle(now: now) }
        }
        sweeper.withLockedValue { $0 = task }
    }

    /// The Redis tier when one is configured.
    var redisTier: RedisTier? { tier.withLockedValue { $0 } }

    public struct RedisStatus: Sendable, Equatable {
        /// At least one command connection is up.
        public var connected: Bool
        /// The invalidation channel is subscribed.
        public var subscribed: Bool
        /// Commands that failed or timed out since the tier started (each fell back to L1 and the upstream).
        public var errors: Int
    }

    /// Nil when no Redis is configured.
    public var redisStatus: RedisStatus? {
        redisTier.map { RedisStatus(connected: $0.connected, subscribed: $0.subscribed, errors: $0.errorCount) }
    }

    private func makeTier(_ config: SidecacheConfiguration.Redis) -> RedisTier {
        let store = self.store
        let log = self.invalidations
        let logger = self.logger
        let group = self.group
        let clock = self.clock
        return RedisTier(
            config: config, group: group, logger: logger, instanceID: instanceID, errorCounter: metrics.redisErrors,
            onInvalidation: { message in
                _ = Self.invalidateMemory(store, log, message.target, soft: message.soft, now: clock(), on: group.next())
            },
            onResubscribed: {
                // Messages sent while the subscription was down are lost: what L1 holds may have
                // been invalidated elsewhere.
                log.record(.all, soft: false)
                let removed = store.removeAll()
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
        sweeper.withLockedValue { $0?.cancel() }
        replaceTier(with: nil)
    }

    /// What a purge removed: entries from this process's memory, and variants from Redis (nil
    /// without Redis, or when Redis failed; other instances clear theirs when they hear of it).
    public struct PurgeCount: Sendable, Equatable {
        public var memory: Int
        public var redis: Int?

        public init(memory: Int, redis: Int?) {
            self.memory = memory
            self.redis = redis
        }

        /// The sum of several purges; Redis's part is unknown if any of them failed there.
        init(adding counts: [PurgeCount]) {
            memory = counts.reduce(0) { $0 + $1.memory }
            redis = counts.allSatisfy { $0.redis != nil } ? counts.reduce(0) { $0 + ($1.redis ?? 0) } : nil
        }
    }

    /// Purges every entry carrying `tag` here, in Redis and on every other instance.
    public func invalidate(tag: String, soft: Bool = false) -> EventLoopFuture<PurgeCount> {
        invalidate(.tag(tag), soft: soft, on: group.next())
    }

    /// Purges every entry whose URL path is `path`, everywhere (see `invalidate(tag:)`).
    public func invalidate(path: String, soft: Bool = false) -> EventLoopFuture<PurgeCount> {
        invalidate(.path(path), soft: soft, on: group.next())
    }

    /// Purges every entry whose URL path matches the glob or regex, everywhere.
    public func invalidate(pattern: PurgePattern, soft: Bool = false) -> EventLoopFuture<PurgeCount> {
        invalidate(.pattern(pattern), soft: soft, on: group.next())
    }

    /// Purges everything, everywhere.
    public func invalidateAll(soft: Bool = false) -> EventLoopFuture<PurgeCount> {
        invalidate(.all, soft: soft, on: group.next())
    }

    /// Evicts from L1 (or with `soft`, marks stale), and does the same in L2 and every other
    /// instance's L1 through Redis when it is configured (best effort: with Redis down only this
    /// instance's L1 is changed). The future completes on `loop` once both are done, Redis within
    /// its timeout.
    func invalidate(_ target: InvalidationMessage.Target, soft: Bool = false, on loop: any EventLoop) -> EventLoopFuture<PurgeCount> {
        let now = now()
        metrics.recordPurge(kind: target.kind, soft: soft)
        let memory = Self.invalidateMemory(store, invalidations, target, soft: soft, now: now, on: loop)
        guard let tier = redisTier else { return memory.map { PurgeCount(memory: $0, redis: nil) } }
        let redis = tier.invalidate(target, soft: soft, now: now, on: loop).map(Optional.some).recover { _ in nil }
        return memory.and(redis).map { PurgeCount(memory: $0, redis: $1) }
    }

    /// A path or tag is applied at once; a walk of the whole cache runs on the thread pool so the
    /// event loops keep serving (they wait at most for one batch of keys on a shard's lock). The
    /// invalidation is logged first, so fills under way that it matches do not store after it.
    private static func invalidateMemory(_ store: MemoryStore, _ log: InvalidationLog, _ target: InvalidationMessage.Target, soft: Bool,
                                         now: CacheInstant, on loop: any EventLoop) -> EventLoopFuture<Int> {
        log.record(target, soft: soft)
        let mode: MemoryStore.PurgeMode = soft ? .markStale(at: now) : .remove
        guard target.scansWholeCache else { return loop.makeSucceededFuture(store.invalidate(target, mode: mode)) }
        return NIOThreadPool.singleton.runIfActive(eventLoop: loop) { store.invalidate(target, mode: mode) }
    }

    func now() -> CacheInstant { clock() }

    /// Counts a finished request in `/stats` and `/metrics`.
    func recordCompleted(_ r: ActiveRequest, finishedAt: NIODeadline) {
        r.tally.record(method: r.head.method, status: r.status, outcome: r.outcome)
        if let upstream = r.upstreamMicroseconds { metrics.recordUpstream(route: r.tally.route, microseconds: upstream) }
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
        loadLock.withLock {
            let current = config
            let next: ConfigSnapshot
            do throws(ConfigErrors) {
                next = try ConfigLoader.load(path: current.sourcePath, version: current.version + 1)
            } catch {
                logger.error("config reload failed; the previous config stays active", metadata: [
                    "file": "\(current.sourcePath)", "errors": "\(error.errors.count)", "version": "\(current.version)",
                ])
                for e in error.errors {
                    logger.error("config error", metadata: ["file": "\(current.sourcePath)", "path": "\(e.path)", "line": "\(e.line.map(String.init) ?? "-")", "error": "\(e.message)"])
                }
                metrics.recordReload(succeeded: false)
                return .failure(error)
            }
            let changes = ConfigChanges(from: current.configuration, to: next.configuration)
            active.withLockedValue {
                $0 = ActiveConfig(snapshot: next, limiters: RouteLimiters(next, previous: $0.limiters, clock: monotonic, logger: logger, metrics: metrics),
                                  tallies: RouteTallies(next, stats: stats))
            }
            guardBox.withLockedValue { current in
                if !current.isCurrent(for: next.configuration.upstream) {
                    current = UpstreamGuard(upstream: next.configuration.upstream, clock: monotonic, logger: logger, metrics: metrics)
                }
            }
            store.updateLimits(next.configuration.cache.memory)
            if next.configuration.cache.redis != current.configuration.cache.redis { replaceTier(with: next.configuration.cache.redis) }
            accessEnabled.store(next.configuration.logging.access, ordering: .relaxed)
            levelBox.level = Logger.Level(rawValue: next.configuration.logging.level) ?? .info
            logger.notice("config reloaded: \(changes)", metadata: ["version": "\(next.version)", "routes": "\(next.routes.count)"])
            metrics.recordReload(succeeded: true)
            return .success(changes)
        }
    }
}

/// What a request takes from the runtime when it starts: the config snapshot and, by route, its
/// rate limiters and request tallies.
struct ActiveConfig: Sendable {
    let snapshot: ConfigSnapshot
    let limiters: RouteLimiters
    let tallies: RouteTallies
}
