import NIOCore
import NIOPosix

/// One connection to Redis, logged in and on the right database. Commands may be sent from any
/// thread; replies complete on the connection's event loop.
public final class RedisConnection: Sendable {
    public let channel: any Channel
    let commandTimeout: TimeAmount
    /// A flush is already scheduled for this event loop tick.
    private let flushScheduled: NIOLoopBoundBox<Bool>

    init(channel: any Channel, commandTimeout: TimeAmount) {
        self.channel = channel
        self.commandTimeout = commandTimeout
        self.flushScheduled = NIOLoopBoundBox(false, eventLoop: channel.eventLoop)
    }

    public var eventLoop: any EventLoop { channel.eventLoop }

    /// Sends a command; the reply (or failure) completes the returned future on this connection's
    /// event loop. From that loop, commands written in one tick share one flush (one syscall).
    public func send(_ command: RedisCommand) -> EventLoopFuture<RESPValue> {
        let promise = channel.eventLoop.makePromise(of: RESPValue.self)
        let request = RedisRequest(command: command, promise: promise, deadline: .now() + commandTimeout)
        if channel.eventLoop.inEventLoop {
            // On the loop nothing can close the channel between this check and the write, so the
            // handler is there to fail the command if the connection drops later.
            guard channel.isActive else {
                promise.fail(RedisError(.connectionClosed, "connection closed before \(command) was sent"))
                return promise.futureResult
            }
            channel.write(request, promise: nil)
            if !flushScheduled.value {
                flushScheduled.value = true
                channel.eventLoop.assumeIsolated().execute { [self] in
                    flushScheduled.value = false
                    channel.flush()
                }
            }
        } else {
            let written = channel.eventLoop.makePromise(of: Void.self)
            written.futureResult.whenFailure { error in
                promise.fail(RedisError(.connectionClosed, "could not send \(command): \(error)"))
            }
            channel.writeAndFlush(request, promise: written)
        }
        return promise.futureResult
    }

    public func close() {
        channel.close(promise: nil)
    }

    /// Connects, then sends AUTH and SELECT as the URL asks. `onPush` receives pub/sub messages.
    public static func connect(
        to url: RedisURL, on eventLoop: any EventLoop, connectTimeout: TimeAmount, commandTimeout: TimeAmount,
        onPush: (@Sendable (RESPValue) -> Void)? = nil
    ) -> EventLoopFuture<RedisConnection> {
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(connectTimeout)
            .channelOption(ChannelOptions.tcpOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(RedisConnectionHandler(onPush: onPush))
                }
            }
        let connected: EventLoopFuture<any Channel>
        switch url.address {
        case .tcp(let host, let port): connected = bootstrap.connect(host: host, port: port)
        case .unix(let path): connected = bootstrap.connect(unixDomainSocketPath: path)
        }
        return connected.flatMapError { error in
            eventLoop.makeFailedFuture(RedisError(.connectFailed, "\(url): \(error)"))
        }.flatMap { channel in
            let connection = RedisConnection(channel: channel, commandTimeout: commandTimeout)
            return connection.logIn(url).map { connection }.flatMapError { error in
                connection.close()
                return eventLoop.makeFailedFuture(error)
            }
        }
    }

    private func logIn(_ url: RedisURL) -> EventLoopFuture<Void> {
        var steps: [RedisCommand] = []
        if let password = url.password {
            steps.append(RedisCommand("AUTH", url.user.map { [$0, password] } ?? [password]))
        }
        if url.database != 0 { steps.append(RedisCommand("SELECT", [String(url.database)])) }
        let replies = steps.map { send($0) }
        return EventLoopFuture.andAllSucceed(replies, on: channel.eventLoop)
    }
}
