import HTTPCaching
import NIOCore
import NIOHTTP1
import SidecacheConfig

/// Fetches one cache key from the upstream on behalf of every request waiting on it (the owner that
/// started it, the coalesced followers, or nobody for a background refresh), and stores the result.
///
/// The response is buffered while it may be stored (bounded by `max_object_bytes`); a response that
/// turns out unstorable or too large is streamed to the owner instead and the followers are told to
/// fetch for themselves. A stale entry being revalidated is refreshed by a 304 (RFC 9111 §4.3.4).
final class CacheFill: UpstreamResponseDelegate {
    private enum Mode {
        case awaitingHead
        case buffering(HTTPResponseHead, StorageTerms, ByteBuffer)
        case notModified(HTTPResponseHead)
        case streaming
        case finished
    }

    private let runtime: ProxyRuntime
    private let key: CacheKey
    private let route: CompiledRoute
    private let request: ActiveRequest
    /// The client that started the fill; nil for a background refresh.
    private weak var owner: (any ClientResponder)?
    private let validating: CachedResponse?
    private let eventLoop: any EventLoop
    private let upstreamHead: UpstreamRequestHead
    private let maxObjectBytes: Int
    private var mode = Mode.awaitingHead
    private var connection: UpstreamConnection?
    /// The next attempt opens a new connection (the last met a kept-alive one closing).
    private var needsFreshConnection = false
    private var requestTime = CacheInstant(milliseconds: 0)
    /// The breaker's leave for each attempt, and the retries.
    private let tries: UpstreamAttempts
    /// The invalidation log's epoch when the fill began: one matching it since then wins.
    private let startEpoch: UInt64
    /// Told how the fill ended, once: a background fetch's scheduler (the warmer) counts it.
    private var onEnd: ((Ending, _ status: UInt) -> Void)?
    /// The upstream's status, once its head came (0 before).
    private var upstreamStatus: UInt = 0

    /// How a fill ended, for whoever started it in the background.
    enum Ending: Equatable {
        /// A response was stored (its body's size).
        case stored(bytes: Int)
        /// A 304 refreshed the stored entry.
        case notModified
        /// The response came but was not stored (unstorable, too large, invalidated meanwhile).
        case notStored
        case failed
    }

    init(runtime: ProxyRuntime, key: CacheKey, route: CompiledRoute, request: ActiveRequest, owner: (any ClientResponder)?,
         clientAddress: String, validating: CachedResponse?, eventLoop: any EventLoop,
         onEnd: ((Ending, _ status: UInt) -> Void)? = nil) {
        self.onEnd = onEnd
        self.runtime = runtime
        self.key = key
        self.route = route
        self.request = request
        self.owner = owner
        self.validating = validating
        self.eventLoop = eventLoop
        self.upstreamHead = UpstreamRequest.head(for: request, clientAddress: clientAddress, forFill: true, validating: validating)
        self.maxObjectBytes = runtime.store.currentLimits.maxObjectBytes
        // A background fetch (no client waits on it: warming, stale-while-revalidate) is retried
        // at most once, within the upstream's retry policy: a failing upstream sees it twice at most.
        self.tries = UpstreamAttempts(runtime.upstreamGuard, method: .GET, route: route, maxRetries: owner == nil ? 1 : Int.max)
        self.startEpoch = runtime.invalidations.epoch
    }

    /// The fill keeps itself alive through the pool's callbacks and the upstream handler's delegate
    /// reference chain; `retainSelf` holds it until it finishes.
    private var retainSelf: CacheFill?

    func start() {
        retainSelf = self
        if let refused = tries.begin() {
            fail(refused)
            return
        }
        guard let pool = runtime.pools.pool(for: eventLoop) else {
            fail(UpstreamError(.connectFailed, "no connection pool on this event loop"))
            return
        }
        let settings = UpstreamSettings(request.snapshot.configuration.upstream, loops: runtime.pools.loopCount)
        if owner != nil, request.upstreamStarted == nil { request.markUpstreamStart() }
        // A first attempt met by a connection the upstream closed is tried again on a new one.
        pool.acquire(settings, fresh: needsFreshConnection, checkPeer: tries.attempts > 1) { [self] result in
            switch result {
            case .success(let connection):
                self.connection = connection
                self.requestTime = self.runtime.now()
                connection.handler.begin(head: self.upstreamHead, delegate: self, responseTimeout: settings.responseTimeout)
                // A connection that was not ready has failed already (and a retry may own another).
                guard self.connection === connection else { return }
                connection.handler.sendEnd()
            case .failure(let error):
                self.upstreamFailed(error)
            }
        }
    }

