import NIOConcurrencyHelpers
import NIOHTTP1

/// The L1 cache: byte-bounded LRU in memory, with a tag index for purges.
///
/// Split into shards, each under its own lock, so the event loops rarely contend; a lock is held only
/// for a dictionary operation, never across I/O. Every variant of one primary key (Vary, §4.1) lives
/// in one slot so they are found, counted and evicted together.
public final class MemoryStore: Sendable {
    public struct Limits: Sendable, Equatable {
        public var maxBytes: Int
        public var maxObjectBytes: Int
        public init(maxBytes: Int, maxObjectBytes: Int) {
            self.maxBytes = maxBytes
            self.maxObjectBytes = maxObjectBytes
        }
    }

    public struct Statistics: Sendable, Equatable {
        public var entries = 0
        public var bytes = 0
        public var evictions = 0
    }

    /// At most this many variants are kept per primary key; a Vary over a high-cardinality header
    /// must not turn one slot into an unbounded list.
    public static let maxVariantsPerKey = 32

    private struct VariantSet: Sendable {
        var variants: [CachedResponse]
        /// The key is held by the LRU table and by the path index (and per tag by the tag index),
        /// each with a hash table slot.
        var keyBytes: Int
        var cost: Int { variants.reduce(keyBytes) { $0 + $1.cost } }
    }

    private static func keyBytes(_ key: CacheKey) -> Int {
        3 * (key.value.utf8.count + 64) + key.path.utf8.count + 128
    }

    private struct Shard: Sendable {
        var table = LRUTable<String, VariantSet>()
        var bytes = 0
        var entries = 0
        var evictions = 0
        var maxBytes: Int
        /// tag -> primary keys in this shard carrying it. Paths are indexed here too (with a prefix
        /// no tag can have), so invalidation by URL finds every variant without scanning.
        var tagIndex: [String: Set<String>] = [:]

        mutating func index(_ key: String, _ entry: CachedResponse, path: String) {
            for tag in entry.tags { tagIndex[tag, default: []].insert(key) }
            tagIndex[MemoryStore.pathTag(path), default: []].insert(key)
        }

        mutating func unindex(_ key: String, _ set: VariantSet) {
            for entry in set.variants {
                for tag in entry.tags { drop(key, fromTag: tag) }
            }
            if let path = MemoryStore.pathOf(key: key) { drop(key, fromTag: MemoryStore.pathTag(path)) }
        }

        private mutating func drop(_ key: String, fromTag tag: String) {
            guard var keys = tagIndex[tag] else { return }
            keys.remove(key)
            tagIndex[tag] = keys.isEmpty ? nil : keys
        }

        @discardableResult
        mutating func removeKey(_ key: String) -> Int {
            guard let set = table.remove(key) else { return 0 }
            bytes -= set.cost
            entries -= set.variants.count
            unindex(key, set)
            return set.variants.count
        }

        mutating func evict(toFit limit: Int) {
            while bytes > limit, let (key, set) = table.removeOldest() {
                bytes -= set.cost
                entries -= set.variants.count
                evictions += set.variants.count
                unindex(key, set)
            }
        }
    }

    private let shards: [NIOLockedValueBox<Shard>]
    private let limits: NIOLockedValueBox<Limits>

    public init(limits: Limits, shardCount: Int = 16) {
        let count = max(1, shardCount)
        self.limits = NIOLockedValueBox(limits)
        self.shards = (0..<count).map { _ in NIOLockedValueBox(Shard(maxBytes: max(1, limits.maxBytes / count))) }
    }

    public var currentLimits: Limits { limits.withLockedValue { $0 } }

    /// Applies new limits (a config reload); shrinking evicts at once, the rest of the cache survives.
    public func updateLimits(_ newLimits: Limits) {
        limits.withLockedValue { $0 = newLimits }
        let perShard = max(1, newLimits.maxBytes / shards.count)
        for shard in shards {
            shard.withLockedValue { s in
                s.maxBytes = perShard
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
                s.unindex(key.value, VariantSet(variants: [entry], keyBytes: 0))
            } else {
                s.table.set(key.value, set)
            }
            return nil
        }
    }

    /// Stores a response, replacing the variant with the same Vary values. Returns false when the
    /// entry is larger than `maxObjectBytes` (it is then not stored).
    @discardableResult
    public func store(_ entry: CachedResponse, for key: CacheKey) -> Bool {
        let limits = currentLimits
        guard entry.cost <= limits.maxObjectBytes + 4096, entry.body.readableBytes <= limits.maxObjectBytes else { return false }
        shard(for: key.value).withLockedValue { s in
            let existing = s.table.peek(key.value)
            var set = existing ?? VariantSet(variants: [], keyBytes: Self.keyBytes(key))
            let before = existing?.cost ?? 0
            let beforeCount = set.variants.count
            set.variants.removeAll { $0.varyNames == entry.varyNames && $0.varyValues == entry.varyValues }
            set.variants.append(entry)
            if set.variants.count > Self.maxVariantsPerKey { set.variants.removeFirst(set.variants.count - Self.maxVariantsPerKey) }
            s.bytes += set.cost - before
            s.entries += set.variants.count - beforeCount
            s.table.set(key.value, set)
            s.index(key.value, entry, path: key.path)
            s.evict(toFit: s.maxBytes)
        }
        return true
    }

    /// Removes every variant stored under the key.
    @discardableResult
    public func remove(_ key: CacheKey) -> Int {
        shard(for: key.value).withLockedValue { $0.removeKey(key.value) }
    }

    /// Removes every entry whose URL path is `path` (all hosts, queries, key headers and variants).
    @discardableResult
    public func invalidate(path: String) -> Int {
        invalidate(tag: Self.pathTag(path))
    }

    /// Removes every entry carrying the tag.
    @discardableResult
    public func invalidate(tag: String) -> Int {
        var removed = 0
        for shard in shards {
            removed += shard.withLockedValue { s in
                guard let keys = s.tagIndex[tag] else { return 0 }
                return keys.reduce(0) { $0 + s.removeKey($1) }
            }
        }
        return removed
    }

    @discardableResult
    public func removeAll() -> Int {
        var removed = 0
        for shard in shards {
            removed += shard.withLockedValue { s in
                let n = s.entries
                s.table.removeAll()
                s.tagIndex.removeAll()
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
            }
        }
        return total
    }

    // The primary key is "host" + path [+ "?" query] [+ "\0" headers]; the path index needs the path back.
    static func pathTag(_ path: String) -> String { "\u{1}path:" + path }

    static func pathOf(key: String) -> String? {
        guard let slash = key.firstIndex(of: "/") else { return nil }
        let rest = key[slash...]
        let end = rest.firstIndex(where: { $0 == "?" || $0 == "\u{0}" }) ?? rest.endIndex
        return String(rest[..<end])
    }
}
