import HTTPCaching
import NIOCore
import NIOPosix

/// Purges by URL, pattern, tag or everything: from this instance's memory cache at once (a walk of
/// the whole cache on the thread pool), from Redis, and through Redis from every other instance.
/// Each invalidation is numbered in the `InvalidationLog` first, so a fill under way that it
/// matches does not store after it.
final class InvalidationService: Sendable {
    typealias PurgeCount = ProxyRuntime.PurgeCount

    let store: MemoryStore
    /// Invalidations numbered as they happen, so a fill under way does not store what one removed.
    let log = InvalidationLog()
    private let metrics: SidecacheMetrics
    private let clock: @Sendable () -> CacheInstant
    private let tier: @Sendable () -> (any SharedCacheTier)?
    /// Re-warms the hot entries a purge started here removed or marked.
    private let warmer: @Sendable () -> Warmer?

    init(store: MemoryStore, metrics: SidecacheMetrics, clock: @escaping @Sendable () -> CacheInstant, tier: @escaping @Sendable () -> (any SharedCacheTier)?,
         warmer: @escaping @Sendable () -> Warmer? = { nil }) {
        self.store = store
        self.metrics = metrics
        self.clock = clock
        self.tier = tier
        self.warmer = warmer
    }

    /// Evicts from L1 (or with `soft`, marks stale), and does the same in L2 and every other
    /// instance's L1 through Redis when it is configured (best effort: with Redis down only this
    /// instance's L1 is changed). The future completes on `loop` once both are done, Redis within
    /// its timeout. With `rewarm`, the hot entries it matched on routes that re-warm are fetched
    /// again in the background once memory is done (a purge heard from another instance is that
    /// instance's to re-warm: with Redis its fetch lands in L2 for all).
    func invalidate(_ target: InvalidationMessage.Target, soft: Bool = false, rewarm: Bool = true,
                    on loop: any EventLoop) -> EventLoopFuture<PurgeCount> {
        invalidate([target], soft: soft, rewarm: rewarm, on: loop).map { $0.first ?? PurgeCount(memory: 0, redis: nil) }
    }

    /// Several targets of one purge (a write's invalidations, a list of tags): each as above, and
    /// the re-warming once for all of them, after the last is done in memory, so that no refetch
    /// starts between two of them (the second would keep it from being stored).
    func invalidate(_ targets: [InvalidationMessage.Target], soft: Bool = false, rewarm: Bool = true,
                    on loop: any EventLoop) -> EventLoopFuture<[PurgeCount]> {
        let now = clock()
        let tier = self.tier()
        var memories: [EventLoopFuture<Int>] = []
        var counts: [EventLoopFuture<PurgeCount>] = []
        for target in targets {
            metrics.recordPurge(kind: target.kind, soft: soft)
            let memory = invalidateMemory(target, soft: soft, now: now, on: loop)
            memories.append(memory)
            if let tier {
                let redis = tier.invalidate(target, soft: soft, now: now, on: loop).map(Optional.some).recover { _ in nil }
                counts.append(memory.and(redis).map { PurgeCount(memory: $0, redis: $1) })
            } else {
                counts.append(memory.map { PurgeCount(memory: $0, redis: nil) })
            }
        }
        if rewarm, let warmer = warmer() {
            EventLoopFuture.andAllComplete(memories, on: loop).whenComplete { _ in warmer.invalidated(targets, at: now) }
        }
        return EventLoopFuture.whenAllSucceed(counts, on: loop)
    }

    /// Another instance's invalidation, heard through Redis: this instance's memory only.
    func heard(_ message: InvalidationMessage, on loop: any EventLoop) {
        _ = invalidateMemory(message.target, soft: message.soft, now: clock(), on: loop)
    }

    /// The subscription was down: messages sent meanwhile are lost, so everything in memory goes.
    func forgetAll() -> Int {
        log.record(.all, soft: false)
        return store.removeAll()
    }

    /// A path or tag is applied at once; a walk of the whole cache runs on the thread pool so the
    /// event loops keep serving (they wait at most for one batch of keys on a shard's lock).
    private func invalidateMemory(_ target: InvalidationMessage.Target, soft: Bool, now: CacheInstant, on loop: any EventLoop) -> EventLoopFuture<Int> {
        log.record(target, soft: soft)
        let mode: MemoryStore.PurgeMode = soft ? .markStale(at: now) : .remove
        let store = self.store
        guard target.scansWholeCache else { return loop.makeSucceededFuture(store.invalidate(target, mode: mode)) }
        return NIOThreadPool.singleton.runIfActive(eventLoop: loop) { store.invalidate(target, mode: mode) }
    }
}

extension ProxyRuntime {
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
}
