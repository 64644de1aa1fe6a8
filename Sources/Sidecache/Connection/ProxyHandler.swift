import HTTPCaching
import HTTPWire
import NIOCore
import NIOHTTP1
import SidecacheConfig

/// The steps of one request, each choosing the next, as Varnish's `REQ_STEPS` and pingora's proxy
/// phases. `run` performs steps until one waits (for Redis, a fill, the upstream) or answers; the
/// callback that ends the wait resumes at the step it names.
///
///     admit ──▶ route ──┬──▶ lookUp ──┬──▶ use ──┬──▶ (fresh: served)
///     (rate limit;      │             │          ├──▶ (stale-while-revalidate: served, refreshed)
///      may wait for     │             │          └──▶ joinFill (validate)
///      Redis)           │             └──▶ joinFill ──┬──▶ (follower: waits; woken at use, lookUp,
///                       │                             │     joinFill, forward or fallBack)
///                       │                             ├──▶ lookUpL2 ──▶ use | fetch
///                       │                             └──▶ fetch ──▶ (CacheFill answers)
///                       ├──▶ forward ──▶ (ForwardExchange answers)
///                       └──▶ tunnel ──▶ (TunnelExchange answers)
///
/// `fallBack` answers a failed fill: a stored response when one may stand in, else the error.
/// Whatever answers, `complete` ends the request (access log, counts) and the connection takes
/// the next pipelined one.
enum RequestStep {
    case admit
    case route
    case lookUp(CompiledRoute)
    case use(CachedResponse, tier: CacheStatus.Tier?, now: CacheInstant)
    case joinFill(CacheTarget, validating: CachedResponse?)
    case lookUpL2(CacheTarget, validating: CachedResponse?)
    case fetch(CacheTarget, validating: CachedResponse?)
    case forward(CacheOutcome, CacheStatus)
    case tunnel
    case fallBack(UpstreamError)
}

/// A cacheable request's route and key, fixed once it is looked up.
struct CacheTarget {
    let route: CompiledRoute
    let key: CacheKey
}

