import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import SidecacheConfig

/// One keep-alive HTTP/1.1 connection to the upstream.
final class UpstreamConnection {
    let channel: any Channel
    let handler: UpstreamClientHandler
    /// True once it has carried a request: a failure before the response head may then be the
    /// upstream closing an idle connection, which a retry on a new connection fixes.
    var hasBeenUsed = false
    /// When it last went back to the idle list.
    fileprivate var idleSince = NIODeadline.distantPast

    init(channel: any Channel, handler: UpstreamClientHandler) {
        self.channel = channel
        self.handler = handler
    }
}

/// Where and how to connect, taken from the config snapshot at each acquire so a reload applies to
/// new connections.
struct UpstreamSettings: Equatable {
    var host: String
    var port: Int
    var connectTimeout: TimeAmount
    var responseTimeout: TimeAmount
    var keepaliveTimeout: TimeAmount
    var maxConnections: Int

    init(_ u: SidecacheConfiguration.Upstream, loops: Int) {
        host = u.host
        port = u.port
        connectTimeout = .milliseconds(u.connectTimeout.milliseconds)
        responseTimeout = .milliseconds(u.responseTimeout.milliseconds)
        keepaliveTimeout = .milliseconds(u.keepaliveTimeout.milliseconds)
        // The global bound is split across loops; each loop gets at least one connection.
        maxConnections = max(1, (u.maxConnections + loops - 1) / loops)
    }

    var target: String { "\(host):\(port)" }
}

/// The upstream connections of one event loop, used only on that loop (no locks): idle connections
/// are reused most-recently-used first, new ones are opened up to the loop's share of
/// `upstream.max_connections`, and requests beyond that wait in line for a free connection (up to
/// the connect timeout).
final class UpstreamPool {
    typealias Callback = (Result<UpstreamConnection, UpstreamError>) -> Void

    private final class Waiter {
        let settings: UpstreamSettings
        let callback: Callback
        var timer: Scheduled<Void>?
        init(settings: UpstreamSettings, callback: @escaping Callback) {
            self.settings = settings
            self.callback = callback
        }
    }

    let eventLoop: any EventLoop
    private var idle: [UpstreamConnection] = []
    private var open = 0
    private var waiters: [Waiter] = []
    private var target: String?
    private var keepalive = TimeAmount.seconds(60)
    /// One timer for the whole idle list, armed for the oldest idle connection's expiry: a request
    /// costs no timer of its own (NIO removes a cancelled timer by linear search).
    private var sweep: Scheduled<Void>?

    init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    /// Hands a connection to `callback` on this loop: an idle one at once, else a new one, else
    /// when one is released.
    func acquire(_ settings: UpstreamSettings, _ callback: @escaping Callback) {
        eventLoop.preconditionInEventLoop()
        keepalive = settings.keepaliveTimeout
        if target != settings.target {
            // The upstream moved (config reload): idle connections to the old one are dropped.
            target = settings.target
            closeIdle()
        }
        while let c = idle.popLast() {
            if c.channel.isActive && c.handler.isIdle {
                callback(.success(c))
                return
            }
        }
        if open < settings.maxConnections {
            connect(settings, callback)
            return
        }
        let waiter = Waiter(settings: settings, callback: callback)
        waiter.timer = eventLoop.assumeIsolated().scheduleTask(in: settings.connectTimeout) { [weak self, weak waiter] in
            guard let self, let waiter, let i = self.waiters.firstIndex(where: { $0 === waiter }) else { return }
            self.waiters.remove(at: i)
            waiter.callback(.failure(UpstreamError(.poolExhausted, "has all \(settings.maxConnections) connections of this worker busy", requestNotSent: true)))
        }
        waiters.append(waiter)
    }

