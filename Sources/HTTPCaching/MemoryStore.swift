import NIOConcurrencyHelpers
import NIOHTTP1

/// The L1 cache: byte-bounded in memory, evicting by S3-FIFO (or LRU), with a tag index for purges.
///
/// Split into shards, each under its own lock, so the event loops rarely contend; a lock is held only
/// for a dictionary operation, never across I/O. Every variant of one primary key (Vary, §4.1) lives
/// in one slot so they are found, counted and evicted together.
public final class MemoryStore: Sendable {
    /// What a purge does with the entries it finds.
    public enum PurgeMode: Sendable, Equatable {
        /// Delete them.
        case remove
        /// Soft purge: make them stale as of this instant, so stale-while-revalidate and
        /// stale-if-error can still serve them while they are refreshed.
        case markStale(at: CacheInstant)
    }

    public struct Limits: Sendable, Equatable {
        public var maxBytes: Int
        public var maxObjectBytes: Int
        public var policy: EvictionPolicy
        public init(maxBytes: Int, maxObjectBytes: Int, policy: EvictionPolicy = .s3fifo) {
            self.maxBytes = maxBytes
            self.maxObjectBytes = maxObjectBytes
            self.policy = policy
        }

        /// A config's defaults: 256 MiB, objects up to 8 MiB, S3-FIFO.
        public static let `default` = Limits(maxBytes: 256 << 20, maxObjectBytes: 8 << 20)
    }

    public struct Statistics: Sendable, Equatable {
        public var entries = 0
        public var bytes = 0
        public var evictions = 0
        /// S3-FIFO's queues (under LRU everything is in main): primary keys and bytes in each.
        public var smallKeys = 0
        public var smallBytes = 0
        public var mainKeys = 0
        public var mainBytes = 0
        /// Hashes of keys evicted from the small queue lately.
        public var ghostKeys = 0
        /// Keys that moved from the small queue to main, and new keys found in the ghost queue.
        public var promotions = 0
        public var ghostHits = 0
        /// Primary keys evicted from each queue.
        public var evictedFromSmall = 0
        public var evictedFromMain = 0
    }

    /// At most this many variants are kept per primary key; a Vary over a high-cardinality header
    /// must not turn one slot into an unbounded list.
    public static let maxVariantsPerKey = 32

    private struct VariantSet: Sendable {
        var variants: [CachedResponse]
        /// The path the key is indexed under, kept: derived again from the key it could differ
        /// (a Host holding a "/"), and the index entry would never be removed.
        var path: String
        /// The key is held by the LRU table and by the path index (and per tag by the tag index),
        /// each with a hash table slot.
        var keyBytes: Int
        var cost: Int { variants.reduce(keyBytes) { $0 + $1.cost } }
    }

    private static func keyBytes(_ key: CacheKey) -> Int {
        3 * (key.value.utf8.count + 64) + key.path.utf8.count + 128
    }

    private struct Shard: Sendable {
        var table: EvictionTable<String, VariantSet>
        var bytes = 0
        var entries = 0
        var evictions = 0
        var maxBytes: Int
        /// tag -> primary keys in this shard carrying it.
        var tagIndex: [String: KeySet] = [:]
        /// URL path -> primary keys in this shard for it, so invalidation by URL finds every host,
        /// query and variant without scanning, and a pattern purge matches each path once.
        var pathIndex: [String: KeySet] = [:]

        mutating func index(_ key: String, _ entry: CachedResponse, path: String) {
            for tag in entry.tags { tagIndex.insert(key, under: tag) }
            pathIndex.insert(key, under: path)
        }

        mutating func unindex(_ key: String, _ set: VariantSet) {
            for entry in set.variants {
                for tag in entry.tags { tagIndex.remove(key, under: tag) }
            }
            pathIndex.remove(key, under: set.path)
        }