/// One client connection: its NIO events, the `ConnectionState` they drive (pipelining, admission
/// waits, half-close, shutdown), and the `RequestStep`s of each request. Writing responses is in
/// `ProxyHandler+Responses.swift`; time-outs in `ProxyHandler+Timeouts.swift`.
///
/// A fresh hit is answered synchronously inside `channelRead`: no task, no lock held beyond the
/// store's dictionary lookup, and the stored body is written without a copy. Doing the pipelining
/// here instead of in NIO's `HTTPServerPipelineHandler` lets a hit write pre-encoded bytes below
/// the HTTP encoder, which the pipeline handler, expecting typed response parts, would not allow.
final class ProxyHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ClientRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let runtime: ProxyRuntime
    private(set) var context: ChannelHandlerContext?
    /// Confined to the connection's event loop, and never mutated across a call out of the
    /// handler: exclusivity is not checked at run time (it costs a runtime call per access).
    @exclusivity(unchecked) var state = ConnectionState<ActiveRequest, ClientRequestPart>()
    var deadlines = ClientDeadlines()
    private(set) var clientAddress = "-"
    private var timestamps = TimestampCache()
    private var logScratch: [UInt8] = []
    /// Set by `ClientPipeline`; a WebSocket upgrade removes these.
    var httpHandlers: ClientHTTPHandlers?
    /// The context of the HTTP encoder: writing through it sends bytes straight to the socket.
    var rawWriter: ChannelHandlerContext?
    /// A request head was decoded during the current socket read (for the header deadline).
    private var headInThisRead = false

    init(runtime: ProxyRuntime) {
        self.runtime = runtime
    }

    /// The request in progress.
    var request: ActiveRequest? { state.current }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if let remote = context.channel.remoteAddress { clientAddress = remote.ipAddress ?? "\(remote)" }
        startDeadlines(context: context)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        cancelDeadlines()
        self.context = nil
    }

    // MARK: - Connection events

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        received(unwrapInboundIn(data))
    }

    /// A part of a request, from the wire decoder (which calls this directly, not through the
    /// pipeline).
    func received(_ part: ClientRequestPart) {
        guard let context else { return }
        let isHead = part.isHead
        if isHead { headInThisRead = true }
        switch state.read(part, isHead: isHead) {
        case .process:
            process(part, context: context)
        case .hold(let pause):
            // A pipelined request: it waits for the current response, and reading pauses meanwhile.
            if pause { _ = context.channel.setOption(ChannelOptions.autoRead, value: false) }
        case .discard:
            break
        }
    }

    private func process(_ part: ClientRequestPart, context: ChannelHandlerContext) {
        switch part {
        case .head(let wire):
            start(wire, context: context)
        case .body(let buffer):
            request?.forward?.clientBody(buffer)
        case .end:
            guard let request else { return }
            request.requestEnded = true
            request.forward?.clientEnd()
            if request.responseEnded { complete(request) }
        }
    }

    /// Works off the queued pipelined requests once nothing is in progress.
    func drainQueue() {
        guard let context, state.beginDraining() else { return }
        defer { state.endDraining() }
        while true {
            switch state.nextStep() {
            case .process(let part):
                process(part, context: context)
            case .resumeReading:
                _ = context.channel.setOption(ChannelOptions.autoRead, value: true)
            case .respondMalformed(let error):
                respondMalformed(error, context: context)
                return
            case .close:
                context.close(promise: nil)
                return
            case .wait:
                return
            }
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            if state.quiesce() { context.close(promise: nil) }
            return
        }
        if let event = event as? ChannelEvent, event == .inputClosed {
            clientHalfClosed(context: context)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    /// The client shut its sending side: what it sent is answered, unless the request in progress is
    /// a tunnel, or a forward under `limits.client_half_close: abort` (as nginx does).
    private func clientHalfClosed(context: ChannelHandlerContext) {
        let action = state.inputClosed { r in
            switch r.exchange {
            case .tunnel: true
            case .forward: r.snapshot.configuration.limits.clientHalfClose == .abort
            case .fill, nil: false
            }
        }
        switch action {
        case .none:
            break
        case .close:
            context.close(promise: nil)
        case .abandonAndClose:
            request?.abandonExchanges()
            context.close(promise: nil)
        }
    }

    /// Requests the wire parser rejects (`WireError`: 400, or 414, 431, 501, 505), then the
    /// connection closes (the stream cannot be resynchronised). A request still in progress before
    /// the malformed one is answered first; the error answer follows it.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let parserError = error as? WireError else {
            context.fireErrorCaught(error)
            return
        }
        switch state.malformed(parserError, currentRequestEnded: request?.requestEnded ?? true) {
        case .respond:
            respondMalformed(parserError, context: context)
        case .deferred:
            break
        case .abandonCurrent:
            // The malformed bytes are the body of the request in progress (a short body, a bad
            // chunk): it can never end, so it is answered with the error now, or cut if its
            // response has started.
            guard let r = request else { return }
            r.abandonExchanges()
            if !r.responseStarted { r.status = UInt(parserError.status) }
            complete(r, drainingQueue: false)
            if r.responseStarted { context.close(promise: nil) } else { respondMalformed(parserError, context: context) }
        }
    }

    /// The error's status with `Connection: close`, then the connection closes.
    func respondMalformed(_ error: WireError, context: ChannelHandlerContext) {
        state.willClose()
        let status = HTTPResponseStatus(statusCode: error.status)
        var (headers, body) = Self.plainText(error.description, allocator: context.channel.allocator)
        headers.add(name: "Connection", value: "close")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { [self] _ in closeAfterLastResponse(context) }
    }

    /// The response being written is the last the connection carries.
    func closesAfter(_ r: ActiveRequest) -> Bool {
        state.closesAfter(keepAlive: r.keepAlive)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        readEnded(headCompleted: headInThisRead)
        headInThisRead = false
        request?.forward?.flushUpstream()
        context.fireChannelReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        // Backpressure: a slow client pauses reading from the upstream, and resumes it when drained.
        request?.upstreamReader?.setReading(context.channel.isWritable)
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        cancelDeadlines()
        if let request {
            request.abandonExchanges()
            // Counted and logged with what was sent (status 0 when nothing was): the client left.
            complete(request, drainingQueue: false)
        }
        context.fireChannelInactive()
    }

    // MARK: - The request steps

    private func start(_ wire: ParsedRequestHead, context: ChannelHandlerContext) {
        requestHeadArrived()
        let head = WireRequestDecoder.requestHead(wire)
        let config = runtime.current
        let requestID = head.headers.first(name: "x-request-id").flatMap { RequestIDGenerator.isAcceptable($0) ? RequestID(client: $0) : nil }
            ?? runtime.requestIDs.next()
        guard let uri = Self.originForm(head.uri, method: head.method) else {
            let r = ActiveRequest(head: head, wire: wire, uri: "/", config: config, routed: false, requestID: requestID, started: .now())
            state.begin(r)
            respondLocally(.badRequest, "bad request target", request: r, close: true)
            return
        }
        let r = ActiveRequest(head: head, wire: wire, uri: uri, config: config, routed: true, requestID: requestID, started: .now())
        state.begin(r)
        run(.admit, for: r)
    }

    /// Performs steps from `first` until one waits or answers, or the request is no longer current.
    func run(_ first: RequestStep, for r: ActiveRequest) {
        var step: RequestStep? = first
        while let next = step, state.isCurrent(r) {
            step = perform(next, r)
        }
    }

    private func perform(_ step: RequestStep, _ r: ActiveRequest) -> RequestStep? {
        switch step {
        case .admit: admit(r)
        case .route: route(r)
        case .lookUp(let route): lookUp(r, route: route)
        case .use(let entry, let tier, let now): use(entry, for: r, tier: tier, now: now)
        case .joinFill(let target, let validating): joinFill(r, target, validating: validating)
        case .lookUpL2(let target, let validating): lookUpL2(r, target, validating: validating)
        case .fetch(let target, let validating): fetch(r, target, validating: validating)
        case .forward(let outcome, let cacheStatus): forward(r, outcome: outcome, cacheStatus: cacheStatus)
        case .tunnel: tunnel(r)
        case .fallBack(let error): fallBack(r, error)
        }
    }

    /// The head's rules, then the route's rate limit; a shared limit waits for Redis.
    private func admit(_ r: ActiveRequest) -> RequestStep? {
        let snapshot = r.snapshot
        // The wire parser refused a wrong number of Host fields and a head over max_header_bytes
        // already; what is left is the Host's syntax.
        if let rejection = RequestHeadRules.checkHost(r.head) {
            respondLocally(rejection.status, rejection.message, request: r, close: true)
            return nil
        }
        guard let limiter = r.limiter else { return .route }
        let key = limiter.key(for: r.head, peer: clientAddress, trusted: snapshot.configuration.trustedProxies)
        if limiter.settings.scope == .redis, let tier = runtime.redisTier, let context {
            admitShared(r, limiter: limiter, key: key, tier: tier, context: context)
            return nil
        }
        return admit(r, limiter.decideLocally(key: key), limiter: limiter, key: key) ? .route : nil
    }

    /// A tunnel, the cache, or the upstream.
    private func route(_ r: ActiveRequest) -> RequestStep? {
        let head = r.head
        let route = r.route
        if UpstreamRequest.isWebSocketUpgrade(r.wire) { return .tunnel }
        let readsCache = head.method == .GET || head.method == .HEAD
        if let route, route.cacheEnabled, readsCache {
            // A range of a GET is cut from the stored representation; HEAD has no range handling
            // (RFC 9110 §14.2), so its Range is ignored.
            if head.method == .GET { r.range = head.headers.first(name: "range") }
            return .lookUp(route)
        }
        let reason: CacheStatus.Forward = route?.cacheEnabled == false ? .bypass : (readsCache ? (route == nil ? .bypass : .request) : .method)
        return .forward(.bypass, .forwarded(reason))
    }

    /// The memory cache. A client asking for a validated answer gets one from the origin, not from L2.
    private func lookUp(_ r: ActiveRequest, route: CompiledRoute) -> RequestStep? {
        let key = route.keyPolicy.key(host: r.head.headers.first(name: "host") ?? "", path: r.path, query: r.query, headers: r.head.headers)
        r.key = key
        r.asksRevalidation = route.policy.honorClientNoCache && ConditionalRequest.clientAsksRevalidation(r.head.headers)
        if r.asksRevalidation { r.l2Checked = true }
        let now = runtime.now()
        guard let entry = runtime.store.lookup(key, requestHeaders: r.head.headers, now: now) else {
            return .joinFill(CacheTarget(route: route, key: key), validating: nil)
        }
        return .use(entry, tier: nil, now: now)
    }

    /// Serves a stored entry fresh, or stale while refreshing it, or validates it first.
    private func use(_ entry: CachedResponse, for r: ActiveRequest, tier: CacheStatus.Tier?, now: CacheInstant) -> RequestStep? {
        switch CacheDecision.use(entry, at: now, clientAsksRevalidation: r.asksRevalidation, tier: tier) {
        case .serveFresh(let status):
            r.outcome = .hit
            serve(entry, to: r, cacheStatus: status, now: now)
            if let warmer = r.warmer { warmed(entry, for: r, by: warmer, now: now) }
            return nil
        case .serveStaleAndRefresh(let status):
            r.outcome = .stale
            serve(entry, to: r, cacheStatus: status, now: now)
            if let warmer = r.warmer { warmed(entry, for: r, by: warmer, now: now) }
            if let target = r.cacheTarget { refreshInBackground(r, target, entry: entry) }
            return nil
        case .validate:
            r.stale = entry
            return r.cacheTarget.map { .joinFill($0, validating: entry) }
        }
    }

    /// One fill per key: the first request leads it, the others wait for its result.
    private func joinFill(_ r: ActiveRequest, _ target: CacheTarget, validating: CachedResponse?) -> RequestStep? {
        guard let context else { return nil }
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let requestID = ObjectIdentifier(r)
        let waiter = FillCoalescer.Waiter { result in
            bound.eventLoop.execute { bound.value.fillDelivered(result, to: requestID) }
        }
        switch runtime.coalescer.join(target.key.value, waiter: waiter) {
        case .follower:
            r.outcome = .coalesced
            return nil
        case .leader:
            r.outcome = validating == nil ? .miss : .revalidated
            guard !r.l2Checked, runtime.sharedTier != nil else { return .fetch(target, validating: validating) }
            return .lookUpL2(target, validating: validating)
        }
    }

    /// The leader of a miss asks Redis before the upstream; the followers keep waiting meanwhile, so
    /// N concurrent misses make one Redis lookup and at most one upstream request.
    private func lookUpL2(_ r: ActiveRequest, _ target: CacheTarget, validating: CachedResponse?) -> RequestStep? {
        guard let tier = runtime.sharedTier, let loop = context?.eventLoop else { return .fetch(target, validating: validating) }
        r.l2Checked = true
        let key = target.key
        tier.lookup(key, requestHeaders: r.head.headers, now: runtime.now(), on: loop) { [self] found in
            var usable = found
            // An L2 copy no newer than the stale one in L1 is of no help.
            if let found, let validating, found.responseTime <= validating.responseTime { usable = nil }
            guard let entry = usable else {
                if state.isCurrent(r) {
                    run(.fetch(target, validating: validating), for: r)
                } else {
                    runtime.coalescer.finish(key.value, with: .retry)  // the client left; wake the followers
                }
                return
            }
            runtime.store.store(entry, for: key)
            let now = runtime.now()
            let servable = CacheDecision.isServable(entry, at: now)
            guard state.isCurrent(r) else {
                runtime.coalescer.finish(key.value, with: servable ? .entry(entry) : .retry)
                return
            }
            if servable {
                runtime.coalescer.finish(key.value, with: .entry(entry))
                run(.use(entry, tier: .l2, now: now), for: r)
            } else {
                // Stale beyond serving: this request stays the leader and validates it.
                r.stale = entry
                r.outcome = .revalidated
                run(.fetch(target, validating: entry), for: r)
            }
        }
        return nil
    }

    /// The leader goes to the upstream; the fill answers it and wakes the followers.
    private func fetch(_ r: ActiveRequest, _ target: CacheTarget, validating: CachedResponse?) -> RequestStep? {
        guard let context else { return nil }
        let fill = CacheFill(runtime: runtime, key: target.key, route: target.route, request: r, owner: self, clientAddress: clientAddress,
                             validating: validating, eventLoop: context.eventLoop)
        r.exchange = .fill(fill)
        fill.start()
        return nil
    }

    /// On a warm route: the key's hotness, and a refresh ahead of expiry when it is due.
    private func warmed(_ entry: CachedResponse, for r: ActiveRequest, by warmer: Warmer, now: CacheInstant) {
        guard let route = r.route, let key = r.key else { return }
        warmer.served(entry, key: key, route: route, warm: route.warm, request: r, now: now)
    }

    /// Stale-while-revalidate: one background refresh per key. With Redis, L2 first: another
    /// instance may have refreshed the key already, and its copy then replaces this one without
    /// an origin request.
    private func refreshInBackground(_ r: ActiveRequest, _ target: CacheTarget, entry: CachedResponse) {
        guard let context, runtime.coalescer.join(target.key.value, waiter: nil) == .leader else { return }
        let loop = context.eventLoop
        let fill = { [runtime, clientAddress] in
            CacheFill(runtime: runtime, key: target.key, route: target.route, request: r, owner: nil, clientAddress: clientAddress,
                      validating: entry, eventLoop: loop).start()
        }
        guard let tier = runtime.sharedTier else { return fill() }
        tier.lookup(target.key, requestHeaders: r.head.headers, now: runtime.now(), on: loop) { [runtime] found in
            guard let found, found.responseTime > entry.responseTime, case .fresh = found.freshness(at: runtime.now()) else { return fill() }
            runtime.store.store(found, for: target.key)
            runtime.coalescer.finish(target.key.value, with: .entry(found))
        }
    }

    /// A fill this request waited on has finished: a follower resumes here.
    private func fillDelivered(_ result: FillResult, to requestID: ObjectIdentifier) {
        guard let r = request, ObjectIdentifier(r) == requestID, !r.responseStarted, let target = r.cacheTarget else { return }
        let route = target.route
        switch result {
        case .entry(let entry):
            if entry.matchesVariant(of: r.head.headers) {
                r.outcome = .coalesced
                serve(entry, to: r, cacheStatus: .forwarded(.miss, collapsed: true), now: runtime.now())
            } else {
                run(.joinFill(target, validating: nil), for: r)
            }
        case .uncacheable:
            run(.forward(.miss, .forwarded(.miss, collapsed: true, detail: .uncacheable)), for: r)
        case .retry:
            run(.lookUp(route), for: r)
        case .failed(let error):
            run(.fallBack(error), for: r)
        }
    }

    /// The upstream failed for a fill: a stored response when one may stand in, else 502/503/504.
    private func fallBack(_ r: ActiveRequest, _ error: UpstreamError) -> RequestStep? {
        let now = runtime.now()
        if let stale = r.stale,
           let status = CacheDecision.staleInsteadOfError(stale, at: now, upstreamRefused: error.kind == .circuitOpen, failure: error.kind.rawValue) {
            r.outcome = .stale
            serve(stale, to: r, cacheStatus: status, now: now)
        } else {
            respondUpstreamError(error, to: r)
        }
        return nil
    }

    /// Uncached: the request and its response stream through.
    private func forward(_ r: ActiveRequest, outcome: CacheOutcome, cacheStatus: CacheStatus) -> RequestStep? {
        guard let context else { return nil }
        r.outcome = outcome
        let exchange = ForwardExchange(client: self, runtime: runtime, request: r, eventLoop: context.eventLoop, clientAddress: clientAddress,
                                       cacheStatus: cacheStatus)
        r.exchange = .forward(exchange)
        exchange.start()
        return nil
    }

    private func tunnel(_ r: ActiveRequest) -> RequestStep? {
        r.outcome = .bypass
        let tunnel = TunnelExchange(handler: self, request: r, clientAddress: clientAddress)
        r.exchange = .tunnel(tunnel)
        tunnel.start()
        return nil
    }

    func serveStaleOrError(_ error: UpstreamError, to r: ActiveRequest) {
        run(.fallBack(error), for: r)
    }

    func forwardInstead(_ r: ActiveRequest, cacheStatus: CacheStatus) {
        run(.forward(.miss, cacheStatus), for: r)
    }

    /// Origin-form of the target; absolute-form (RFC 9112 §3.2.2) is reduced to path and query.
    static func originForm(_ uri: String, method: HTTPMethod) -> String? {
        if uri.utf8.first == UInt8(ascii: "/") { return uri }
        if uri == "*" && method == .OPTIONS { return uri }
        return RequestTarget(uri).map { String($0.originForm) }
    }

    // MARK: - Completion

    /// The request is over on both sides: log it and make room for the next.
    func complete(_ r: ActiveRequest, drainingQueue: Bool = true) {
        guard state.complete(r) else { return }
        r.exchange = nil
        let finished = NIODeadline.now()
        runtime.recordCompleted(r, finishedAt: finished)
        if let warmer = r.warmer, let warm = r.route?.warm, (200..<300).contains(r.status) {
            if !warm.prefetch.isEmpty { warmer.prefetchDeclared(after: r) }
            if warm.predict != .off { warmer.predictNext(after: r, peer: clientAddress) }
        }
        if runtime.accessLogEnabled {
            let total = (finished - r.started).nanoseconds / 1000
            runtime.accessLog.write(AccessRecord(
                requestID: r.requestID, method: r.head.method, path: r.path, route: r.route?.name, status: r.status,
                outcome: r.outcome, upstreamMicroseconds: r.upstreamMicroseconds, totalMicroseconds: total, bytes: r.bytes,
                client: clientAddress
            ), time: .now(), timestamps: &timestamps, scratch: &logScratch)
        }
        if drainingQueue { drainQueue() }
    }

    /// A tunnel took the connection over: the HTTP request is done.
    func tunnelEstablished(_ r: ActiveRequest) {
        r.responseEnded = true
        r.requestEnded = true
        complete(r)
    }
}