    private func connect(_ settings: UpstreamSettings, _ callback: @escaping Callback) {
        open += 1
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(settings.connectTimeout)
            .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    // No outbound header validation: every field sent upstream was parsed from the
                    // client by NIO's parser, built here from validated parts (addresses, request
                    // ids), or read from a stored entry whose codec refuses CR, LF and NUL. Checking
                    // each byte again cost about 2% of a forwarded request.
                    try channel.pipeline.syncOperations.addHTTPClientHandlers(enableOutboundHeaderValidation: false)
                    try channel.pipeline.syncOperations.addHandler(UpstreamClientHandler())
                }
            }
        bootstrap.connect(host: settings.host, port: settings.port).assumeIsolated().whenComplete { [self] result in
            switch result {
            case .success(let channel):
                guard let handler = try? channel.pipeline.syncOperations.handler(type: UpstreamClientHandler.self) else {
                    channel.close(promise: nil)
                    self.open -= 1
                    callback(.failure(UpstreamError(.connectFailed, "connection setup failed", requestNotSent: true)))
                    return
                }
                let connection = UpstreamConnection(channel: channel, handler: handler)
                handler.onClosed = { [weak self, weak connection] in
                    guard let self else { return }
                    self.open -= 1
                    if let connection { self.forget(connection) }
                    self.serveWaiter()
                }
                // Strong on purpose: nobody else may hold the connection between exchanges. The
                // cycle (connection -> handler -> closure) is broken when the channel closes.
                handler.onReusable = { [weak self] in
                    self?.release(connection)
                }
                callback(.success(connection))
            case .failure(let error):
                self.open -= 1
                callback(.failure(Self.classify(error, settings)))
                self.serveWaiter()
            }
        }
    }

    private static func classify(_ error: any Error, _ settings: UpstreamSettings) -> UpstreamError {
        if let e = error as? ChannelError, case .connectTimeout = e {
            return UpstreamError(.connectTimeout, "\(settings.target) did not accept a connection within \(UpstreamClientHandler.describe(settings.connectTimeout))", requestNotSent: true)
        }
        var detail = "\(error)"
        if let io = error as? IOError { detail = io.description }
        if let many = error as? NIOConnectionError, let first = many.connectionErrors.first { detail = "\(first.error)" }
        return UpstreamError(.connectFailed, "\(settings.target) is unreachable: \(detail)", requestNotSent: true)
    }

    /// A connection finished an exchange and can carry another.
    private func release(_ connection: UpstreamConnection) {
        connection.hasBeenUsed = true
        if !waiters.isEmpty {
            let waiter = waiters.removeFirst()
            waiter.timer?.cancel()
            waiter.callback(.success(connection))
            return
        }
        connection.idleSince = .now()
        idle.append(connection)
        if sweep == nil { armSweep(at: connection.idleSince + keepalive) }
    }

    /// Closes the connections idle for longer than the keep-alive timeout (the oldest are first in
    /// the list: it is used most-recently-released last), then waits for the next one to expire.
    private func sweepIdle() {
        sweep = nil
        let expired = NIODeadline.now() - keepalive
        while let oldest = idle.first, oldest.idleSince <= expired {
            idle.removeFirst()
            oldest.channel.close(promise: nil)
        }
        if let oldest = idle.first { armSweep(at: oldest.idleSince + keepalive) }
    }

    private func armSweep(at deadline: NIODeadline) {
        sweep = eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [weak self] in self?.sweepIdle() }
    }

    private func forget(_ connection: UpstreamConnection) {
        idle.removeAll { $0 === connection }
    }

    /// A slot opened up: the first waiter gets a new connection.
    private func serveWaiter() {
        guard !waiters.isEmpty, open < waiters[0].settings.maxConnections else { return }
        let waiter = waiters.removeFirst()
        waiter.timer?.cancel()
        connect(waiter.settings, waiter.callback)
    }

    /// Closes every idle connection (shutdown, or the upstream changed).
    func closeIdle() {
        let old = idle
        idle.removeAll()
        sweep?.cancel()
        sweep = nil
        for c in old { c.channel.close(promise: nil) }
    }
}

/// The pools of all event loops, each created on and reachable only from its own loop.
final class UpstreamPools: Sendable {
    private let pools = NIOLockedValueBox<[ObjectIdentifier: NIOLoopBound<UpstreamPool>]>([:])
    let loopCount: Int

    init(group: any EventLoopGroup) {
        var count = 0
        for _ in group.makeIterator() { count += 1 }
        self.loopCount = max(1, count)
    }

    /// The pool of `loop`; must be called on that loop.
    func pool(for loop: any EventLoop) -> UpstreamPool? {
        loop.preconditionInEventLoop()
        let id = ObjectIdentifier(loop)
        return pools.withLockedValue { table in
            if let existing = table[id] { return existing.value }
            let pool = UpstreamPool(eventLoop: loop)
            table[id] = NIOLoopBound(pool, eventLoop: loop)
            return pool
        }
    }

    func closeIdle() {
        for (_, bound) in pools.withLockedValue({ $0 }) {
            bound.eventLoop.execute { bound.value.closeIdle() }
        }
    }
}