    private var liveOwner: (any ClientResponder)? {
        guard let owner, owner.isCurrent(request) else { return nil }
        return owner
    }

    // MARK: UpstreamResponseDelegate

    /// Passed to the client that started the fill (followers and the stored entry never see it).
    func upstreamInterimResponse(_ head: HTTPResponseHead) {
        liveOwner?.relayInterim(head, to: request)
    }

    func upstreamResponseHead(_ head: HTTPResponseHead) {
        if let wait = tries.responseHead(status: head.status.code, replayable: true) {
            retry(after: wait)
            return
        }
        if owner != nil { request.markUpstreamEnd() }
        upstreamStatus = head.status.code
        let now = runtime.now()
        if validating != nil, head.status == .notModified {
            mode = .notModified(head)
            return
        }
        // stale-if-error covers an origin answering 500, 502, 503 or 504 (RFC 5861 §4).
        if [500, 502, 503, 504].contains(head.status.code), let stale = request.stale, stale.isWithinStaleIfError(at: now) {
            connection?.handler.abort()
            connection = nil
            fail(UpstreamError(.errorStatus, "answered \(head.status.code)", status: head.status.code))
            return
        }
        let decision = StorageRules.evaluate(
            requestMethod: .GET, requestHeaders: request.head.headers, status: head.status, responseHeaders: head.headers,
            policy: route.policy, responseTime: now
        )
        // A coding sidecache cannot serve to every client (br, zstd ... or gzip under
        // no-transform) is stored as a variant for the clients that accept it (StoredEntry.make);
        // the client of this fill must be one of them, or the variant would be for those that don't.
        switch decision {
        case .store where StoredEntry.acceptanceCoding(head.headers, route: route).map { !ContentCoding.accepts($0, request.head.headers) } ?? false:
            stream(head, prefix: nil, reason: .contentEncoding)
        case .store(let terms):
            if let length = head.headers.first(name: "content-length").flatMap(Int.init), length > maxObjectBytes {
                stream(head, prefix: nil, reason: .tooLarge)
            } else {
                mode = .buffering(head, terms, ByteBuffer())
            }
        case .doNotStore(let reason):
            stream(head, prefix: nil, reason: reason)
        }
    }

    func upstreamResponseBody(_ buffer: ByteBuffer) {
        switch mode {
        case .buffering(let head, let terms, var body):
            mode = .finished  // avoid a copy-on-write of the accumulated body
            body.writeImmutableBuffer(buffer)
            if body.readableBytes > maxObjectBytes {
                stream(head, prefix: body, reason: .tooLarge)
            } else {
                mode = .buffering(head, terms, body)
            }
        case .streaming:
            guard let owner = liveOwner else { return abandonStream() }
            owner.streamBody(buffer, to: request)
        case .awaitingHead, .notModified, .finished:
            break
        }
    }

    func upstreamReadComplete() {
        if case .streaming = mode { liveOwner?.flushStreamedResponse(request) }
    }

    func upstreamResponseEnd() {
        connection = nil
        let now = runtime.now()
        switch mode {
        case .buffering(let head, let terms, let body):
            mode = .finished
            let fetched = entries.make(head, body: body, terms: terms, responseTime: now)
            let (entry, verdict) = afterInvalidations(fetched, now: now)
            let stored = verdict != .removed && runtime.store.store(entry, for: key)
            if stored { runtime.sharedTier?.store(entry, for: key, now: now, on: eventLoop) }
            // Invalidated meanwhile: the clients waiting get what was fetched, later ones a new fill.
            runtime.coalescer.finish(key.value, with: stored || verdict == .removed ? .entry(entry) : .uncacheable)
            let status = CacheStatus.forwarded(validating == nil ? .miss : .stale, status: head.status.code, stored: stored,
                                               detail: verdict == .removed ? .invalidated : (stored ? nil : .notStored(.tooLarge)))
            liveOwner?.serve(entry, to: request, cacheStatus: status, now: now)
            ended(stored ? .stored(bytes: entry.body.readableBytes) : .notStored)
            // A client's fill on a route that follows Link hints: what the origin announced.
            if owner != nil, route.warm?.prefetchLinks == true, let warmer = request.warmer {
                let links = head.headers["link"]
                if !links.isEmpty { warmer.prefetchAnnounced(links, after: request) }
            }
        case .notModified(let head):
            mode = .finished
            guard let validating else { return finishAbandoned() }
            let (refreshed, verdict) = afterInvalidations(entries.refresh(validating, with: head, responseTime: now), now: now)
            if verdict != .removed {
                runtime.store.store(refreshed, for: key)
                runtime.sharedTier?.store(refreshed, for: key, now: now, on: eventLoop)
            }
            runtime.coalescer.finish(key.value, with: .entry(refreshed))
            let status = CacheStatus.forwarded(.stale, status: 304, stored: verdict != .removed, detail: verdict == .removed ? .invalidated : nil)
            liveOwner?.serve(refreshed, to: request, cacheStatus: status, now: now)
            ended(verdict == .removed ? .notStored : .notModified)
        case .streaming:
            mode = .finished
            liveOwner?.endStreamedResponse(request)
            ended(.notStored)
        case .awaitingHead, .finished:
            break
        }
        retainSelf = nil
    }

