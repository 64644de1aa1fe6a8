import HTTPCaching
import NIOConcurrencyHelpers

/// Request counts per route since start, for `/stats` and `/metrics`: one `RequestTally` per route
/// name, so counts survive reloads that keep the name.
final class TrafficStats: Sendable {
    /// One route's counts per cache outcome: one slot per `CacheOutcome`.
    struct Counts: Sendable, Equatable {
        var byOutcome = [Int](repeating: 0, count: CacheOutcome.allCases.count)

        subscript(_ outcome: CacheOutcome) -> Int { byOutcome[outcome.index] }

        var requests: Int { byOutcome.reduce(0, +) }

        /// Requests answered from a stored entry (fresh or stale) among those that looked in the
        /// cache; nil before any did.
        var hitRatio: Double? {
            let served = self[.hit] + self[.stale]
            let lookups = served + self[.miss] + self[.revalidated] + self[.coalesced]
            return lookups == 0 ? nil : Double(served) / Double(lookups)
        }

        static func + (a: Counts, b: Counts) -> Counts {
            Counts(byOutcome: zip(a.byOutcome, b.byOutcome).map { $0 + $1 })
        }
    }

    private let tallies = NIOLockedValueBox<[String: RequestTally]>([:])

    /// The name used for requests that matched no route.
    static let noRoute = "-"

    /// The tally of the route named `route`, made on first use and kept.
    func tally(for route: String) -> RequestTally {
        tallies.withLockedValue { table in
            if let existing = table[route] { return existing }
            let made = RequestTally(route: route)
            table[route] = made
            return made
        }
    }

    var all: [RequestTally] { tallies.withLockedValue { Array($0.values) } }

    /// Counts per outcome of every route that has served a request.
    var perRoute: [String: Counts] {
        var result: [String: Counts] = [:]
        for tally in all {
            let counts = tally.byOutcome
            if counts.requests > 0 { result[tally.route] = counts }
        }
        return result
    }
}

extension CacheOutcome {
    /// Position in `allCases`, for arrays indexed by outcome.
    var index: Int {
        switch self {
        case .hit: 0
        case .miss: 1
        case .stale: 2
        case .revalidated: 3
        case .coalesced: 4
        case .bypass: 5
        case .local: 6
        }
    }
}

/// The keys served most from the cache in the last minute, for `/stats`.
///
/// Hits are counted in 10-second buckets, sharded by key so the event loops rarely meet on a
/// lock; each shard tracks at most `keysPerBucket` keys per bucket, so a scan over millions of
/// distinct URLs cannot grow it without bound (keys beyond that in one bucket go uncounted).
final class HotKeys: Sendable {
    static let bucketSeconds: Int64 = 10
    static let buckets = 6
    static let keysPerBucket = 4096

    private struct Shard {
        /// (bucket number, hits per key), newest last.
        var buckets: [(number: Int64, hits: [HashedKey: Int])] = []
    }

    private let shards: [NIOLockedValueBox<Shard>]

    init(shardCount: Int = 16) {
        shards = (0..<max(1, shardCount)).map { _ in NIOLockedValueBox(Shard()) }
    }

    /// Counts a hit on `key` at `second` (any monotonic clock in seconds). The key is hashed
    /// once, for its shard and its bucket's table alike: hashed for each and compared as a
    /// string, the count took 7.7% of a hit's user time on 10,000 keys, and 4% so.
    func record(_ key: String, atSecond second: Int64) {
        let bucket = second / Self.bucketSeconds
        let hashed = HashedKey(key)
        let shard = shards[Int(UInt(bitPattern: hashed.hash) % UInt(shards.count))]
        shard.withLockedValue { s in
            let i: Int
            if let found = s.buckets.lastIndex(where: { $0.number == bucket }) {
                i = found
            } else {
                s.buckets.removeAll { $0.number <= bucket - Int64(Self.buckets) }
                s.buckets.append((bucket, [:]))
                i = s.buckets.count - 1
            }
            // A key already counted (the common case of a hot key) is looked up once, not read and written.
            if let at = s.buckets[i].hits.index(forKey: hashed) {
                s.buckets[i].hits.values[at] += 1
            } else if s.buckets[i].hits.count < Self.keysPerBucket {
                s.buckets[i].hits[hashed] = 1
            }
        }
    }

    /// The `limit` keys with most hits in the last minute before `second`, most first.
    func top(_ limit: Int, atSecond second: Int64) -> [(key: String, hits: Int)] {
        let oldest = second / Self.bucketSeconds - Int64(Self.buckets) + 1
        var totals: [String: Int] = [:]
        for shard in shards {
            shard.withLockedValue { s in
                for bucket in s.buckets where bucket.number >= oldest {
                    for (key, hits) in bucket.hits { totals[key.name, default: 0] += hits }
                }
            }
        }
        return totals.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
            .prefix(limit).map { (key: $0.key, hits: $0.value) }
    }
}
