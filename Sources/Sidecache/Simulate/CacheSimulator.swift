import HTTPCaching
import NIOCore
import NIOHTTP1
import SidecacheConfig

/// Replays logged requests offline through the memory store the server runs (its shards, its
/// eviction policy, its byte accounting of heads and bodies), so an operator can choose
/// `max_bytes` from their own traffic. Every stored entry stays fresh: the replay measures what
/// the memory holds, not lifetimes.
public struct CacheSimulator {
    public struct Outcome: Sendable, Equatable {
        public var requests = 0
        public var hits = 0
        public var bytes = 0
        public var bytesHit = 0

        public init(requests: Int = 0, hits: Int = 0, bytes: Int = 0, bytesHit: Int = 0) {
            self.requests = requests
            self.hits = hits
            self.bytes = bytes
            self.bytesHit = bytesHit
        }

        public var hitRatio: Double { requests == 0 ? 0 : Double(hits) / Double(requests) }
        public var byteHitRatio: Double { bytes == 0 ? 0 : Double(bytesHit) / Double(bytes) }
    }

    /// What the log holds, whatever the cache: distinct objects, their bytes, and how many were
    /// asked for once only.
    public struct Footprint: Sendable, Equatable {
        public var objects = 0
        public var bytes = 0
        public var oneTimeObjects = 0

        public init(objects: Int = 0, bytes: Int = 0, oneTimeObjects: Int = 0) {
            self.objects = objects
            self.bytes = bytes
            self.oneTimeObjects = oneTimeObjects
        }
    }

    /// The cache key of each request, or nil for one no route caches.
    private let keys: [CacheKey?]
    private let requests: [LoggedRequest]

    /// `snapshot`: key each request by its route as the server would (nil: by its target alone).
    public init(_ requests: [LoggedRequest], snapshot: ConfigSnapshot? = nil) {
        self.requests = requests
        var cache: [String: CacheKey?] = [:]
        self.keys = requests.map { request in
            if let known = cache[request.target] { return known }
            let (path, query) = CacheKeyPolicy.split(uri: request.target)
            let key: CacheKey?
            if let snapshot {
                if let route = snapshot.route(method: .GET, path: path), route.cacheEnabled {
                    key = route.keyPolicy.key(host: "", path: path, query: query, headers: [:])
                } else {
                    key = nil
                }
            } else {
                key = CacheKey(value: request.target, path: String(path))
            }
            cache[request.target] = key
            return key
        }
    }

    /// Requests that no route caches (with a config): left out of every ratio.
    public var uncached: Int { keys.reduce(0) { $0 + ($1 == nil ? 1 : 0) } }

    public var footprint: Footprint {
        var seen: [String: (count: Int, bytes: Int)] = [:]
        for (request, key) in zip(requests, keys) {
            guard let key else { continue }
            let old = seen[key.value] ?? (0, 0)
            seen[key.value] = (old.count + 1, max(old.bytes, request.bytes))
        }
        var f = Footprint()
        f.objects = seen.count
        for (_, v) in seen {
            f.bytes += v.bytes
            if v.count == 1 { f.oneTimeObjects += 1 }
        }
        return f
    }

    /// Replays every request against a store of `maxBytes` under `policy`: a hit is counted when the
    /// store has the key; a miss stores a response of the logged size (when it fits `maxObjectBytes`).
    /// `shardCount`: the server's (16) unless a test asks for one shard.
    public func run(maxBytes: Int, maxObjectBytes: Int, policy: EvictionPolicy, shardCount: Int = MemoryStore.defaultShardCount) -> Outcome {
        let store = MemoryStore(limits: .init(maxBytes: maxBytes, maxObjectBytes: maxObjectBytes, policy: policy), shardCount: shardCount)
        let now = CacheInstant(seconds: 1_800_000_000)
        let terms = StorageTerms(freshnessLifetime: .seconds(10 * 365 * 86_400), staleWhileRevalidate: .zero, staleIfError: .zero,
                                 revalidateAlways: false, mayServeStale: true)
        // One body shared by every entry (slices of it): the store counts each entry's bytes, the
        // replay does not need them to exist.
        let largest = min(maxObjectBytes, requests.map(\.bytes).max() ?? 0)
        let body = ByteBuffer(repeating: 0x78, count: max(0, largest))
        var outcome = Outcome()
        for (request, key) in zip(requests, keys) {
            guard let key else { continue }
            outcome.requests += 1
            outcome.bytes += request.bytes
            if store.lookup(key, requestHeaders: [:], now: now) != nil {
                outcome.hits += 1
                outcome.bytesHit += request.bytes
                continue
            }
            guard request.bytes <= largest, let slice = body.getSlice(at: body.readerIndex, length: request.bytes) else { continue }
            let entry = CachedResponse(status: .ok, headers: HTTPHeaders([("Content-Length", String(request.bytes))]), body: slice,
                                       requestTime: now, responseTime: now, terms: terms, varyNames: [], varyValues: [], tags: [])
            store.store(entry, for: key)
        }
        return outcome
    }
}