        /// Variants replaced or dropped from a set that stays: the tags only they carried stop
        /// pointing at the key.
        mutating func unindexTags(of dropped: [CachedResponse], keeping kept: [CachedResponse], key: String) {
            for entry in dropped {
                for tag in entry.tags where !kept.contains(where: { $0.tags.contains(tag) }) {
                    tagIndex.remove(key, under: tag)
                }
            }
        }

        @discardableResult
        mutating func removeKey(_ key: String) -> Int {
            takeKey(key)?.variants.count ?? 0
        }

        /// Removes the key and hands its variants back, so the caller can free them after
        /// releasing the lock.
        mutating func takeKey(_ key: String) -> VariantSet? {
            guard let set = table.remove(key) else { return nil }
            bytes -= set.cost
            entries -= set.variants.count
            unindex(key, set)
            return set
        }

        /// Soft purge: every variant under the key becomes stale at `now` (those already stale stay
        /// as they are), keeping its place in the LRU order. Returns the variants it holds.
        mutating func expireKey(_ key: String, at now: CacheInstant) -> Int {
            guard var set = table.peek(key) else { return 0 }
            set.variants = set.variants.map { $0.expired(at: now) }
            table.replace(key, set, cost: set.cost)
            return set.variants.count
        }

        /// Applies a purge to the keys, moving removed entries into `freed`; returns the variants affected.
        mutating func apply<Keys: Sequence<String>>(_ mode: PurgeMode, to keys: Keys, freed: inout [VariantSet]) -> Int {
            var affected = 0
            for key in keys {
                switch mode {
                case .remove:
                    guard let set = takeKey(key) else { continue }
                    affected += set.variants.count
                    freed.append(set)
                case .markStale(let now):
                    affected += expireKey(key, at: now)
                }
            }
            return affected
        }

        mutating func evict(toFit limit: Int) {
            while bytes > limit, let (key, set) = table.removeVictim() {
                bytes -= set.cost
                entries -= set.variants.count
                evictions += set.variants.count
                unindex(key, set)
            }
        }
    }

    private let shards: [NIOLockedValueBox<Shard>]
    private let limits: NIOLockedValueBox<Limits>

    /// The shards a server's store has.
    public static let defaultShardCount = 16

    public init(limits: Limits, shardCount: Int = MemoryStore.defaultShardCount) {
        let count = max(1, shardCount)
        self.limits = NIOLockedValueBox(limits)
        let perShard = max(1, limits.maxBytes / count)
        self.shards = (0..<count).map { _ in
            NIOLockedValueBox(Shard(table: EvictionTable(policy: limits.policy, capacity: perShard), maxBytes: perShard))
        }
    }

    public var currentLimits: Limits { limits.withLockedValue { $0 } }

    /// Applies new limits (a config reload); shrinking evicts at once, the rest of the cache survives.
    public func updateLimits(_ newLimits: Limits) {
        limits.withLockedValue { $0 = newLimits }
        let perShard = max(1, newLimits.maxBytes / shards.count)
        for shard in shards {
            shard.withLockedValue { s in
                s.maxBytes = perShard
                s.table.capacity = perShard
                s.table.setPolicy(newLimits.policy)
                s.evict(toFit: perShard)
            }
        }
    }

    private func shard(for key: String) -> NIOLockedValueBox<Shard> {
        var hasher = Hasher()
        hasher.combine(key)
        let h = hasher.finalize()
        return shards[Int(UInt(bitPattern: h) % UInt(shards.count))]
    }

    /// The stored variant matching the request, marked as recently used. Entries that can no longer
    /// serve any purpose are dropped on the way.
    public func lookup(_ key: CacheKey, requestHeaders: HTTPHeaders, now: CacheInstant) -> CachedResponse? {
        shard(for: key.value).withLockedValue { s -> CachedResponse? in
            guard var set = s.table.get(key.value) else { return nil }
            guard let i = set.variants.firstIndex(where: { $0.matchesVariant(of: requestHeaders) }) else { return nil }
            let entry = set.variants[i]
            if entry.isUseful(at: now) { return entry }
            set.variants.remove(at: i)
            s.bytes -= entry.cost
            s.entries -= 1
            if set.variants.isEmpty {
                s.bytes -= set.keyBytes
                s.table.remove(key.value)
                s.unindex(key.value, VariantSet(variants: [entry], path: set.path, keyBytes: 0))
            } else {
                s.table.set(key.value, set, cost: set.cost)
            }
            return nil
        }
    }

