import HTTPCaching
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import RedisClient
import SidecacheConfig

/// The L2 cache in Redis, shared by every instance: entries, their tag and path index, and the
/// invalidation channel. Every call here is best effort: a Redis error or time-out is counted and
/// the request goes on as if L2 missed. Nothing here ever fails a client request.
///
/// Keys (all under `key_prefix`): `e:<primary key>` a hash of the key's variants (field: the Vary
/// values, value: the encoded entry); `t:<tag>` and `p:<path>` sets of the primary keys carrying
/// the tag or path, so a purge on any instance finds what others stored.
final class RedisTier: Sendable {
    let config: SidecacheConfiguration.Redis
    let client: RedisClient
    private let subscriber: RedisSubscriber
    let instanceID: String
    private let logger: Logger
    private let failures = NIOLockedValueBox(FailureLog())

    /// Writes one variant, extends the entry's and its index sets' TTL (never shortens it), and
    /// bounds the variants per key. KEYS: entry, index sets; ARGV: field, value, ttl ms, member,
    /// max variants.
    private let storeScript = RedisScript("""
        local ttl = tonumber(ARGV[3])
        redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
        if redis.call('HLEN', KEYS[1]) > tonumber(ARGV[5]) then
          redis.call('DEL', KEYS[1])
          redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
        end
        if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
        for i = 2, #KEYS do
          redis.call('SADD', KEYS[i], ARGV[4])
          if redis.call('PTTL', KEYS[i]) < ttl then redis.call('PEXPIRE', KEYS[i], ttl) end
        end
        return 1
        """)

    /// Deletes every entry in an index set and the set, then publishes the invalidation, in one
    /// atomic step: an instance that hears the message can no longer find the entries in L2.
    /// KEYS: the set; ARGV: entry key prefix, channel, message. Returns the variants removed.
    private let invalidateScript = RedisScript("""
        local removed = 0
        for _, member in ipairs(redis.call('SMEMBERS', KEYS[1])) do
          local key = ARGV[1] .. member
          local variants = redis.call('HLEN', key)
          if variants > 0 then
            redis.call('DEL', key)
            removed = removed + variants
          end
        end
        redis.call('DEL', KEYS[1])
        redis.call('PUBLISH', ARGV[2], ARGV[3])
        return removed
        """)

    init(config: SidecacheConfiguration.Redis, group: any EventLoopGroup, logger: Logger, instanceID: String,
         onInvalidation: @escaping @Sendable (InvalidationMessage.Target) -> Void,
         onResubscribed: @escaping @Sendable () -> Void) {
        self.config = config
        self.instanceID = instanceID
        self.logger = logger
        let timeout = TimeAmount.milliseconds(config.timeout.milliseconds)
        let settings = RedisConnectionSettings(url: config.url, connectTimeout: max(timeout, .seconds(1)), commandTimeout: timeout)
        self.client = RedisClient(settings: settings, poolSize: config.poolSize, group: group, logger: logger)
        let ownID = instanceID
        self.subscriber = RedisSubscriber(
            settings: settings, channels: [config.invalidationChannel], eventLoop: group.next(), logger: logger,
            onMessage: { _, payload in
                guard let message = InvalidationMessage(parsing: String(buffer: payload)) else {
                    logger.warning("ignored an invalidation message in an unknown format", metadata: ["payload": "\(String(buffer: payload).prefix(200))"])
                    return
                }
                guard message.instanceID != ownID else { return }
                onInvalidation(message.target)
            },
            onSubscribed: { resubscribed in
                if resubscribed { onResubscribed() }
            }
        )
    }

    func shutdown() {
        client.shutdown()
        subscriber.shutdown()
    }

    var connected: Bool { client.connectedCount > 0 }
    var subscribed: Bool { subscriber.isSubscribed }
    var errorCount: Int { failures.withLockedValue { $0.total } }

