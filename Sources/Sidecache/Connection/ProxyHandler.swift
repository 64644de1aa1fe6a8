import HTTPCaching
import NIOCore
import NIOHTTP1
import SidecacheConfig

/// The request path of one client connection: route, cache lookup, coalesced fill or forwarding,
/// and writing the response. A fresh hit is answered synchronously inside `channelRead`: no task,
/// no lock held beyond the store's dictionary lookup, and the stored body is written without a copy.
///
/// Requests are handled one at a time: pipelined requests that arrive while one is in progress wait
/// in `queued` (and reading pauses) until its response is written, the job NIO's
/// `HTTPServerPipelineHandler` would do. Doing it here lets a hit write pre-encoded bytes below
/// the HTTP encoder, which the pipeline handler, expecting typed response parts, would not allow.
final class ProxyHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let runtime: ProxyRuntime
    private(set) var context: ChannelHandlerContext?
    var request: ActiveRequest?
    var deadlines = ClientDeadlines()
    private var clientAddress = "-"
    private var timestamps = TimestampCache()
    private var logScratch: [UInt8] = []
    /// Set by `ClientPipeline`; a WebSocket upgrade removes these.
    var httpHandlers: ClientHTTPHandlers?
    /// The context of the HTTP encoder: writing through it sends bytes straight to the socket.
    var rawWriter: ChannelHandlerContext?
    /// Parts of pipelined requests that arrived while another request was in progress.
    var queued: [HTTPServerRequestPart] = []
    private var draining = false
    private var pausedForQueue = false
    /// Shutting down: close once the request in progress (if any) is answered.
    private var quiescing = false
    /// The client half-closed (or closed: on a read the two look alike): no request follows the
    /// ones already received, which are still answered; then the connection closes.
    private(set) var inputClosed = false
    /// A malformed request followed the one in progress: its error answer is owed after it.
    var pendingParseError: HTTPParserError?
    /// The request in progress waits for a shared rate-limit decision: its parts wait in `queued`.
    var awaitingAdmission = false
    /// A request head was decoded during the current socket read (for the header deadline).
    private var headInThisRead = false

    init(runtime: ProxyRuntime) {
        self.runtime = runtime
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if let remote = context.channel.remoteAddress { clientAddress = remote.ipAddress ?? "\(remote)" }
        startDeadlines(context: context)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        cancelDeadlines()
        self.context = nil
    }

    // MARK: - Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        if part.isHead { headInThisRead = true }
        if !queued.isEmpty || awaitingAdmission || (request != nil && part.isHead) {
            // A pipelined request: it waits for the current response, and reading pauses meanwhile.
            queued.append(part)
            if !pausedForQueue {
                pausedForQueue = true
                _ = context.channel.setOption(ChannelOptions.autoRead, value: false)
            }
            return
        }
        process(part, context: context)
    }

    private func process(_ part: HTTPServerRequestPart, context: ChannelHandlerContext) {
        switch part {
        case .head(let head):
            start(head, context: context)
        case .body(let buffer):
            request?.forward?.clientBody(buffer)
        case .end:
            guard let request else { return }
            request.requestEnded = true
            request.forward?.clientEnd()
            if request.responseEnded { complete(request) }
        }
    }

    /// Runs the queued pipelined requests once nothing is in progress.
    func drainQueue() {
        guard !draining, !awaitingAdmission, let context else { return }
        draining = true
        defer { draining = false }
        // Feed parts until the next request's head meets a request still in progress; the body and
        // end of the request just started belong to it and go through at once.
        while let next = queued.first, request == nil || !next.isHead {
            queued.removeFirst()
            process(next, context: context)
        }
        guard queued.isEmpty else { return }
        if pausedForQueue && pendingParseError == nil && !inputClosed {
            pausedForQueue = false
            _ = context.channel.setOption(ChannelOptions.autoRead, value: true)
        }
        guard request == nil else { return }
        if let error = pendingParseError {
            pendingParseError = nil
            respondMalformed(error, context: context)
        } else if quiescing || inputClosed {
            context.close(promise: nil)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            quiescing = true
            if request == nil && queued.isEmpty { context.close(promise: nil) }
            return
        }
        if let event = event as? ChannelEvent, event == .inputClosed {
            clientHalfClosed(context: context)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    /// The client shut its sending side. What it sent is answered (RFC 9112 §9.6 lets a client
    /// half-close after its last request), unless `limits.client_half_close: abort` asks to abandon
    /// a request being forwarded uncached, as nginx does.
    private func clientHalfClosed(context: ChannelHandlerContext) {
        inputClosed = true
        guard let r = request else {
            if queued.isEmpty && pendingParseError == nil { context.close(promise: nil) }
            return
        }
        let abandons = r.tunnel != nil
            || (r.forward != nil && r.snapshot.configuration.limits.clientHalfClose == .abort)
        if abandons {
            r.abandonExchanges()
            queued.removeAll()
            context.close(promise: nil)
        }
    }

    /// The response being written is the last the connection carries: the client sends no more,
    /// shutdown is under way, or the request asked to close.
    func closesAfter(_ r: ActiveRequest) -> Bool {
        !r.keepAlive || quiescing || (inputClosed && pendingParseError == nil && !queued.contains { $0.isHead })
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

    private func start(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        requestHeadArrived()
        let config = runtime.current
        let snapshot = config.snapshot
        let requestID = head.headers.first(name: "x-request-id").flatMap { RequestIDGenerator.isAcceptable($0) ? RequestID(client: $0) : nil }
            ?? runtime.requestIDs.next()
        guard let uri = Self.originForm(head.uri, method: head.method) else {
            let r = ActiveRequest(head: head, uri: "/", config: config, routed: false, requestID: requestID, started: .now())
            request = r
            respondLocally(.badRequest, "bad request target", request: r, close: true)
            return
        }
        let r = ActiveRequest(head: head, uri: uri, config: config, routed: true, requestID: requestID, started: .now())
        let route = r.route
        request = r
        if let rejection = RequestHeadRules.check(head, maxHeaderBytes: snapshot.configuration.limits.maxHeaderBytes) {
            respondLocally(rejection.status, rejection.message, request: r, close: true)
            return
        }
        if let route, let limiter = config.limiters.limiter(for: route) {
            let key = limiter.key(for: head, peer: clientAddress, trusted: snapshot.configuration.trustedProxies)
            if limiter.settings.scope == .redis, let tier = runtime.redisTier {
                admitShared(r, limiter: limiter, key: key, tier: tier, context: context)
                return
            }
            guard admit(r, limiter.decideLocally(key: key), limiter: limiter, key: key) else { return }
        }
        dispatch(r)
    }

    /// Routes an admitted request: a tunnel, the cache, or the upstream.
    func dispatch(_ r: ActiveRequest) {
        let head = r.head
        let route = r.route
        if UpstreamRequest.isWebSocketUpgrade(head) {
            r.outcome = .bypass
            let tunnel = TunnelExchange(handler: self, request: r, clientAddress: clientAddress)
            r.tunnel = tunnel
            tunnel.start()
            return
        }
        if let route, route.cacheEnabled, head.method == .GET || head.method == .HEAD, !head.headers.contains(name: "range") {
            handleCacheable(r, route: route)
        } else {
            let reason: CacheStatus.Forward = route?.cacheEnabled == false ? .bypass
                : (head.method == .GET || head.method == .HEAD ? (route == nil ? .bypass : .request) : .method)
            forward(r, outcome: .bypass, cacheStatus: .forwarded(reason))
        }
    }

    /// Origin-form of the target; absolute-form (RFC 9112 §3.2.2) is reduced to path and query.
    static func originForm(_ uri: String, method: HTTPMethod) -> String? {
        if uri.utf8.first == UInt8(ascii: "/") { return uri }
        if uri == "*" && method == .OPTIONS { return uri }
        return RequestTarget(uri).map { String($0.originForm) }
    }


    // MARK: - Cache

    private func handleCacheable(_ r: ActiveRequest, route: CompiledRoute) {
        let key = route.keyPolicy.key(host: r.head.headers.first(name: "host") ?? "", path: r.path, query: r.query, headers: r.head.headers)
        r.key = key
        let now = runtime.now()
        let forceRevalidate = route.policy.honorClientNoCache && ConditionalRequest.clientAsksRevalidation(r.head.headers)
        // A client asking for a revalidated answer gets one from the origin, not from L2.
        if forceRevalidate { r.l2Checked = true }
        guard let entry = runtime.store.lookup(key, requestHeaders: r.head.headers, now: now) else {
            fill(r, route: route, key: key, validating: nil)
            return
        }
        use(entry, for: r, route: route, key: key, now: now, forceRevalidate: forceRevalidate, fromL2: false)
    }

    /// Serves a stored entry fresh, or stale while refreshing it, or revalidates it first.
    /// `fromL2` adds `; tier=l2` to `Cache-Status` (an entry just read from Redis).
    private func use(_ entry: CachedResponse, for r: ActiveRequest, route: CompiledRoute, key: CacheKey, now: CacheInstant,
                     forceRevalidate: Bool, fromL2: Bool) {
        switch entry.freshness(at: now) {
        case .fresh(let remaining) where !forceRevalidate:
            r.outcome = .hit
            serve(entry, to: r, cacheStatus: .hit(ttl: remaining.seconds, tier: fromL2 ? .l2 : nil), now: now)
        case .stale(let staleness) where !forceRevalidate && entry.isWithinStaleWhileRevalidate(at: now):
            r.outcome = .stale
            serve(entry, to: r, cacheStatus: .hit(ttl: -max(1, staleness.seconds), detail: .staleWhileRevalidate, tier: fromL2 ? .l2 : nil), now: now)
            refreshInBackground(r, route: route, key: key, entry: entry)
        default:
            r.stale = entry
            fill(r, route: route, key: key, validating: entry)
        }
    }

    private func fill(_ r: ActiveRequest, route: CompiledRoute, key: CacheKey, validating: CachedResponse?) {
        guard let context else { return }
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let requestID = ObjectIdentifier(r)
        let waiter = FillCoalescer.Waiter { result in
            bound.eventLoop.execute { bound.value.fillDelivered(result, to: requestID) }
        }
        switch runtime.coalescer.join(key.value, waiter: waiter) {
        case .follower:
            r.outcome = .coalesced
        case .leader:
            r.outcome = validating == nil ? .miss : .revalidated
            if !r.l2Checked, let tier = runtime.redisTier {
                r.l2Checked = true
                lookUpL2(tier, for: r, route: route, key: key, validating: validating, context: context)
            } else {
                fetch(r, route: route, key: key, validating: validating, eventLoop: context.eventLoop)
            }
        }
    }

    private func fetch(_ r: ActiveRequest, route: CompiledRoute, key: CacheKey, validating: CachedResponse?, eventLoop: any EventLoop) {
        let fill = CacheFill(runtime: runtime, key: key, route: route, request: r, owner: self, clientAddress: clientAddress,
                             validating: validating, eventLoop: eventLoop)
        r.fill = fill
        fill.start()
    }

    /// The leader of a miss asks Redis before the upstream; the followers keep waiting meanwhile, so
    /// N concurrent misses make one Redis lookup and at most one upstream request.
    private func lookUpL2(_ tier: RedisTier, for r: ActiveRequest, route: CompiledRoute, key: CacheKey, validating: CachedResponse?,
                          context: ChannelHandlerContext) {
        let loop = context.eventLoop
        tier.lookup(key, requestHeaders: r.head.headers, now: runtime.now(), on: loop) { [self] found in
            let now = runtime.now()
            var usable = found
            // An L2 copy no newer than the stale one in L1 is of no help.
            if let found, let validating, found.responseTime <= validating.responseTime { usable = nil }
            guard let entry = usable else {
                if request === r {
                    fetch(r, route: route, key: key, validating: validating, eventLoop: loop)
                } else {
                    runtime.coalescer.finish(key.value, with: .retry)  // the client left; wake the followers
                }
                return
            }
            runtime.store.store(entry, for: key)
            let servable = entry.freshness(at: now).isFresh || entry.isWithinStaleWhileRevalidate(at: now)
            guard request === r else {
                runtime.coalescer.finish(key.value, with: servable ? .entry(entry) : .retry)
                return
            }
            if servable {
                runtime.coalescer.finish(key.value, with: .entry(entry))
                use(entry, for: r, route: route, key: key, now: now, forceRevalidate: false, fromL2: true)
            } else {
                // Stale beyond serving: this request stays the leader and revalidates it.
                r.stale = entry
                r.outcome = .revalidated
                fetch(r, route: route, key: key, validating: entry, eventLoop: loop)
            }
        }
    }

    private func refreshInBackground(_ r: ActiveRequest, route: CompiledRoute, key: CacheKey, entry: CachedResponse) {
        guard let context, runtime.coalescer.join(key.value, waiter: nil) == .leader else { return }
        CacheFill(runtime: runtime, key: key, route: route, request: r, owner: nil, clientAddress: clientAddress,
                  validating: entry, eventLoop: context.eventLoop).start()
    }

    /// A fill this request waited on has finished.
    private func fillDelivered(_ result: FillResult, to requestID: ObjectIdentifier) {
        guard let r = request, ObjectIdentifier(r) == requestID, !r.responseStarted, let route = r.route, let key = r.key else { return }
        switch result {
        case .entry(let entry):
            if entry.matchesVariant(of: r.head.headers) {
                r.outcome = .coalesced
                serve(entry, to: r, cacheStatus: .forwarded(.miss, collapsed: true), now: runtime.now())
            } else {
                fill(r, route: route, key: key, validating: nil)
            }
        case .uncacheable:
            forward(r, outcome: .miss, cacheStatus: .forwarded(.miss, collapsed: true, detail: .uncacheable))
        case .retry:
            handleCacheable(r, route: route)
        case .failed(let error):
            serveStaleOrError(error, to: r)
        }
    }

    /// The upstream failed for a fill: stale-if-error (RFC 5861 §4) when allowed, else 502/504.
    func serveStaleOrError(_ error: UpstreamError, to r: ActiveRequest) {
        let now = runtime.now()
        // With the breaker open any stored copy is better than a 503, unless the origin forbade
        // serving it stale (must-revalidate, no-cache: RFC 9111 §4.2.4, §5.2.2.2).
        if error.kind == .circuitOpen, let stale = r.stale, stale.terms.mayServeStale, !stale.terms.revalidateAlways {
            r.outcome = .stale
            var ttl: Int64 = 0
            if case .stale(let staleness) = stale.freshness(at: now) { ttl = -max(1, staleness.seconds) }
            serve(stale, to: r, cacheStatus: .hit(ttl: ttl, detail: .circuitOpen), now: now)
            return
        }
        if let stale = r.stale, stale.isWithinStaleIfError(at: now) {
            r.outcome = .stale
            serve(stale, to: r, cacheStatus: .forwarded(.stale, detail: .staleIfError(error.kind.rawValue)), now: now)
            return
        }
        respondUpstreamError(error, to: r)
    }

    // MARK: - Forwarding

    func forward(_ r: ActiveRequest, outcome: CacheOutcome, cacheStatus: CacheStatus) {
        guard let context else { return }
        r.outcome = outcome
        let exchange = ForwardExchange(handler: self, request: r, eventLoop: context.eventLoop, clientAddress: clientAddress, cacheStatus: cacheStatus)
        r.forward = exchange
        exchange.start()
    }

    func setClientReading(_ on: Bool) {
        _ = context?.channel.setOption(ChannelOptions.autoRead, value: on)
    }

    /// An interim response of the upstream's (102, 103 Early Hints) goes to the client before the
    /// final one; never to an HTTP/1.0 client, which does not expect 1xx (RFC 9110 §15.2).
    func relayInterim(_ head: HTTPResponseHead, to r: ActiveRequest) {
        guard let context, request === r, !r.responseStarted, r.head.version == .http1_1 else { return }
        var headers = head.headers
        HopByHopHeaders.strip(&headers)
        context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: head.status, headers: headers))), promise: nil)
    }

    /// Answers `Expect: 100-continue` once the upstream is ready for the body.
    func sendContinue(for r: ActiveRequest) {
        guard let context, request === r, !r.responseStarted,
              r.head.headers[canonicalForm: "expect"].contains(where: { $0.lowercased() == "100-continue" }) else { return }
        context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: r.head.version, status: .continue))), promise: nil)
    }

    // MARK: - Writing responses

    /// Serves a stored response in the coding the client accepts, answering the client's own
    /// conditions (RFC 9111 §4.3.2) against that coding's validators.
    func serve(_ entry: CachedResponse, to r: ActiveRequest, cacheStatus: CacheStatus, now: CacheInstant) {
        guard let context, request === r else { return }
        var entry = entry
        // The client's Accept-Encoding is read only for an entry that negotiates its coding.
        let acceptsGzip = entry.negotiatesEncoding && ContentCoding.acceptsGzip(r.head.headers)
        if acceptsGzip, entry.gzipPending, let gzip = r.route?.gzip, let key = r.key {
            entry = GzipOnDemand.complete(entry, key: key, level: gzip.level, store: runtime.store)
        }
        let chosen: StoredRepresentation
        do {
            chosen = try StoredRepresentation(entry, acceptsGzip: acceptsGzip, decodeLimit: 4 * r.snapshot.configuration.cache.memory.maxObjectBytes)
        } catch {
            runtime.logger.error("a stored gzip body does not decode", metadata: ["path": "\(r.path)", "error": "\(error)"])
            respondLocally(.badGateway, "the stored response could not be decoded", request: r, close: false)
            return
        }
        let notModified = entry.status == .ok
            && ConditionalRequest.isNotModified(request: r.head.headers, etag: chosen.etag, lastModified: entry.lastModified,
                                                stored: entry.terms.originDate ?? entry.responseTime.seconds)
        if !notModified, r.head.version == .http1_1, let raw = rawWriter, let encodedHead = chosen.encodedHead {
            serveEncoded(entry, head: encodedHead, body: chosen.body, to: r, cacheStatus: cacheStatus, now: now, context: context, raw: raw)
            return
        }
        var headers = chosen.headers
        headers.add(name: "Age", value: String(entry.age(at: now).seconds))
        headers.add(name: "Cache-Status", value: cacheStatus.text)
        headers.add(name: "X-Cache", value: r.outcome.xCache)
        headers.add(name: "X-Request-ID", value: r.requestID.text)
        r.rateLimit?.add(to: &headers)
        addConnectionHeader(&headers, r)
        r.responseStarted = true
        if notModified {
            var kept = HTTPHeaders()
            for (name, value) in headers where Self.keptIn304(name) { kept.add(name: name, value: value) }
            r.status = 304
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: r.head.version, status: .notModified, headers: kept))), promise: nil)
        } else {
            r.status = entry.status.code
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: r.head.version, status: entry.status, headers: headers))), promise: nil)
            if !r.isHead, chosen.body.readableBytes > 0 {
                r.bytes = chosen.body.readableBytes
                context.write(wrapOutboundOut(.body(.byteBuffer(chosen.body))), promise: nil)
            }
        }
        finishResponse(r)
    }

    /// The hit fast path (HTTP/1.1): the entry's pre-encoded head, the per-response fields and the
    /// body, written below the HTTP encoder. No header list is copied or re-encoded.
    private func serveEncoded(_ entry: CachedResponse, head encodedHead: EncodedHead, body: ByteBuffer, to r: ActiveRequest, cacheStatus: CacheStatus,
                              now: CacheInstant, context: ChannelHandlerContext, raw: ChannelHandlerContext) {
        let sendsBody = !r.isHead && body.readableBytes > 0
        // A small body is copied behind the head: one buffer through the pipeline and one write(2)
        // cost less than a second pipeline write and a writev of two.
        let inline = sendsBody && body.readableBytes <= Self.inlineBodyBytes
        var head = context.channel.allocator.buffer(capacity: encodedHead.bytes.count + 96 + cacheStatus.maxBytes + r.requestID.utf8Count
                                                    + (inline ? body.readableBytes : 0))
        encodedHead.bytes.withUnsafeBytes { _ = head.writeBytes($0) }
        head.writeStaticString("Age: ")
        head.writeDecimal(entry.age(at: now).seconds)
        head.writeStaticString("\r\nCache-Status: ")
        cacheStatus.write(to: &head)
        head.writeStaticString("\r\nX-Cache: ")
        head.writeString(r.outcome.xCache)
        head.writeStaticString("\r\nX-Request-ID: ")
        r.requestID.write(to: &head)
        if closesAfter(r) { head.writeStaticString("\r\nConnection: close") }
        head.writeStaticString("\r\n")
        r.rateLimit?.write(to: &head)
        head.writeStaticString("\r\n")
        r.responseStarted = true
        r.status = entry.status.code
        if sendsBody { r.bytes = body.readableBytes }
        if inline { head.writeImmutableBuffer(body) }
        raw.write(NIOAny(IOData.byteBuffer(head)), promise: nil)
        if sendsBody && !inline { raw.write(NIOAny(IOData.byteBuffer(body)), promise: nil) }
        finishResponse(r, encoded: true)
    }

    /// Bodies up to this size are sent in the same buffer as the head.
    static let inlineBodyBytes = 4096

    private static func keptIn304(_ name: String) -> Bool {
        let lower = name.lowercased()
        return ConditionalRequest.fieldsKeptIn304.contains(lower) || ["age", "cache-status", "x-cache", "x-request-id", "connection", "via"].contains(lower)
            || lower.hasPrefix("ratelimit-")
    }

    /// Starts relaying an upstream response; the body follows through `streamBody`.
    func beginStreamedResponse(_ upstream: HTTPResponseHead, to r: ActiveRequest, reader: UpstreamClientHandler?, cacheStatus: CacheStatus) {
        guard let context, request === r else {
            reader?.abort()
            return
        }
        var headers = UpstreamRequest.clientHeaders(from: upstream.headers)
        if let gzip = r.route?.gzip, !r.isHead, Self.compressesOnTheFly(upstream, request: r.head.headers, settings: gzip),
           let stream = try? StreamingGzip(level: gzip.level, allocator: context.channel.allocator) {
            r.gzipStream = stream
            let length = headers.first(name: "content-length").flatMap(Int.init) ?? 0
            headers = ContentCoding.headers(headers, coding: "gzip", length: length, etagSuffix: "gzip")
            headers.remove(name: "content-length")  // the compressed length is known only at the end
        }
        // HTTP/1.0 has no chunked encoding: a body of unknown length ends when the connection does.
        if r.head.version.minor == 0, r.head.version.major == 1, !headers.contains(name: "content-length"),
           !r.isHead, upstream.status.code >= 200, upstream.status != .noContent, upstream.status != .notModified {
            r.closeAfterResponse()
        }
        headers.replaceOrAdd(name: "Cache-Status", value: cacheStatus.text)
        headers.replaceOrAdd(name: "X-Cache", value: r.outcome.xCache)
        headers.replaceOrAdd(name: "X-Request-ID", value: r.requestID.text)
        r.rateLimit?.add(to: &headers)
        addConnectionHeader(&headers, r)
        r.status = upstream.status.code
        r.responseStarted = true
        r.upstreamReader = reader
        if r.head.version == .http1_1, r.gzipStream == nil, let raw = rawWriter, RawResponseHead.isLengthDelimited(headers) {
            // Delimited by its length, the response needs nothing from the HTTP encoder: its head is
            // written here and its body passes below the encoder as it arrives.
            r.relaysBelowEncoder = true
            let head = RawResponseHead.encode(status: upstream.status, headers: headers, allocator: context.channel.allocator)
            raw.write(NIOAny(IOData.byteBuffer(head)), promise: nil)
        } else {
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: r.head.version, status: upstream.status, headers: headers))), promise: nil)
        }
        if !context.channel.isWritable { pauseUpstreamIfStillUnwritable(r, context) }
    }

    /// An uncached response is gzipped while it streams when the route allows it, the client
    /// accepts gzip, and the origin sent an identity 200 of a listed type that is not too small.
    static func compressesOnTheFly(_ upstream: HTTPResponseHead, request: HTTPHeaders, settings: SidecacheConfiguration.Gzip) -> Bool {
        let headers = upstream.headers
        // The client's Accept-Encoding first: most often it decides, and it is the shorter list.
        guard ContentCoding.acceptsGzip(request), upstream.status == .ok, !headers.contains(name: "content-range") else { return false }
        let length = headers.first(name: "content-length").flatMap(Int.init)
        return GzipOnDemand.allows(status: upstream.status, headers: headers, bodyBytes: length, settings: settings)
    }

    func streamBody(_ buffer: ByteBuffer, to r: ActiveRequest) {
        guard let context, request === r, !r.isHead else { return }
        var buffer = buffer
        if let gzip = r.gzipStream {
            guard buffer.readableBytes > 0 else { return }
            do {
                buffer = try gzip.compress(buffer)
            } catch {
                runtime.logger.error("gzip failed while streaming; closing the response", metadata: ["error": "\(error)"])
                abortStreamedResponse(r)
                return
            }
        }
        r.bytes += buffer.readableBytes
        if r.relaysBelowEncoder, let raw = rawWriter {
            raw.write(NIOAny(IOData.byteBuffer(buffer)), promise: nil)
        } else {
            context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        }
        if !context.channel.isWritable { pauseUpstreamIfStillUnwritable(r, context) }
    }

    func flushStreamedResponse(_ r: ActiveRequest) {
        guard let context, request === r else { return }
        context.flush()
        if !context.channel.isWritable { pauseUpstreamIfStillUnwritable(r, context) }
    }

    /// Pauses the upstream only if the client is still unwritable after a flush: a flush that drains
    /// the buffer at once flips writability back without any event, and a pause then would never be
    /// undone.
    private func pauseUpstreamIfStillUnwritable(_ r: ActiveRequest, _ context: ChannelHandlerContext) {
        context.flush()
        if !context.channel.isWritable { r.upstreamReader?.setReading(false) }
    }

    func endStreamedResponse(_ r: ActiveRequest) {
        guard request === r else { return }
        r.upstreamReader = nil
        if let gzip = r.gzipStream, let context {
            r.gzipStream = nil
            guard let trailer = try? gzip.finish() else {
                abortStreamedResponse(r)
                return
            }
            r.bytes += trailer.readableBytes
            context.write(wrapOutboundOut(.body(.byteBuffer(trailer))), promise: nil)
        }
        finishResponse(r, encoded: r.relaysBelowEncoder)
    }

    /// The upstream failed after the response head was sent: the client can only learn it from the
    /// connection closing before the announced end.
    func abortStreamedResponse(_ r: ActiveRequest) {
        guard let context, request === r else { return }
        r.upstreamReader = nil
        r.responseEnded = true
        queued.removeAll()
        complete(r)
        context.close(promise: nil)
    }

    func respondUpstreamError(_ error: UpstreamError, to r: ActiveRequest) {
        let status = HTTPResponseStatus(statusCode: Int(error.statusCode))
        if error.kind == .circuitOpen {
            // The upstream was not asked: nothing forwarded (RFC 9211 has no fwd for it), and the
            // client learns when a probe may go.
            let retryAfter = wholeSeconds(roundingUp: error.retryAfter ?? 0)
            respondLocally(status, error.description, request: r, close: !r.requestEnded, cacheStatus: .answeredLocally(.circuitOpen),
                           keepOutcome: true, extra: [("Retry-After", String(max(1, retryAfter)))])
            return
        }
        respondLocally(status, error.description, request: r, close: !r.requestEnded,
                       cacheStatus: .forwarded(.miss, detail: CacheStatus.Detail(error.kind.rawValue)), keepOutcome: true)
    }

    /// A response sidecache makes itself: errors and refusals, plain text.
    func respondLocally(_ status: HTTPResponseStatus, _ message: String, request r: ActiveRequest, close: Bool,
                        cacheStatus: CacheStatus = .forwarded(.request), keepOutcome: Bool = false, extra: [(String, String)] = []) {
        guard let context, request === r, !r.responseStarted else { return }
        if !keepOutcome { r.outcome = .local }
        var (headers, body) = Self.plainText(message, allocator: context.channel.allocator)
        headers.add(name: "Cache-Status", value: cacheStatus.text)
        headers.add(name: "X-Cache", value: r.outcome.xCache)
        headers.add(name: "X-Request-ID", value: r.requestID.text)
        r.rateLimit?.add(to: &headers)
        for (name, value) in extra { headers.add(name: name, value: value) }
        if close { headers.add(name: "Connection", value: "close") } else { addConnectionHeader(&headers, r) }
        r.status = status.code
        r.responseStarted = true
        r.bytes = body.readableBytes
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: r.head.version, status: status, headers: headers))), promise: nil)
        if !r.isHead { context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil) }
        finishResponse(r, forceClose: close)
    }

    /// The body and framing fields of a response sidecache writes itself: one line of text.
    static func plainText(_ message: String, allocator: ByteBufferAllocator) -> (HTTPHeaders, ByteBuffer) {
        var body = allocator.buffer(capacity: message.utf8.count + 1)
        body.writeString(message)
        body.writeString("\n")
        let headers = HTTPHeaders([("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", String(body.readableBytes))])
        return (headers, body)
    }

    private func addConnectionHeader(_ headers: inout HTTPHeaders, _ r: ActiveRequest) {
        if closesAfter(r) {
            headers.replaceOrAdd(name: "Connection", value: "close")
        } else if r.head.version.minor == 0 {
            headers.replaceOrAdd(name: "Connection", value: "keep-alive")
        }
    }

    /// Ends the response (through the encoder, or by flushing what was written below it), then, if
    /// the request is also over, completes it, which may start the next pipelined request.
    private func finishResponse(_ r: ActiveRequest, forceClose: Bool = false, encoded: Bool = false) {
        guard let context else { return }
        r.responseEnded = true
        responseFinished()
        // An HTTP/1.0 response without Content-Length is delimited by closing the connection.
        let close = forceClose || closesAfter(r)
        // A closing response's request is recorded first: the close below may run at once (the
        // write done), and nothing follows it on this connection.
        if close && r.requestEnded { complete(r, drainingQueue: false) }
        if encoded {
            if close {
                let promise = context.eventLoop.makePromise(of: Void.self)
                rawWriter?.writeAndFlush(NIOAny(IOData.byteBuffer(ByteBuffer())), promise: promise)
                promise.futureResult.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
            } else {
                context.flush()
            }
        } else {
            let written = context.writeAndFlush(wrapOutboundOut(.end(nil)))
            if close {
                written.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
            }
        }
        if !close && r.requestEnded { complete(r) }
    }

    /// The request is over on both sides: log it and make room for the next.
    func complete(_ r: ActiveRequest, drainingQueue: Bool = true) {
        guard request === r else { return }
        request = nil
        r.forward = nil
        r.tunnel = nil
        r.fill = nil
        let finished = NIODeadline.now()
        runtime.recordCompleted(r, finishedAt: finished)
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

extension HTTPServerRequestPart {
    var isHead: Bool {
        if case .head = self { return true }
        return false
    }
}
