import NIOCore
import RedisClient
import Resilience

/// The shared rate limit (`scope: redis`): the same GCRA as `Resilience.GCRA`, run atomically in
/// Redis on Redis's own clock, so every instance sees one timestamp per key.
extension RedisTier {
    /// KEYS: the key's TAT; ARGV: interval and tolerance in microseconds. Returns {admitted (0/1),
    /// remaining, retry after µs, reset after µs}. The TAT expires once the key is idle again.
    static let rateLimitScript = RedisScript("""
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
        local interval = tonumber(ARGV[1])
        local tolerance = tonumber(ARGV[2])
        local tat = tonumber(redis.call('GET', KEYS[1]) or now)
        if tat < now then tat = now end
        local allow_at = tat - tolerance
        if now < allow_at then return {0, 0, allow_at - now, tat - now} end
        local next = tat + interval
        redis.call('SET', KEYS[1], string.format('%d', next), 'PX', math.ceil((next - now) / 1000) + 1)
        return {1, math.floor((tolerance + interval - (next - now)) / interval), 0, next - now}
        """)

    /// Decides one request against the shared limit; nil when Redis failed or did not answer in
    /// time (counted as a Redis error; the caller falls back to its local limit). Completes on `loop`.
    func rateLimit(route: String, key: String, gcra: GCRA, on loop: any EventLoop, _ completion: @escaping (Result<GCRA.Decision, any Error>) -> Void) {
        let redisKey = keys.rateLimit(route: route, key: key)
        let arguments = [
            ByteBuffer(string: String(max(1, gcra.interval / 1000))),
            ByteBuffer(string: String(gcra.tolerance / 1000)),
        ]
        let reply = Self.rateLimitScript.run(on: client, keys: [redisKey], arguments: arguments, preferring: loop)
        let deliver: (Result<RESPValue, any Error>) -> Void = { result in
            switch result {
            case .success(let value):
                guard let items = value.array, items.count == 4, let admitted = items[0].integer, let remaining = items[1].integer,
                      let retryAfter = items[2].integer, let resetAfter = items[3].integer else {
                    let error = RedisError(.unexpectedReply, "the rate limit script answered \(value)")
                    self.recordFailure(error)
                    completion(.failure(error))
                    return
                }
                completion(.success(GCRA.Decision(admitted: admitted == 1, remaining: Int(remaining),
                                                  retryAfter: retryAfter * 1000, resetAfter: resetAfter * 1000)))
            case .failure(let error):
                self.recordFailure(error)
                completion(.failure(error))
            }
        }
        if reply.eventLoop === loop {
            reply.assumeIsolated().whenComplete(deliver)
        } else {
            let bound = NIOLoopBound(deliver, eventLoop: loop)
            reply.whenComplete { result in loop.execute { bound.value(result) } }
        }
    }
}