    /// Stores a response, replacing the variant with the same Vary values. Returns false when the
    /// entry is larger than `maxObjectBytes` or than a shard (see `fits`); it is then not stored.
    @discardableResult
    public func store(_ entry: CachedResponse, for key: CacheKey) -> Bool {
        guard Self.fits(entry, extra: Self.keyBytes(key), limits: currentLimits, shards: shards.count) else { return false }
        shard(for: key.value).withLockedValue { s in
            let existing = s.table.peek(key.value)
            var set = existing ?? VariantSet(variants: [], path: key.path, keyBytes: Self.keyBytes(key))
            let before = existing?.cost ?? 0
            let beforeCount = set.variants.count
            // A key holds one variant per Vary values: the one this entry replaces, if any.
            var dropped: [CachedResponse] = []
            if let i = set.variants.firstIndex(where: { $0.varyNames == entry.varyNames && $0.varyValues == entry.varyValues }) {
                dropped.append(set.variants.remove(at: i))
            }
            set.variants.append(entry)
            if set.variants.count > Self.maxVariantsPerKey {
                let excess = set.variants.count - Self.maxVariantsPerKey
                dropped += set.variants.prefix(excess)
                set.variants.removeFirst(excess)
            }
            if !dropped.isEmpty { s.unindexTags(of: dropped, keeping: set.variants, key: key.value) }
            s.bytes += set.cost - before
            s.entries += set.variants.count - beforeCount
            s.table.set(key.value, set, cost: set.cost)
            s.index(key.value, entry, path: key.path)
            s.evict(toFit: s.maxBytes)
        }
        return true
    }

    /// Whether the entry is small enough to be stored: `maxObjectBytes` (heads aside), and no
    /// more than one shard holds. Each shard has 1/16 of `maxBytes`; an entry larger than that
    /// could not stay, and storing it first pushed out everything else in its shard. (With the
    /// defaults, 256 MiB and 8 MiB objects, a shard holds 16 MiB and this never bites.)
    public func fits(_ entry: CachedResponse) -> Bool {
        Self.fits(entry, extra: 0, limits: currentLimits, shards: shards.count)
    }

    private static func fits(_ entry: CachedResponse, extra: Int, limits: Limits, shards: Int) -> Bool {
        entry.cost <= limits.maxObjectBytes + 4096 && entry.body.readableBytes <= limits.maxObjectBytes
            && entry.cost + extra <= limits.maxBytes / shards
    }

    /// Puts `new` in place of `old` if `old` (this very object) is still stored under the key: an
    /// entry purged, soft-purged or refreshed meanwhile is not brought back. Returns whether it was.
    @discardableResult
    public func replace(_ old: CachedResponse, with new: CachedResponse, for key: CacheKey) -> Bool {
        guard fits(new) else { return false }
        return shard(for: key.value).withLockedValue { s in
            guard var set = s.table.peek(key.value), let i = set.variants.firstIndex(where: { $0 === old }) else { return false }
            set.variants[i] = new
            s.bytes += new.cost - old.cost
            s.table.replace(key.value, set, cost: set.cost)
            s.evict(toFit: s.maxBytes)
            return true
        }
    }

    /// Removes every variant stored under the key.
    @discardableResult
    public func remove(_ key: CacheKey) -> Int {
        shard(for: key.value).withLockedValue { $0.removeKey(key.value) }
    }

    /// Keys handled per lock hold by a purge: a big purge never keeps a shard from the event loops
    /// for longer than one batch takes.
    public static let purgeBatch = 256

