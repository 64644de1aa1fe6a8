import HTTPCaching
import NIOCore
import NIOHTTP1

/// Relays one request to the upstream and its response back, streaming both bodies with
/// backpressure in each direction. Used for everything that is not served from or stored in the
/// cache: unsafe methods, routes with `cache: false`, and responses that turned out uncacheable.
final class ForwardExchange: UpstreamResponseDelegate {
    private weak var client: (any ClientResponder)?
    private let runtime: ProxyRuntime
    private let request: ActiveRequest
    private let eventLoop: any EventLoop
    private let upstreamHead: UpstreamRequestHead
    private let cacheStatus: CacheStatus
    private var connection: UpstreamConnection?
    private var pendingBody: [ByteBuffer] = []
    private var pendingBytes = 0
    private var bodyBytesSent = 0
    /// The next attempt opens a new connection (the last met a kept-alive one closing).
    private var needsFreshConnection = false
    private var responseHeadSeen = false
    /// The upstream's response fields: `Location`, `Content-Location` and `X-Invalidate-Tags` name
    /// what a write invalidates.
    private var lastResponseHeaders: HTTPHeaders?
    private var cancelled = false
    /// The breaker's leave for each attempt, and the retries.
    private let tries: UpstreamAttempts
    /// A copy of the request body sent so far, while it is small enough to send again on a retry;
    /// nil once it is not (or the method is never retried).
    private var replay: [ByteBuffer]?
    private var replayBytes = 0

    /// Bytes of request body buffered while the upstream connection is being set up, and the most
    /// kept for a retry.
    private static let maxPendingBytes = 64 * 1024

    init(client: any ClientResponder, runtime: ProxyRuntime, request: ActiveRequest, eventLoop: any EventLoop, clientAddress: String,
         cacheStatus: CacheStatus) {
        self.client = client
        self.runtime = runtime
        self.request = request
        self.eventLoop = eventLoop
        self.upstreamHead = UpstreamRequest.head(for: request, clientAddress: clientAddress, forFill: false)
        self.cacheStatus = cacheStatus
        self.tries = UpstreamAttempts(runtime.upstreamGuard, method: request.head.method, route: request.route)
        self.replay = runtime.upstreamGuard.retries == nil ? nil : []
    }

    func start() {
        guard !cancelled, let client, let pool = runtime.pools.pool(for: eventLoop) else { return }
        if let refused = tries.begin() {
            request.markUpstreamEnd()
            client.serveStaleOrError(refused, to: request)
            return
        }
        let settings = UpstreamSettings(request.snapshot.configuration.upstream, loops: runtime.pools.loopCount)
        if request.upstreamStarted == nil { request.markUpstreamStart() }
        // Only a first attempt with its idempotent request whole and unsent is tried again on a new
        // connection when a kept-alive one turns out closed (`upstreamFailed`); others check the peer.
        let replaysOnClose = tries.attempts == 1 && bodyBytesSent == 0 && request.requestEnded && request.head.method.isIdempotent
        pool.acquire(settings, fresh: needsFreshConnection, checkPeer: !replaysOnClose) { [self] result in
            switch result {
            case .success(let connection): self.connected(connection, settings: settings)
            case .failure(let error): self.upstreamFailed(error)
            }
        }
    }

    private func connected(_ connection: UpstreamConnection, settings: UpstreamSettings) {
        guard !cancelled else {
            // The client left while we connected: the fresh connection is fine to keep.
            connection.handler.abort()
            return
        }
        self.connection = connection
        connection.handler.begin(head: upstreamHead, delegate: self, responseTimeout: settings.responseTimeout)
        // A connection that was not ready fails at once, and the retry that follows may already
        // have taken another one: the body then belongs to that attempt, not to this connection.
        guard self.connection === connection else { return }
        client?.sendContinue(for: request)
        for buffer in pendingBody { send(buffer, on: connection) }
        pendingBody.removeAll()
        pendingBytes = 0
        if request.requestEnded {
            connection.handler.sendEnd()
        } else {
            connection.handler.flush()
            client?.setClientReading(connection.handler.isWritable)
        }
    }

    func clientBody(_ buffer: ByteBuffer) {
        if let connection {
            send(buffer, on: connection)
            if !connection.handler.isWritable {
                // Pause the client only if the flush did not drain the buffer at once (else no
                // writability event would ever resume it).
                connection.handler.flush()
                if !connection.handler.isWritable { client?.setClientReading(false) }
            }
        } else {
            pendingBody.append(buffer)
            pendingBytes += buffer.readableBytes
            if pendingBytes > Self.maxPendingBytes { client?.setClientReading(false) }
        }
    }