    func upstreamFailed(_ error: UpstreamError) {
        let wasReused = connection?.hasBeenUsed ?? false
        connection = nil
        switch mode {
        case .streaming:
            mode = .finished
            liveOwner?.abortStreamedResponse(request)
            ended(.failed)
            retainSelf = nil
        case .awaitingHead where tries.retriesOnNewConnection(after: error, connectionWasReused: wasReused, replayable: true):
            // A fill is a GET without a body: replayable.
            needsFreshConnection = wasReused
            start()
        case .awaitingHead:
            if let wait = tries.failed(error, replayable: true) { retry(after: wait) } else { fail(error) }
        case .finished:
            retainSelf = nil
        default:
            fail(error)
        }
    }

    /// Drops this attempt (and its response, if one came) and tries again after `wait`.
    private func retry(after wait: TimeAmount) {
        connection?.handler.abort()
        connection = nil
        mode = .awaitingHead
        eventLoop.assumeIsolated().scheduleTask(in: wait) { self.start() }
    }

    func upstreamWritabilityChanged(isWritable: Bool) {}

    // MARK: -

    private func fail(_ error: UpstreamError) {
        mode = .finished
        runtime.coalescer.finish(key.value, with: .failed(error))
        if let owner = liveOwner { owner.serveStaleOrError(error, to: request) }
        ended(.failed)
        retainSelf = nil
    }

    /// What to store after the invalidations that happened since the fill began: the entry, or
    /// the entry already stale (a soft purge matched), or nothing (a purge matched).
    private func afterInvalidations(_ entry: CachedResponse, now: CacheInstant) -> (CachedResponse, InvalidationLog.Verdict?) {
        switch runtime.invalidations.verdict(since: startEpoch, path: key.path, tags: entry.tags) {
        case nil: (entry, nil)
        case .markedStale: (entry.expired(at: now), .markedStale)
        case .removed: (entry, .removed)
        }
    }

    /// A 304 with nothing to refresh (cannot happen: a fill only validates a stored entry).
    private func finishAbandoned() {
        runtime.coalescer.finish(key.value, with: .retry)
        ended(.notStored)
        retainSelf = nil
    }

    private func ended(_ ending: Ending) {
        let told = onEnd
        onEnd = nil
        told?(ending, upstreamStatus)
    }

    /// The client that started the fill left. A response being buffered for the cache is still
    /// read and stored (followers and later clients get it); one streamed to that client alone
    /// is abandoned.
    func ownerLeft() {
        if case .streaming = mode { abandonStream() }
    }

    /// The client of an unstorable response left: nobody reads the rest, so the connection closes
    /// (it cannot be reused before the response is read to its end).
    private func abandonStream() {
        mode = .finished
        connection?.handler.abort()
        connection = nil
        ended(.notStored)
        retainSelf = nil
    }

    /// Hands the response to the owner as a stream; followers fetch on their own.
    private func stream(_ head: HTTPResponseHead, prefix: ByteBuffer?, reason: NotStoredReason) {
        runtime.coalescer.finish(key.value, with: .uncacheable)
        guard let owner = liveOwner else {
            // A background refresh (or an owner that left) has nobody to stream to.
            return abandonStream()
        }
        if request.range != nil, prefix == nil {
            // A range of a response the cache will not keep: the origin sends just the range
            // rather than the whole representation streamed through (a video seek, say).
            abandonStream()
            owner.forwardInstead(request, cacheStatus: .forwarded(.miss, detail: .notStored(reason)))
            return
        }
        mode = .streaming
        request.outcome = .miss
        owner.beginStreamedResponse(head, to: request, reader: connection?.handler,
                                    cacheStatus: .forwarded(.miss, status: head.status.code, detail: .notStored(reason)))
        if let prefix { owner.streamBody(prefix, to: request) }
    }

    /// Builds and refreshes the entry; its request time is that of the attempt that answered.
    private var entries: StoredEntry {
        StoredEntry(route: route, requestPath: request.path, requestHeaders: request.head.headers, requestTime: requestTime)
    }
}
