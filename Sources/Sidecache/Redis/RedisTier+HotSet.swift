import NIOCore
import RedisClient
import Warming

/// The hot set shared by the instances on one Redis (`<key_prefix>hot`, see `SharedHotness`): each
/// instance adds what it finds hot every few seconds and at shutdown, and a starting instance
/// reads the hottest to warm its memory cache from L2.
extension RedisTier {
    /// KEYS: the set; ARGV: floor score, most members kept, TTL ms, then score and member pairs.
    /// Keeps each member's highest score (`ZADD GT`: the highest rate any instance saw, scores
    /// being comparable across time), drops the members decayed below the floor, keeps the
    /// hottest `most`, and lets the set expire when no instance writes it any more. Returns the
    /// members kept.
    static let recordHotScript = RedisScript("""
        if #ARGV > 3 then redis.call('ZADD', KEYS[1], 'GT', unpack(ARGV, 4)) end
        redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1])
        local n = redis.call('ZCARD', KEYS[1])
        local most = tonumber(ARGV[2])
        if n > most then
          redis.call('ZREMRANGEBYRANK', KEYS[1], 0, n - most - 1)
          n = most
        end
        if n > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
        return n
        """)

    /// Members sent per script call: Redis runs one script at a time.
    static let hotBatch = 500
    /// The shared set outlives the last write by a day, then goes.
    static let hotTTLMilliseconds: Int64 = 86_400_000

    /// Adds `members` (member, score) to the shared hot set, in batches; the future fails with the
    /// first error (counted as a Redis error).
    func recordHot(_ members: [(member: String, score: Double)], floorScore: Double, most: Int, on loop: any EventLoop) -> EventLoopFuture<Void> {
        let batches = stride(from: 0, to: members.count, by: Self.hotBatch).map { members[$0..<min($0 + Self.hotBatch, members.count)] }
        let key = keys.hot
        var chain = loop.makeSucceededVoidFuture()
        for batch in batches {
            chain = chain.flatMap { [self] in
                var arguments = [ByteBuffer(string: String(floorScore)), ByteBuffer(string: String(most)),
                                 ByteBuffer(string: String(Self.hotTTLMilliseconds))]
                arguments.reserveCapacity(3 + 2 * batch.count)
                for (member, score) in batch {
                    arguments.append(ByteBuffer(string: String(score)))
                    arguments.append(ByteBuffer(string: member))
                }
                return Self.recordHotScript.run(on: client, keys: [key], arguments: arguments, preferring: loop).map { _ in }
            }
        }
        chain.whenFailure { self.recordFailure($0) }
        return chain
    }

    /// The `limit` hottest members with their scores, hottest first.
    func hotMembers(limit: Int, on loop: any EventLoop) -> EventLoopFuture<[(member: String, score: Double)]> {
        let reply = client.send(RedisCommand("ZREVRANGE", [keys.hot, "0", String(max(0, limit - 1)), "WITHSCORES"]), preferring: loop)
        return reply.flatMapThrowing { value -> [(member: String, score: Double)] in
            guard let items = value.array, items.count % 2 == 0 else {
                throw RedisError(.unexpectedReply, "ZREVRANGE answered \(value)")
            }
            return stride(from: 0, to: items.count, by: 2).compactMap { i in
                guard let member = items[i].string, let score = items[i + 1].string.flatMap(Double.init) else { return nil }
                return (member, score)
            }
        }.flatMapErrorThrowing { error in
            // None up yet at start is what the caller waits out, not a failure of Redis.
            if (error as? RedisError)?.kind != .unavailable { self.recordFailure(error) }
            throw error
        }
    }
}