    private func send(_ buffer: ByteBuffer, on connection: UpstreamConnection) {
        bodyBytesSent += buffer.readableBytes
        if replay != nil {
            replayBytes += buffer.readableBytes
            if replayBytes <= Self.maxPendingBytes { replay?.append(buffer) } else { replay = nil }
        }
        connection.handler.sendBody(buffer)
    }

    func clientEnd() {
        connection?.handler.sendEnd()
    }

    func flushUpstream() {
        connection?.handler.flush()
    }

    /// The client went away: an unfinished upstream exchange cannot be reused.
    func cancel() {
        cancelled = true
        tries.abandon()
        connection?.handler.abort()
        connection = nil
    }

    /// The whole request body is known and kept (or there is none): it can be sent again.
    private var replayable: Bool {
        request.requestEnded && replay != nil
    }

    /// Drops this attempt (and its response head, never relayed) and tries again after `wait`,
    /// sending the kept body again.
    private func retry(after wait: TimeAmount) {
        connection?.handler.abort()
        connection = nil
        // What was sent goes again, ahead of what had not been sent yet (a failed connect sent nothing).
        pendingBody = (replay ?? []) + pendingBody
        pendingBytes += replayBytes
        replay = []
        replayBytes = 0
        bodyBytesSent = 0
        eventLoop.assumeIsolated().scheduleTask(in: wait) { self.start() }
    }

    // MARK: UpstreamResponseDelegate

    func upstreamInterimResponse(_ head: HTTPResponseHead) {
        client?.relayInterim(head, to: request)
    }

    func upstreamResponseHead(_ head: HTTPResponseHead) {
        if let wait = tries.responseHead(status: head.status.code, replayable: replayable) {
            retry(after: wait)
            return
        }
        responseHeadSeen = true
        lastResponseHeaders = head.headers
        request.markUpstreamEnd()
        client?.beginStreamedResponse(head, to: request, reader: connection?.handler, cacheStatus: cacheStatus)
    }

    func upstreamResponseBody(_ buffer: ByteBuffer) {
        client?.streamBody(buffer, to: request)
    }

    func upstreamReadComplete() {
        client?.flushStreamedResponse(request)
    }

    func upstreamResponseEnd() {
        connection = nil
        let purges = invalidations()
        guard !purges.isEmpty else {
            client?.endStreamedResponse(request)
            return
        }
        // Purge before the response ends, so a client reads its own write: from L1 at once (a
        // pattern on the thread pool) and from L2 once Redis confirms (or fails, within its timeout).
        let done = runtime.invalidation.invalidate(purges, on: eventLoop)
        let request = self.request
        done.assumeIsolated().whenComplete { [weak client] _ in
            client?.endStreamedResponse(request)
        }
    }

    /// What this response invalidates. RFC 9111 §4.4: a non-error response to an unsafe method
    /// invalidates its target and the same-origin `Location` / `Content-Location`. A 2xx to a write
    /// also purges the route's `invalidates` (filled from the path) and the tags the origin names in
    /// `X-Invalidate-Tags` (comma or space separated).
    private func invalidations() -> [InvalidationMessage.Target] {
        guard InvalidationTargets.applies(method: request.head.method, status: request.status) else { return [] }
        let headers = lastResponseHeaders ?? [:]
        let host = request.head.headers.first(name: "host")
        var targets = InvalidationTargets.paths(requestPath: request.path, host: host, responseHeaders: headers).map { InvalidationMessage.Target.path($0) }
        guard (200..<300).contains(request.status) else { return targets }
        var declaredTags: [String] = []
        if let route = request.route {
            let declared = route.invalidations(forPath: request.path)
            declaredTags = declared.tags
            targets += declared.patterns.compactMap { try? PurgePattern(glob: $0) }.map { .pattern($0) }
        }
        targets += ResponseTags.invalidated(declared: declaredTags, headers: headers).map { .tag($0) }
        return targets
    }

    func upstreamFailed(_ error: UpstreamError) {
        let wasReused = connection?.hasBeenUsed ?? false
        connection = nil
        guard !cancelled, let client else { return }
        if responseHeadSeen {
            client.abortStreamedResponse(request)
            return
        }
        let unsentWhole = bodyBytesSent == 0 && request.requestEnded && request.head.method.isIdempotent
        if tries.retriesOnNewConnection(after: error, connectionWasReused: wasReused, replayable: unsentWhole) {
            needsFreshConnection = wasReused
            start()
            return
        }
        if let wait = tries.failed(error, replayable: self.replayable) {
            retry(after: wait)
            return
        }
        request.markUpstreamEnd()
        client.respondUpstreamError(error, to: request)
    }

    func upstreamWritabilityChanged(isWritable: Bool) {
        if !request.requestEnded { client?.setClientReading(isWritable) }
    }
}
