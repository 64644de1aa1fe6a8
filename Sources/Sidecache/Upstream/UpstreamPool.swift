import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import SidecacheConfig
import Synchronization

/// One keep-alive HTTP/1.1 connection to the upstream.
final class UpstreamConnection {
    /// Where the connection is in the pool's accounting. Every connection ends in `closed`, reached
    /// once, from its channel's close future (which completes for every close, even one made before
    /// NIO fired `channelActive`, when no `channelInactive` follows).
    enum Phase {
        /// Opening for, or lent to, one exchange (counted in `inUse`).
        case leased
        /// In the idle list, ready to be lent.
        case idle
        case closed
    }

    let channel: any Channel
    let handler: UpstreamClientHandler
    /// The channel's socket options (found once: a dynamic cast per request would cost more).
    let socketOptions: (any SocketOptionProvider)?
    /// True once it has carried a request: a failure before the response head may then be the
    /// upstream closing an idle connection, which a retry on a new connection fixes.
    var hasBeenUsed = false
    fileprivate(set) var phase = Phase.leased
    /// When it last went back to the idle list.
    fileprivate var idleSince = NIODeadline.distantPast

    init(channel: any Channel, handler: UpstreamClientHandler) {
        self.channel = channel
        self.handler = handler
        self.socketOptions = channel as? any SocketOptionProvider
    }

    /// The kernel already holds the upstream's FIN (TCP CLOSE-WAIT) or a reset: the connection
    /// cannot carry a request. One getsockopt(TCP_INFO), cheaper than a request that fails.
    var peerHasClosed: Bool {
        #if os(Linux)
        guard let socketOptions else { return false }
        // On the channel's loop the option is read at once: the future is already complete.
        var state: UInt8?
        socketOptions.getTCPInfo().assumeIsolated().whenSuccess { state = $0.tcpi_state }
        return state.map { $0 != Self.tcpEstablished } ?? false
        #else
        return false
        #endif
    }

    /// `TCP_ESTABLISHED` of <netinet/tcp.h>.
    private static let tcpEstablished: UInt8 = 1
}

/// The pool's counts, kept in atomics so `/stats` and the tests read them from any thread while
/// the pool, on its own loop, changes them. A gauge is written only by its pool.
final class UpstreamPoolGauges: Sendable {
    /// Connections opening or open (the slots `max_connections` bounds).
    let open = Atomic<Int>(0)
    /// Connections opening for an exchange or lent to one (`open` is always `inUse + idle`).
    let inUse = Atomic<Int>(0)
    let idle = Atomic<Int>(0)
    /// Exchanges waiting for a slot.
    let waiting = Atomic<Int>(0)

    var counts: UpstreamPoolCounts {
        UpstreamPoolCounts(open: open.load(ordering: .relaxed), inUse: inUse.load(ordering: .relaxed),
                           idle: idle.load(ordering: .relaxed), waiting: waiting.load(ordering: .relaxed))
    }
}

/// The pools' counts summed over the event loops.
public struct UpstreamPoolCounts: Sendable, Equatable {
    public var open = 0
    public var inUse = 0
    public var idle = 0
    public var waiting = 0

