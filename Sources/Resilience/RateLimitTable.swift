import Synchronization

/// GCRA state for many keys (clients, API keys), in shards so event loops rarely wait on each
/// other, and bounded: a flood of distinct keys cannot grow memory without limit.
///
/// Idle keys are forgotten by `removeIdle`, which the owner runs now and then. A shard that fills
/// up first drops its idle keys (those back to a full burst, which lose nothing
/// by being forgotten); if that frees less than a quarter, it drops arbitrary keys down to three
/// quarters full. Such a key starts again with a full burst: the bound wins over exactness, and
/// `evictions` counts how often that happened. Either sweep runs once per quarter-shard of inserts,
/// so its cost per request stays constant.
public final class RateLimitTable: Sendable {
    public let gcra: GCRA
    public let maxKeys: Int
    private let shards: [Shard]
    private let perShard: Int

    private final class Shard: Sendable {
        let state = Mutex(State())
    }

    private struct State {
        var tats: [String: Int64] = [:]
        var evictions = 0
    }

    public init(gcra: GCRA, maxKeys: Int = 65_536, shardCount: Int = 16) {
        self.gcra = gcra
        let count = max(1, shardCount)
        self.maxKeys = max(count, maxKeys)
        self.perShard = max(1, self.maxKeys / count)
        self.shards = (0..<count).map { _ in Shard() }
    }

    /// Decides one request for `key` at `now` (nanoseconds on the caller's monotonic clock).
    public func decide(key: String, now: Int64) -> GCRA.Decision {
        let shard = shards[Int(UInt(bitPattern: key.hashValue) % UInt(shards.count))]
        return shard.state.withLock { s in
            let (decision, next) = gcra.decide(tat: s.tats[key], now: now)
            guard decision.admitted, let next else { return decision }
            if s.tats[key] == nil, s.tats.count >= perShard { makeRoom(&s, now: now) }
            s.tats[key] = next
            return decision
        }
    }

    private func makeRoom(_ s: inout State, now: Int64) {
        let before = s.tats.count
        s.tats = s.tats.filter { !GCRA.isIdle(tat: $0.value, now: now) }
        let target = perShard * 3 / 4
        guard before - s.tats.count < perShard / 4, s.tats.count > target else { return }
        let drop = s.tats.count - target
        for key in s.tats.keys.prefix(drop) { s.tats.removeValue(forKey: key) }
        s.evictions += drop
    }

    /// Forgets every key that is back to a full burst (run now and then, so a table that filled
    /// during a burst of clients shrinks again once they are gone).
    @discardableResult
    public func removeIdle(now: Int64) -> Int {
        shards.reduce(0) { total, shard in
            total + shard.state.withLock { s in
                let before = s.tats.count
                s.tats = s.tats.filter { !GCRA.isIdle(tat: $0.value, now: now) }
                return before - s.tats.count
            }
        }
    }

    /// Keys held now.
    public var count: Int { shards.reduce(0) { $0 + $1.state.withLock { $0.tats.count } } }

    /// Keys that were still limited when dropped to make room.
    public var evictions: Int { shards.reduce(0) { $0 + $1.state.withLock { $0.evictions } } }
}