    private func entryKey(_ key: CacheKey) -> String { config.keyPrefix + "e:" + key.value }
    private func tagKey(_ tag: String) -> String { config.keyPrefix + "t:" + tag }
    private func pathKey(_ path: String) -> String { config.keyPrefix + "p:" + path }

    /// The variant field: the request's values of the Vary fields ("" when the response has none).
    static func variantField(names: [String], values: [String]) -> String {
        zip(names, values).map { "\($0)=\($1)" }.joined(separator: "\n")
    }

    // MARK: Lookup

    /// The stored variant matching the request, if Redis has one that can still serve; nil on a
    /// miss and on any error. Completes on `loop`.
    func lookup(_ key: CacheKey, requestHeaders: HTTPHeaders, now: CacheInstant, on loop: any EventLoop,
                _ completion: @escaping (CachedResponse?) -> Void) {
        let redisKey = entryKey(key)
        let reply = client.send(RedisCommand("HGETALL", [redisKey]), preferring: loop)
        // One callback, no chained futures: this runs for every L1 miss.
        let deliver: (Result<RESPValue, any Error>) -> Void = { result in
            switch result {
            case .success(let value):
                completion(self.bestVariant(in: value, redisKey: redisKey, requestHeaders: requestHeaders, now: now, loop: loop))
            case .failure(let error):
                self.recordFailure(error)
                completion(nil)
            }
        }
        if reply.eventLoop === loop {
            reply.assumeIsolated().whenComplete(deliver)
        } else {
            let bound = NIOLoopBound(deliver, eventLoop: loop)
            reply.whenComplete { result in loop.execute { bound.value(result) } }
        }
    }

    private func bestVariant(in reply: RESPValue, redisKey: String, requestHeaders: HTTPHeaders, now: CacheInstant,
                             loop: any EventLoop) -> CachedResponse? {
        guard let items = reply.array else {
            recordFailure(RedisError(.unexpectedReply, "HGETALL answered \(reply)"))
            return nil
        }
        var best: CachedResponse?
        var index = 0
        while index + 1 < items.count {
            defer { index += 2 }
            guard let value = items[index + 1].bytes else { continue }
            let entry: CachedResponse
            do throws(CachedResponseCodec.DecodeError) {
                entry = try CachedResponseCodec.decode(value)
            } catch {
                discardCorrupt(redisKey, field: items[index].bytes ?? ByteBuffer(), error: error, loop: loop)
                continue
            }
            guard entry.matchesVariant(of: requestHeaders), entry.isUseful(at: now) else { continue }
            if best.map({ entry.responseTime > $0.responseTime }) ?? true { best = entry }
        }
        return best
    }

    /// A value that does not decode (another version, or damaged) is never served: it is deleted.
    private func discardCorrupt(_ redisKey: String, field: ByteBuffer, error: CachedResponseCodec.DecodeError, loop: any EventLoop) {
        logger.warning("discarded an undecodable L2 entry", metadata: ["key": "\(redisKey)", "error": "\(error)"])
        var command = RedisCommand("HDEL", [redisKey])
        command.append(field)
        client.send(command, preferring: loop).whenFailure { self.recordFailure($0) }
    }

    // MARK: Store

    /// Writes the entry in the background; the caller never waits for Redis.
    func store(_ entry: CachedResponse, for key: CacheKey, now: CacheInstant, on loop: any EventLoop) {
        guard entry.body.readableBytes <= config.maxObjectBytes else { return }
        let keys = [entryKey(key), pathKey(key.path)] + entry.tags.map(tagKey)
        let arguments = [
            ByteBuffer(string: Self.variantField(names: entry.varyNames, values: entry.varyValues)),
            CachedResponseCodec.encode(entry),
            ByteBuffer(string: String(Self.ttlMilliseconds(entry, now: now))),
            ByteBuffer(string: key.value),
            ByteBuffer(string: String(MemoryStore.maxVariantsPerKey)),
        ]
        storeScript.run(on: client, keys: keys, arguments: arguments, preferring: loop).whenFailure { self.recordFailure($0) }
    }

