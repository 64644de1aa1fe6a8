import CoreMetrics
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
    private let errorCounter: CoreMetrics.Counter

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

    /// Pops up to a batch of members from an index set and deletes their entries; once the set is
    /// empty, publishes the invalidation in the same atomic step, so an instance that hears the
    /// message can no longer find any of the entries in L2. Called until nothing is left, so a big
    /// set never blocks Redis for long. KEYS: the set; ARGV: entry key prefix, channel ("" for no
    /// message), message, batch, soft-purge field. Returns {variants removed, members left}.
    private let removeSetScript = RedisScript("""
        local removed = 0
        for _, member in ipairs(redis.call('SPOP', KEYS[1], tonumber(ARGV[4]))) do
          local key = ARGV[1] .. member
          local variants = redis.call('HLEN', key)
          if variants > 0 then
            removed = removed + variants - redis.call('HEXISTS', key, ARGV[5])
            redis.call('DEL', key)
          end
        end
        local left = redis.call('SCARD', KEYS[1])
        if left == 0 and ARGV[2] ~= '' then redis.call('PUBLISH', ARGV[2], ARGV[3]) end
        return {removed, left}
        """)

    /// Soft purge of one batch of an index set: stamps each entry with the purge time (variants
    /// stored before it count as stale from then on); publishes when the scan is complete. KEYS:
    /// the set; ARGV: entry key prefix, channel ("" for none), message, batch, soft-purge field,
    /// purge time in ms, SSCAN cursor. Returns {variants marked, next cursor}.
    private let markSetScript = RedisScript(RedisTier.markFunction + """
        local page = redis.call('SSCAN', KEYS[1], ARGV[7], 'COUNT', ARGV[4])
        local marked = 0
        for _, member in ipairs(page[2]) do marked = marked + mark(ARGV[1] .. member, ARGV[5], ARGV[6]) end
        if page[1] == '0' and ARGV[2] ~= '' then redis.call('PUBLISH', ARGV[2], ARGV[3]) end
        return {marked, page[1]}
        """)

    /// Soft purge of a batch of entry keys (a soft purge of everything). KEYS: entries; ARGV:
    /// soft-purge field, purge time in ms. Returns the variants marked.
    private let markEntriesScript = RedisScript(RedisTier.markFunction + """
        local marked = 0
        for _, key in ipairs(KEYS) do marked = marked + mark(key, ARGV[1], ARGV[2]) end
        return marked
        """)

    /// Lua shared by the soft-purge scripts: stamps an existing entry with the purge time and
    /// returns how many variants it holds (the stamp field itself not counted).
    private static let markFunction = """
        local function mark(key, field, time)
          local variants = redis.call('HLEN', key)
          if variants == 0 then return 0 end
          local counted = variants - redis.call('HEXISTS', key, field)
          redis.call('HSET', key, field, time)
          return counted
        end

        """

    /// The hash field of an entry that holds the time of its last soft purge. A variant field is
    /// built from header names, which cannot contain NUL, so it never collides.
    static let softPurgeField = "\u{0}soft-purged"

    private static let softPurgeFieldBytes = ByteBuffer(string: softPurgeField)

    /// Compares bytes: this runs for every field of every L2 lookup.
    static func isSoftPurgeField(_ field: RESPValue) -> Bool {
        guard let bytes = field.bytes, bytes.readableBytesView.first == 0 else { return false }
        return bytes == softPurgeFieldBytes
    }

    /// Members handled per script call: Redis runs one script at a time, so a batch bounds how long
    /// a purge of a big set holds it up.
    static let purgeBatch = 500

    init(config: SidecacheConfiguration.Redis, group: any EventLoopGroup, logger: Logger, instanceID: String, errorCounter: CoreMetrics.Counter,
         onInvalidation: @escaping @Sendable (InvalidationMessage) -> Void,
         onResubscribed: @escaping @Sendable () -> Void) {
        self.config = config
        self.instanceID = instanceID
        self.logger = logger
        self.errorCounter = errorCounter
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
                onInvalidation(message)
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

    /// The names of this deployment's keys.
    var keys: RedisKeySchema { RedisKeySchema(prefix: config.keyPrefix) }

    private func entryKey(_ key: CacheKey) -> String { keys.entry(key) }
    private func tagKey(_ tag: String) -> String { keys.tag(tag) }
    private func pathKey(_ path: String) -> String { keys.path(path) }

    // MARK: Leases

    /// `SET <prefix>lease:<key> <holder> NX PX <ms>`: one instance of N refreshes a hot entry.
    func lease(_ key: CacheKey, milliseconds: Int64, holder: String, on loop: any EventLoop, _ done: @escaping (Bool?) -> Void) {
        let command = RedisCommand("SET", [keys.lease(key), holder, "NX", "PX", String(max(1, milliseconds))])
        let bound = NIOLoopBound(done, eventLoop: loop)
        client.send(command, preferring: loop).whenComplete { result in
            let answer: Bool?
            switch result {
            case .success(let reply): answer = reply.string == "OK"
            case .failure(let error):
                self.recordFailure(error)
                answer = nil
            }
            loop.execute { bound.value(answer) }
        }
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
        // A soft purge stamped the hash: variants stored before it are stale from that time on.
        var softPurged: CacheInstant?
        var index = 0
        while index + 1 < items.count {
            defer { index += 2 }
            if Self.isSoftPurgeField(items[index]), let ms = items[index + 1].string.flatMap({ Int64($0) }) {
                softPurged = CacheInstant(milliseconds: ms)
            }
        }
        var best: CachedResponse?
        index = 0
        while index + 1 < items.count {
            defer { index += 2 }
            guard let value = items[index + 1].bytes, !Self.isSoftPurgeField(items[index]) else { continue }
            var entry: CachedResponse
            do throws(CachedResponseCodec.DecodeError) {
                entry = try CachedResponseCodec.decode(value)
            } catch {
                discardCorrupt(redisKey, field: items[index].bytes ?? ByteBuffer(), error: error, loop: loop)
                continue
            }
            if let softPurged, entry.responseTime <= softPurged { entry = entry.expired(at: softPurged) }
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
            ByteBuffer(string: RedisKeySchema.variantField(names: entry.varyNames, values: entry.varyValues)),
            CachedResponseCodec.encode(entry),
            ByteBuffer(string: String(RedisKeySchema.ttlMilliseconds(entry, now: now))),
            ByteBuffer(string: key.value),
            ByteBuffer(string: String(MemoryStore.maxVariantsPerKey)),
        ]
        storeScript.run(on: client, keys: keys, arguments: arguments, preferring: loop).whenFailure { self.recordFailure($0) }
    }


    // MARK: Invalidation

    /// Removes (or with `soft`, marks stale) the matching entries in L2 and tells the other
    /// instances once that is done. Completes with the number of variants affected, or an error
    /// (already counted).
    @discardableResult
    func invalidate(_ target: InvalidationMessage.Target, soft: Bool, now: CacheInstant, on loop: any EventLoop) -> EventLoopFuture<Int> {
        let message = ByteBuffer(string: InvalidationMessage(instanceID: instanceID, target: target, soft: soft).encoded)
        let purge = SetPurge(soft: soft, now: now, message: message)
        let done: EventLoopFuture<Int>
        switch target {
        case .path(let path):
            done = purgeSet(pathKey(path), purge, publishing: true, on: loop)
        case .tag(let tag):
            done = purgeSet(tagKey(tag), purge, publishing: true, on: loop)
        case .pattern(let pattern):
            done = purgePaths(matching: pattern, purge, on: loop).flatMap { self.publish(message, after: $0, on: loop) }
        case .all:
            let all = soft ? markEverything(purge, on: loop) : removeEverything(on: loop)
            done = all.flatMap { self.publish(message, after: $0, on: loop) }
        }
        return done.hop(to: loop).flatMapErrorThrowing { error in
            self.recordFailure(error)
            throw error
        }
    }

    /// One purge's settings, shared by the batches it takes.
    private struct SetPurge {
        let soft: Bool
        let now: CacheInstant
        let message: ByteBuffer
        var timeMilliseconds: String { String(now.milliseconds) }
    }

    /// Every batch of one index set; the last one publishes the message when `publishing`.
    private func purgeSet(_ set: String, _ purge: SetPurge, publishing: Bool, cursor: String = "0", total: Int = 0,
                          on loop: any EventLoop) -> EventLoopFuture<Int> {
        let channel = ByteBuffer(string: publishing ? config.invalidationChannel : "")
        var arguments = [ByteBuffer(string: keys.entryPrefix), channel, purge.message,
                         ByteBuffer(string: String(Self.purgeBatch)), ByteBuffer(string: Self.softPurgeField)]
        if purge.soft { arguments += [ByteBuffer(string: purge.timeMilliseconds), ByteBuffer(string: cursor)] }
        let script = purge.soft ? markSetScript : removeSetScript
        return script.run(on: client, keys: [set], arguments: arguments, preferring: loop).flatMap { reply in
            guard let parts = reply.array, parts.count == 2, let n = parts[0].integer else {
                return loop.makeFailedFuture(RedisError(.unexpectedReply, "the purge script answered \(reply)"))
            }
            // Removal pops members, so "left" counts down; marking scans, so the cursor says when it is over.
            let next = purge.soft ? (parts[1].string ?? "0") : ((parts[1].integer ?? 0) > 0 ? "more" : "0")
            let sum = total + Int(n)
            if next == "0" { return loop.makeSucceededFuture(sum) }
            return self.purgeSet(set, purge, publishing: publishing, cursor: next, total: sum, on: loop)
        }
    }

    /// A glob or regex purge: SCAN the path sets (never KEYS), test each path with the same matcher
    /// L1 uses, and purge the matching sets a page at a time.
    private func purgePaths(matching pattern: PurgePattern, _ purge: SetPurge, cursor: String = "0", total: Int = 0,
                            on loop: any EventLoop) -> EventLoopFuture<Int> {
        let prefix = keys.pathPrefix
        return scan(match: prefix + "*", cursor: cursor, on: loop).flatMap { next, keys in
            let matches = pattern.matcher()  // a Regex is not Sendable: one per page
            let sets = keys.filter { matches(String($0.dropFirst(prefix.count))) }
            let purged = sets.map { self.purgeSet($0, purge, publishing: false, on: loop) }
            return EventLoopFuture.whenAllSucceed(purged, on: loop).flatMap { counts in
                let sum = total + counts.reduce(0, +)
                if next == "0" { return loop.makeSucceededFuture(sum) }
                return self.purgePaths(matching: pattern, purge, cursor: next, total: sum, on: loop)
            }
        }
    }

    private func publish(_ message: ByteBuffer, after count: Int, on loop: any EventLoop) -> EventLoopFuture<Int> {
        var publish = RedisCommand("PUBLISH", [config.invalidationChannel])
        publish.append(message)
        return client.send(publish, preferring: loop).map { _ in count }
    }

    /// One SCAN page: the next cursor and the keys found.
    private func scan(match: String, cursor: String, on loop: any EventLoop) -> EventLoopFuture<(String, [String])> {
        client.send(RedisCommand("SCAN", [cursor, "MATCH", match, "COUNT", "1000"]), preferring: loop).flatMapThrowing { reply in
            guard let parts = reply.array, parts.count == 2, let next = parts[0].string, let keys = parts[1].array else {
                throw RedisError(.unexpectedReply, "SCAN answered \(reply)")
            }
            return (next, keys.compactMap(\.string))
        }
    }

    /// Every key under the prefix, found with SCAN (never KEYS) and deleted in batches. Counts keys.
    private func removeEverything(on loop: any EventLoop, cursor: String = "0", removed: Int = 0) -> EventLoopFuture<Int> {
        scan(match: keys.everything, cursor: cursor, on: loop).flatMap { next, keys in
            // The shared hot set holds recipes and rates, not content: re-warming after the purge
            // and the next start still want it.
            let names = keys.filter { $0 != self.config.invalidationChannel && $0 != self.keys.hot }
            let deleted: EventLoopFuture<Int> = names.isEmpty
                ? loop.makeSucceededFuture(0)
                : self.client.send(RedisCommand("UNLINK", names), preferring: loop).map { Int($0.integer ?? 0) }
            return deleted.flatMap { n in
                next == "0" ? loop.makeSucceededFuture(removed + n) : self.removeEverything(on: loop, cursor: next, removed: removed + n)
            }
        }
    }

    /// Every entry under the prefix stamped with the soft-purge time, a SCAN page at a time.
    private func markEverything(_ purge: SetPurge, cursor: String = "0", marked: Int = 0, on loop: any EventLoop) -> EventLoopFuture<Int> {
        scan(match: keys.allEntries, cursor: cursor, on: loop).flatMap { next, keys in
            let done: EventLoopFuture<Int> = keys.isEmpty
                ? loop.makeSucceededFuture(0)
                : self.markEntriesScript.run(on: self.client, keys: keys,
                                             arguments: [ByteBuffer(string: Self.softPurgeField), ByteBuffer(string: purge.timeMilliseconds)],
                                             preferring: loop).map { Int($0.integer ?? 0) }
            return done.flatMap { n in
                next == "0" ? loop.makeSucceededFuture(marked + n) : self.markEverything(purge, cursor: next, marked: marked + n, on: loop)
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
        errorCounter.increment()
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