    public init(open: Int = 0, inUse: Int = 0, idle: Int = 0, waiting: Int = 0) {
        self.open = open
        self.inUse = inUse
        self.idle = idle
        self.waiting = waiting
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
///
/// A slot is taken when a connection starts opening and given back when its channel's close future
/// completes, whoever closed it and however: that is the one place `open` goes down, so no end of
/// an exchange (a client that left, an upstream that reset, a time-out, an abort before NIO
/// announced the channel active) can leak a slot. A lease ends when the handler says the
/// connection is reusable (`release`) or when it closes.
final class UpstreamPool {
    typealias Callback = (Result<UpstreamConnection, UpstreamError>) -> Void

    private final class Waiter {
        let settings: UpstreamSettings
        /// Waits for a new connection, never a released one.
        let fresh: Bool
        let checkPeer: Bool
        let callback: Callback
        var timer: Scheduled<Void>?
        init(settings: UpstreamSettings, fresh: Bool, checkPeer: Bool, callback: @escaping Callback) {
            self.settings = settings
            self.fresh = fresh
            self.checkPeer = checkPeer
            self.callback = callback
        }
    }

    let eventLoop: any EventLoop
    let gauges = UpstreamPoolGauges()
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
    /// when one is released. `fresh` asks for a new connection (the retry of a request that met a
    /// kept-alive one closing: the other idle ones may be closing too); at the limit, an idle
    /// connection is closed to make room.
    ///
    /// `checkPeer` asks the kernel whether the upstream closed an idle connection before lending
    /// it (one getsockopt, about 5% of a proxied request). A caller that retries a request on a new
    /// connection when a kept-alive one turns out closed (a first attempt that can be replayed)
    /// passes false, as nginx does: that race costs it a retry, not an error.
    func acquire(_ settings: UpstreamSettings, fresh: Bool = false, checkPeer: Bool = true, _ callback: @escaping Callback) {
        eventLoop.preconditionInEventLoop()
        keepalive = settings.keepaliveTimeout
        if target != settings.target {
            // The upstream moved (config reload): idle connections to the old one are dropped.
            target = settings.target
            closeIdle()
        }
        if !fresh, let c = takeIdle(checkPeer: checkPeer) {
            callback(.success(c))
            return
        }
        if open < settings.maxConnections {
            connect(settings, callback)
            return
        }
        if fresh, !idle.isEmpty {
            // Its close frees a slot, which the waiter below is first in line for.
            retire(idle.removeFirst())
        }
        let waiter = Waiter(settings: settings, fresh: fresh, checkPeer: checkPeer, callback: callback)
        waiter.timer = eventLoop.assumeIsolated().scheduleTask(in: settings.connectTimeout) { [weak self, weak waiter] in
            guard let self, let waiter, let i = self.waiters.firstIndex(where: { $0 === waiter }) else { return }
            self.waiters.remove(at: i)
            self.gauges.waiting.wrappingSubtract(1, ordering: .relaxed)
            waiter.callback(.failure(UpstreamError(.poolExhausted, "has all \(settings.maxConnections) connections of this worker busy", requestNotSent: true)))
        }
        waiters.append(waiter)
        gauges.waiting.wrappingAdd(1, ordering: .relaxed)
    }

    /// The most recently released idle connection that is still open and was not closed by the
    /// upstream meanwhile (an upstream may close right after its last byte, before the EOF is read),
    /// when `checkPeer` asks.
    private func takeIdle(checkPeer: Bool) -> UpstreamConnection? {
        while let c = idle.popLast() {
            guard c.channel.isActive, c.handler.isIdle, !(checkPeer && c.peerHasClosed) else {
                retire(c)
                continue
            }
            gauges.idle.wrappingSubtract(1, ordering: .relaxed)
            lease(c)
            return c
        }
        return nil
    }

    /// Closes a connection taken off the idle list; its close future gives the slot back.
    private func retire(_ c: UpstreamConnection) {
        gauges.idle.wrappingSubtract(1, ordering: .relaxed)
        c.phase = .leased  // counted as in use until the close future counts it out
        gauges.inUse.wrappingAdd(1, ordering: .relaxed)
        c.channel.close(promise: nil)
    }

    private func lease(_ c: UpstreamConnection) {
        c.phase = .leased
        gauges.inUse.wrappingAdd(1, ordering: .relaxed)
    }

    private func connect(_ settings: UpstreamSettings, _ callback: @escaping Callback) {
        open += 1
        gauges.open.wrappingAdd(1, ordering: .relaxed)
        gauges.inUse.wrappingAdd(1, ordering: .relaxed)
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(settings.connectTimeout)
            .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    // Sidecache's strict response decoder (interim 1xx responses handed on, RFC 9110
                    // §15.2) and the client handler, which writes requests as bytes: every field sent
                    // upstream was parsed from the client by the strict parser, built here from
                    // validated parts (addresses, request ids), or read from a stored entry whose
                    // codec refuses CR, LF and NUL.
                    let decoder = WireResponseDecoder()
                    try channel.pipeline.syncOperations.addHandlers([decoder, UpstreamClientHandler(responseDecoder: decoder)])
                }
            }
        bootstrap.connect(host: settings.host, port: settings.port).assumeIsolated().whenComplete { [self] result in
            switch result {
            case .success(let channel):
                guard let handler = try? channel.pipeline.syncOperations.handler(type: UpstreamClientHandler.self) else {
                    channel.closeFuture.assumeIsolated().whenComplete { _ in
                        self.gauges.inUse.wrappingSubtract(1, ordering: .relaxed)
                        self.slotFreed()
                    }
                    channel.close(promise: nil)
                    callback(.failure(UpstreamError(.connectFailed, "connection setup failed", requestNotSent: true)))
                    return
                }
                let connection = UpstreamConnection(channel: channel, handler: handler)
                channel.closeFuture.assumeIsolated().whenComplete { [self] _ in self.closed(connection) }
                // The handler holds the connection strongly on purpose: nobody else may hold it
                // between exchanges. The cycle is broken when the channel closes.
                handler.onReusable = { [weak self] in
                    self?.release(connection)
                }
                callback(.success(connection))
            case .failure(let error):
                gauges.inUse.wrappingSubtract(1, ordering: .relaxed)
                slotFreed()
                callback(.failure(Self.classify(error, settings)))
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
        guard connection.phase == .leased else { return }
        connection.hasBeenUsed = true
        connection.phase = .idle
        gauges.inUse.wrappingSubtract(1, ordering: .relaxed)
        gauges.idle.wrappingAdd(1, ordering: .relaxed)
        connection.idleSince = eventLoop.now
        idle.append(connection)
        if sweep == nil { armSweep(at: connection.idleSince + keepalive) }
        if !waiters.isEmpty {
            // Handed on once this read is over, not inside it: an upstream that closed right after
            // its last byte has then had its FIN read (or seen by `takeIdle`), and the waiter gets
            // a live connection instead of one that fails before responding.
            eventLoop.assumeIsolated().execute { self.handIdleToWaiter() }
        }
    }

    private func handIdleToWaiter() {
        guard let first = waiters.first else { return }
        if first.fresh {
            // It needs a new connection: closing an idle one frees the slot it is first in line for.
            if let c = idle.popLast() { retire(c) }
            return
        }
        guard let connection = takeIdle(checkPeer: first.checkPeer) else { return }
        let waiter = waiters.removeFirst()
        gauges.waiting.wrappingSubtract(1, ordering: .relaxed)
        waiter.timer?.cancel()
        waiter.callback(.success(connection))
    }

    /// The channel closed: its lease (or its place in the idle list) and its slot are given back.
    private func closed(_ connection: UpstreamConnection) {
        switch connection.phase {
        case .leased:
            gauges.inUse.wrappingSubtract(1, ordering: .relaxed)
        case .idle:
            idle.removeAll { $0 === connection }
            gauges.idle.wrappingSubtract(1, ordering: .relaxed)
        case .closed:
            return
        }
        connection.phase = .closed
        connection.handler.onReusable = nil
        slotFreed()
    }

    /// A slot opened up: the first waiter gets a new connection.
    private func slotFreed() {
        open -= 1
        gauges.open.wrappingSubtract(1, ordering: .relaxed)
        guard !waiters.isEmpty, open < waiters[0].settings.maxConnections else { return }
        let waiter = waiters.removeFirst()
        gauges.waiting.wrappingSubtract(1, ordering: .relaxed)
        waiter.timer?.cancel()
        connect(waiter.settings, waiter.callback)
    }

    /// Closes the connections idle for longer than the keep-alive timeout (the oldest are first in
    /// the list: it is used most-recently-released last), then waits for the next one to expire.
    private func sweepIdle() {
        sweep = nil
        let expired = eventLoop.now - keepalive
        for c in idle where c.idleSince <= expired { c.channel.close(promise: nil) }
        if let oldest = idle.first(where: { $0.idleSince > expired }) { armSweep(at: oldest.idleSince + keepalive) }
    }

    private func armSweep(at deadline: NIODeadline) {
        sweep = eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [weak self] in self?.sweepIdle() }
    }

    /// Closes every idle connection (shutdown, or the upstream changed).
    func closeIdle() {
        sweep?.cancel()
        sweep = nil
        for c in idle { c.channel.close(promise: nil) }
    }
}

/// The pools of all event loops, each created on and reachable only from its own loop.
final class UpstreamPools: Sendable {
    private let pools = NIOLockedValueBox<[ObjectIdentifier: PoolEntry]>([:])

    private struct PoolEntry: Sendable {
        let bound: NIOLoopBound<UpstreamPool>
        let gauges: UpstreamPoolGauges
    }
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
            if let existing = table[id] { return existing.bound.value }
            let pool = UpstreamPool(eventLoop: loop)
            table[id] = PoolEntry(bound: NIOLoopBound(pool, eventLoop: loop), gauges: pool.gauges)
            return pool
        }
    }

    func closeIdle() {
        for bound in pools.withLockedValue({ $0.values.map(\.bound) }) {
            bound.eventLoop.execute { bound.value.closeIdle() }
        }
    }

    /// The counts of every loop's pool, summed; readable from any thread.
    public var counts: UpstreamPoolCounts {
        var total = UpstreamPoolCounts()
        for gauges in pools.withLockedValue({ $0.values.map { $0.gauges } }) {
            let c = gauges.counts
            total.open += c.open
            total.inUse += c.inUse
            total.idle += c.idle
            total.waiting += c.waiting
        }
        return total
    }
}
