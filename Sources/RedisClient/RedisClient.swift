import Logging
import NIOConcurrencyHelpers
import NIOCore

/// A small pool of pipelined connections spread over the event loops. A command goes to a
/// connection on the caller's event loop when one is up (no thread hop), else to any that is up;
/// when none is, it fails at once with `.unavailable` rather than waiting: callers treat Redis as
/// optional. Connections come back by themselves after Redis returns.
public final class RedisClient: Sendable {
    private let slots: [ReconnectingConnection]
    private let group: any EventLoopGroup
    private let cursor = NIOLockedValueBox(0)
    public let settings: RedisConnectionSettings

    public init(settings: RedisConnectionSettings, poolSize: Int, group: any EventLoopGroup, logger: Logger) {
        self.settings = settings
        self.group = group
        let loops = Array(group.makeIterator())
        self.slots = (0..<max(1, poolSize)).map { i in
            ReconnectingConnection(settings: settings, eventLoop: loops[i % loops.count], logger: logger)
        }
        for slot in slots { slot.start() }
    }

    /// How many pooled connections are up now.
    public var connectedCount: Int {
        slots.reduce(0) { $0 + ($1.connection == nil ? 0 : 1) }
    }

    public func send(_ command: RedisCommand, preferring loop: (any EventLoop)? = nil) -> EventLoopFuture<RESPValue> {
        guard let connection = pick(preferring: loop) else {
            return (loop ?? group.next()).makeFailedFuture(RedisError(.unavailable, "no connection to redis is up"))
        }
        return connection.send(command)
    }

    private func pick(preferring loop: (any EventLoop)?) -> RedisConnection? {
        let start = cursor.withLockedValue { c -> Int in
            c &+= 1
            return c
        }
        var fallback: RedisConnection?
        for i in 0..<slots.count {
            let slot = slots[(start &+ i) % slots.count]
            guard let connection = slot.connection else { continue }
            if loop == nil || slot.eventLoop === loop { return connection }
            if fallback == nil { fallback = connection }
        }
        return fallback
    }

    /// Closes every connection and stops reconnecting.
    public func shutdown() {
        for slot in slots { slot.shutdown() }
    }
}

/// A Lua script run with `EVALSHA`; it is loaded with `SCRIPT LOAD` on first use and again when
/// Redis answers `NOSCRIPT` (after a restart or `SCRIPT FLUSH`).
public final class RedisScript: Sendable {
    public let source: String
    private let sha = NIOLockedValueBox<String?>(nil)

    public init(_ source: String) {
        self.source = source
    }

    public func run(on client: RedisClient, keys: [String], arguments: [ByteBuffer], preferring loop: (any EventLoop)? = nil) -> EventLoopFuture<RESPValue> {
        if let known = sha.withLockedValue({ $0 }) {
            let attempt = evalsha(known, client: client, keys: keys, arguments: arguments, loop: loop)
            return attempt.flatMapError { error in
                guard let redisError = error as? RedisError, redisError.kind == .serverError, redisError.message.contains("NOSCRIPT") else {
                    return attempt.eventLoop.makeFailedFuture(error)
                }
                self.sha.withLockedValue { $0 = nil }
                return self.loadAndRun(client: client, keys: keys, arguments: arguments, loop: loop)
            }
        }
        return loadAndRun(client: client, keys: keys, arguments: arguments, loop: loop)
    }

    private func loadAndRun(client: RedisClient, keys: [String], arguments: [ByteBuffer], loop: (any EventLoop)?) -> EventLoopFuture<RESPValue> {
        let load = client.send(RedisCommand("SCRIPT", ["LOAD", source]), preferring: loop)
        return load.flatMap { reply in
            guard let digest = reply.string else {
                return load.eventLoop.makeFailedFuture(RedisError(.unexpectedReply, "SCRIPT LOAD answered \(reply)"))
            }
            self.sha.withLockedValue { $0 = digest }
            return self.evalsha(digest, client: client, keys: keys, arguments: arguments, loop: loop)
        }
    }

    private func evalsha(_ digest: String, client: RedisClient, keys: [String], arguments: [ByteBuffer], loop: (any EventLoop)?) -> EventLoopFuture<RESPValue> {
        var command = RedisCommand("EVALSHA", [digest, String(keys.count)] + keys)
        for argument in arguments { command.append(argument) }
        return client.send(command, preferring: loop)
    }
}