    /// Freshness left plus the longer stale window: after that the entry can serve nothing.
    static func ttlMilliseconds(_ entry: CachedResponse, now: CacheInstant) -> Int64 {
        let remaining = entry.terms.freshnessLifetime - entry.age(at: now)
        let windows = max(entry.terms.staleWhileRevalidate, entry.terms.staleIfError)
        return max(1000, (remaining + windows).milliseconds)
    }

    // MARK: Invalidation

    /// Removes the matching entries from L2 and tells the other instances, in one step. Completes
    /// with the number of variants removed, or an error (already counted).
    @discardableResult
    func invalidate(_ target: InvalidationMessage.Target, on loop: any EventLoop) -> EventLoopFuture<Int> {
        let message = ByteBuffer(string: InvalidationMessage(instanceID: instanceID, target: target).encoded)
        let channel = ByteBuffer(string: config.invalidationChannel)
        let reply: EventLoopFuture<RESPValue>
        let indexSet: String?
        switch target {
        case .path(let path): indexSet = pathKey(path)
        case .tag(let tag): indexSet = tagKey(tag)
        case .all: indexSet = nil
        }
        if let indexSet {
            reply = invalidateScript.run(on: client, keys: [indexSet], arguments: [ByteBuffer(string: config.keyPrefix + "e:"), channel, message], preferring: loop)
        } else {
            reply = removeEverything(on: loop).flatMap { removed in
                var publish = RedisCommand("PUBLISH", [self.config.invalidationChannel])
                publish.append(message)
                return self.client.send(publish, preferring: loop).map { _ in .integer(Int64(removed)) }
            }
        }
        return reply.hop(to: loop).flatMapThrowing { value in
            guard let n = value.integer else { throw RedisError(.unexpectedReply, "invalidation answered \(value)") }
            return Int(n)
        }.flatMapErrorThrowing { error in
            self.recordFailure(error)
            throw error
        }
    }

    /// Every key under the prefix, found with SCAN (never KEYS) and deleted in batches.
    private func removeEverything(on loop: any EventLoop, cursor: String = "0", removed: Int = 0) -> EventLoopFuture<Int> {
        client.send(RedisCommand("SCAN", [cursor, "MATCH", config.keyPrefix + "*", "COUNT", "500"]), preferring: loop).flatMap { reply in
            guard let parts = reply.array, parts.count == 2, let next = parts[0].string, let keys = parts[1].array else {
                return loop.makeFailedFuture(RedisError(.unexpectedReply, "SCAN answered \(reply)"))
            }
            let names = keys.compactMap(\.string).filter { $0 != self.config.invalidationChannel }
            let deleted: EventLoopFuture<Int> = names.isEmpty
                ? loop.makeSucceededFuture(0)
                : self.client.send(RedisCommand("UNLINK", names), preferring: loop).map { Int($0.integer ?? 0) }
            return deleted.flatMap { n in
                next == "0" ? loop.makeSucceededFuture(removed + n) : self.removeEverything(on: loop, cursor: next, removed: removed + n)
            }
        }
    }

    // MARK: Failures

    private struct FailureLog {
        var total = 0
        var sinceLastReport = 0
        var lastReport: NIODeadline?
    }

    /// Counts every failure; logs at most one warning per 10 s with the count since the last one,
    /// so an outage does not turn each request into a log line.
    func recordFailure(_ error: any Error) {
        let now = NIODeadline.now()
        let report = failures.withLockedValue { f -> Int? in
            f.total += 1
            f.sinceLastReport += 1
            if let last = f.lastReport, now - last < .seconds(10) { return nil }
            defer {
                f.lastReport = now
                f.sinceLastReport = 0
            }
            return f.sinceLastReport
        }
        if let report {
            logger.warning("redis unavailable for the cache; going on with memory and the upstream", metadata: [
                "error": "\(error)", "failures": "\(report)",
            ])
        }
    }
}