    /// Removes (or with `.markStale`, expires) every entry whose URL path is `path`: all hosts,
    /// queries, key headers and variants. Returns the variants affected.
    @discardableResult
    public func invalidate(path: String, mode: PurgeMode = .remove) -> Int {
        purge(mode) { s in s.pathIndex[path]?.keys ?? [] }
    }

    /// Removes (or expires) every entry carrying the tag.
    @discardableResult
    public func invalidate(tag: String, mode: PurgeMode = .remove) -> Int {
        purge(mode) { s in s.tagIndex[tag]?.keys ?? [] }
    }

    /// Removes (or expires) every entry whose URL path satisfies `matches` (a glob or regex purge).
    /// Meant for a thread of its own, not an event loop: it walks every path in the cache.
    @discardableResult
    public func invalidate(pathsMatching matches: (String) -> Bool, mode: PurgeMode = .remove) -> Int {
        purge(mode) { s in
            // The paths are tested outside the lock; their keys are looked up again batch by batch.
            Array(s.pathIndex.keys)
        } select: { paths in
            paths.filter(matches)
        } keysOf: { s, path in
            s.pathIndex[path]?.keys ?? []
        }
    }

    /// Removes (or expires) everything.
    @discardableResult
    public func invalidateAll(mode: PurgeMode = .remove) -> Int {
        guard case .markStale = mode else { return removeAll() }
        return purge(mode) { s in s.table.keys }
    }

    /// Purges the keys each shard lists: the list is taken under the shard's lock, then handled
    /// `purgeBatch` keys per lock hold, and removed entries are freed after the lock is released.
    private func purge(_ mode: PurgeMode, keys: (Shard) -> [String]) -> Int {
        purge(mode, list: keys, select: { $0 }, keysOf: { _, key in CollectionOfOne(key) })
    }

    /// The general form: `list` names items under the lock, `select` filters them outside it, and
    /// `keysOf` turns each selected item into primary keys under the lock of its batch.
    private func purge<Keys: Sequence<String>>(_ mode: PurgeMode, list: (Shard) -> [String], select: ([String]) -> [String],
                                               keysOf: (Shard, String) -> Keys) -> Int {
        var affected = 0
        for shard in shards {
            let items = select(shard.withLockedValue { list($0) })
            var start = 0
            while start < items.count {
                let slice = items[start..<min(start + Self.purgeBatch, items.count)]
                start += slice.count
                var freed: [VariantSet] = []
                affected += shard.withLockedValue { s in
                    var n = 0
                    for item in slice { n += s.apply(mode, to: keysOf(s, item), freed: &freed) }
                    return n
                }
                freed.removeAll()  // the entries' memory goes back here, outside the lock
            }
        }
        return affected
    }

    @discardableResult
    public func removeAll() -> Int {
        var removed = 0
        for shard in shards {
            removed += shard.withLockedValue { s in
                let n = s.entries
                s.table.removeAll()
                s.tagIndex.removeAll()
                s.pathIndex.removeAll()
                s.bytes = 0
                s.entries = 0
                return n
            }
        }
        return removed
    }

    public var statistics: Statistics {
        var total = Statistics()
        for shard in shards {
            shard.withLockedValue { s in
                total.entries += s.entries
                total.bytes += s.bytes
                total.evictions += s.evictions
                let (smallKeys, smallBytes) = s.table.smallQueue
                let (mainKeys, mainBytes) = s.table.mainQueue
                total.smallKeys += smallKeys
                total.smallBytes += smallBytes
                total.mainKeys += mainKeys
                total.mainBytes += mainBytes
                total.ghostKeys += s.table.ghostEntries
                let counters = s.table.counters
                total.promotions += counters.promotions
                total.ghostHits += counters.ghostHits
                total.evictedFromSmall += counters.evictedFromSmall
                total.evictedFromMain += counters.evictedFromMain
            }
        }
        return total
    }
}
