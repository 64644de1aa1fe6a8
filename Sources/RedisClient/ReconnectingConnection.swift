import Logging
import NIOConcurrencyHelpers
import NIOCore

/// How long to wait before reconnecting: exponential from `base`, capped, with jitter so that many
/// instances do not reconnect in step after Redis restarts.
public struct RedisBackoff: Sendable, Equatable {
    public var base: TimeAmount
    public var cap: TimeAmount

    public init(base: TimeAmount = .milliseconds(50), cap: TimeAmount = .seconds(2)) {
        self.base = base
        self.cap = cap
    }

    /// The ceiling for attempt `n` (1-based): base·2^(n-1), at most `cap`.
    public func ceiling(attempt: Int) -> TimeAmount {
        let shift = min(max(0, attempt - 1), 30)
        let grown = base.nanoseconds.multipliedReportingOverflow(by: Int64(1) << shift)
        return .nanoseconds(grown.overflow ? cap.nanoseconds : min(cap.nanoseconds, grown.partialValue))
    }

    /// A delay between half the ceiling and the ceiling ("equal jitter": never a hot loop).
    public func delay<R: RandomNumberGenerator>(attempt: Int, using rng: inout R) -> TimeAmount {
        let ceiling = ceiling(attempt: attempt).nanoseconds
        return .nanoseconds(ceiling / 2 + Int64.random(in: 0...max(0, ceiling / 2), using: &rng))
    }
}

public struct RedisConnectionSettings: Sendable {
    public var url: RedisURL
    public var connectTimeout: TimeAmount
    public var commandTimeout: TimeAmount
    public var backoff: RedisBackoff

    public init(url: RedisURL, connectTimeout: TimeAmount = .seconds(1), commandTimeout: TimeAmount = .milliseconds(50),
                backoff: RedisBackoff = RedisBackoff()) {
        self.url = url
        self.connectTimeout = connectTimeout
        self.commandTimeout = commandTimeout
        self.backoff = backoff
    }
}

/// A connection that keeps itself up: it connects, runs the caller's setup (e.g. SUBSCRIBE), and
/// when the connection drops or cannot be made, tries again after a backoff, until shut down.
final class ReconnectingConnection: Sendable {
    private enum State {
        case connecting
        case connected(RedisConnection)
        case waiting
        case shutdown
    }

    private struct Status {
        var state = State.waiting
        var failedAttempts = 0
        var everConnected = false
    }

    let eventLoop: any EventLoop
    private let settings: RedisConnectionSettings
    private let status = NIOLockedValueBox(Status())
    private let logger: Logger
    private let onPush: (@Sendable (RESPValue) -> Void)?
    /// Runs on every new connection before it is used; `true` when a connection was up before.
    private let setup: @Sendable (RedisConnection, _ reconnected: Bool) -> EventLoopFuture<Void>

    init(settings: RedisConnectionSettings, eventLoop: any EventLoop, logger: Logger,
         onPush: (@Sendable (RESPValue) -> Void)? = nil,
         setup: @escaping @Sendable (RedisConnection, Bool) -> EventLoopFuture<Void> = { c, _ in c.eventLoop.makeSucceededVoidFuture() }) {
        self.settings = settings
        self.eventLoop = eventLoop
        self.logger = logger
        self.onPush = onPush
        self.setup = setup
    }

    /// The connection if it is up now.
    var connection: RedisConnection? {
        status.withLockedValue { s in
            if case .connected(let c) = s.state { return c }
            return nil
        }
    }

    func start() {
        connect()
    }

    func shutdown() {
        let current = status.withLockedValue { s -> RedisConnection? in
            defer { s.state = .shutdown }
            if case .connected(let c) = s.state { return c }
            return nil
        }
        current?.close()
    }

    /// Changes the state unless the connection was shut down; false when it was.
    private func move(to state: State) -> Bool {
        status.withLockedValue { s in
            if case .shutdown = s.state { return false }
            s.state = state
            return true
        }
    }

    private func connect() {
        guard move(to: .connecting) else { return }
        let settings = self.settings
        RedisConnection.connect(to: settings.url, on: eventLoop, connectTimeout: settings.connectTimeout,
                                commandTimeout: settings.commandTimeout, onPush: onPush)
            .flatMap { connection in
                let reconnected = self.status.withLockedValue { $0.everConnected }
                return self.setup(connection, reconnected).map { connection }.flatMapError { error in
                    connection.close()
                    return connection.eventLoop.makeFailedFuture(error)
                }
            }
            .whenComplete { result in
                switch result {
                case .success(let connection): self.connected(connection)
                case .failure(let error): self.failed(error)
                }
            }
    }

    private func connected(_ connection: RedisConnection) {
        let (attempts, keep) = status.withLockedValue { s -> (Int, Bool) in
            if case .shutdown = s.state { return (0, false) }
            defer {
                s.state = .connected(connection)
                s.failedAttempts = 0
                s.everConnected = true
            }
            return (s.failedAttempts, true)
        }
        guard keep else {
            connection.close()
            return
        }
        if attempts > 0 {
            logger.notice("redis connection re-established", metadata: ["redis": "\(settings.url)", "failed_attempts": "\(attempts)"])
        }
        connection.channel.closeFuture.whenComplete { _ in self.lost() }
    }

    private func lost() {
        guard move(to: .waiting) else { return }
        logger.warning("redis connection lost; reconnecting", metadata: ["redis": "\(settings.url)"])
        scheduleRetry()
    }

    private func failed(_ error: any Error) {
        let attempt = status.withLockedValue { s -> Int? in
            if case .shutdown = s.state { return nil }
            s.state = .waiting
            s.failedAttempts += 1
            return s.failedAttempts
        }
        guard let attempt else { return }
        // One warning when an outage starts, then quiet retries (a log line per attempt would
        // flood the log while Redis is down).
        if attempt == 1 {
            logger.warning("cannot connect to redis; retrying with backoff", metadata: ["redis": "\(settings.url)", "error": "\(error)"])
        } else {
            logger.debug("redis connect attempt failed", metadata: ["attempt": "\(attempt)", "error": "\(error)"])
        }
        scheduleRetry(attempt: attempt)
    }

    private func scheduleRetry(attempt: Int = 1) {
        var rng = SystemRandomNumberGenerator()
        let delay = settings.backoff.delay(attempt: attempt, using: &rng)
        eventLoop.scheduleTask(in: delay) { self.connect() }
    }
}
