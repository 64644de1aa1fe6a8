import Logging
import NIOCore

/// The dedicated pub/sub connection: subscribes to its channels on every (re)connect and hands each
/// message to `onMessage`. After a reconnect `onSubscribed(true)` tells the owner it may have missed
/// messages while the connection was down. A PING every `keepAlive` finds a connection that died
/// silently (it fails by the command timeout, and the connection is then re-made).
public final class RedisSubscriber: Sendable {
    private let connection: ReconnectingConnection
    private let pinger: RepeatedTask

    public init(
        settings: RedisConnectionSettings, channels: [String], eventLoop: any EventLoop, logger: Logger,
        keepAlive: TimeAmount = .seconds(5),
        onMessage: @escaping @Sendable (_ channel: String, _ payload: ByteBuffer) -> Void,
        onSubscribed: @escaping @Sendable (_ resubscribed: Bool) -> Void
    ) {
        let connection = ReconnectingConnection(
            settings: settings, eventLoop: eventLoop, logger: logger,
            onPush: { push in
                // ["message", channel, payload] or ["pmessage", pattern, channel, payload]
                guard let parts = push.array, let kind = parts.first?.string else { return }
                let offset = kind == "pmessage" ? 1 : 0
                guard parts.count >= 3 + offset, let channel = parts[1 + offset].string, let payload = parts[2 + offset].bytes else { return }
                onMessage(channel, payload)
            },
            setup: { connection, reconnected in
                let subscribed = channels.map { connection.send(RedisCommand("SUBSCRIBE", [$0])) }
                return EventLoopFuture.andAllSucceed(subscribed, on: connection.eventLoop).map {
                    onSubscribed(reconnected)
                }
            }
        )
        self.connection = connection
        self.pinger = eventLoop.scheduleRepeatedTask(initialDelay: keepAlive, delay: keepAlive) { _ in
            // In subscribed mode PING answers ["pong", ""]; a missing answer closes the connection.
            _ = connection.connection?.send(RedisCommand("PING"))
        }
        connection.start()
    }

    public var isSubscribed: Bool { connection.connection != nil }

    public func shutdown() {
        pinger.cancel()
        connection.shutdown()
    }
}

