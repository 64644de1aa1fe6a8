import HTTPCaching
import HTTPWire
import NIOCore
import NIOHTTP1
import SidecacheConfig

/// Writing responses, the three ways: a stored entry (`serve`, with the hit fast path below the
/// encoder), a relayed upstream response (`beginStreamedResponse` ... `endStreamedResponse`), and
/// sidecache's own (`respondLocally`). What an exchange may call is `ClientResponder`'s.
extension ProxyHandler: ClientResponder {
    func isCurrent(_ r: ActiveRequest) -> Bool { state.isCurrent(r) }

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
        // A 304 takes precedence over a range (RFC 9110 §13.2.2); a range of a 200 is cut from the
        // representation this client gets (its gzip copy included).
        var range = RangeRequest.Answer.whole
        if !notModified, let field = r.range, entry.status == .ok {
            range = RangeRequest.answer(range: field, ifRange: r.head.headers.first(name: "if-range"), length: chosen.body.readableBytes,
                                        etag: chosen.etag, lastModified: entry.lastModified)
        }
        if range == .unsatisfiable {
            respondLocally(.rangeNotSatisfiable, "range not satisfiable", request: r, close: false, cacheStatus: cacheStatus, keepOutcome: true,
                           extra: [("Content-Range", RangeRequest.unsatisfiedRange(length: chosen.body.readableBytes))])
            return
        }
        if !notModified, range == .whole, r.head.version == .http1_1, let raw = rawWriter, let encodedHead = chosen.encodedHead {
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
        } else if case .partial(let bytes) = range {
            let length = chosen.body.readableBytes
            headers.replaceOrAdd(name: "Content-Length", value: String(bytes.count))
            headers.replaceOrAdd(name: "Content-Range", value: RangeRequest.contentRange(bytes, length: length))
            r.status = 206
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: r.head.version, status: .partialContent, headers: headers))), promise: nil)
            if let slice = chosen.body.getSlice(at: chosen.body.readerIndex + bytes.lowerBound, length: bytes.count) {
                r.bytes = slice.readableBytes
                context.write(wrapOutboundOut(.body(.byteBuffer(slice))), promise: nil)
            }
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
        let capacity = encodedHead.bytes.count + 32 + ownFieldsBytes(r, cacheStatus) + (inline ? body.readableBytes : 0)
        var head = context.channel.allocator.buffer(capacity: capacity)
        let closes = closesAfter(r)
        let age = entry.age(at: now).seconds
        head.writeHead(capacity: capacity) { out in
            encodedHead.bytes.withUnsafeBytes { out.put($0) }
            out.put("Age: ")
            out.putDecimal(age)
            out.put("\r\n")
            writeOwnFields(r, cacheStatus, closes: closes, into: &out)
            out.put("\r\n")
            if inline { body.withUnsafeReadableBytes { out.put($0) } }
        }
        r.responseStarted = true
        r.status = entry.status.code
        if sendsBody { r.bytes = body.readableBytes }
        raw.write(NIOAny(IOData.byteBuffer(head)), promise: nil)
        if sendsBody && !inline { raw.write(NIOAny(IOData.byteBuffer(body)), promise: nil) }
        finishResponse(r, encoded: true)
    }

    /// The fields sidecache adds to every response it writes as bytes (a hit, a relayed response),
    /// each line ending in CRLF.
    private func writeOwnFields(_ r: ActiveRequest, _ cacheStatus: CacheStatus, closes: Bool, into out: inout HeadBytes) {
        out.put("Cache-Status: ")
        cacheStatus.write(to: &out)
        out.put("\r\nX-Cache: ")
        out.put(r.outcome.xCache)
        out.put("\r\nX-Request-ID: ")
        r.requestID.write(to: &out)
        out.put("\r\n")
        if closes { out.put("Connection: close\r\n") }
        r.rateLimit?.write(to: &out)
    }

    /// At least the bytes `writeOwnFields` writes.
    private func ownFieldsBytes(_ r: ActiveRequest, _ cacheStatus: CacheStatus) -> Int {
        96 + cacheStatus.maxBytes + r.requestID.utf8Count + (r.rateLimit == nil ? 0 : RateLimitFields.maxBytes)
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
        if let gzip = r.route?.gzip, !r.isHead, Self.compressesOnTheFly(upstream, request: r.head.headers, settings: gzip) {
            r.gzipStream = try? StreamingGzip(level: gzip.level, allocator: context.channel.allocator)
        }
        r.status = upstream.status.code
        r.responseStarted = true
        r.upstreamReader = reader
        if r.head.version == .http1_1, r.gzipStream == nil, let raw = rawWriter, RawResponseHead.isLengthDelimited(upstream.headers) {
            // Delimited by its length, the response needs nothing from the HTTP encoder: its head is
            // written here, in one pass from the upstream's fields, and its body passes below the
            // encoder as it arrives.
            r.relaysBelowEncoder = true
            let closes = closesAfter(r)
            let head = RawResponseHead.encodeRelayed(status: upstream.status, headers: upstream.headers, allocator: context.channel.allocator,
                                                     appendBytes: ownFieldsBytes(r, cacheStatus)) { out in
                writeOwnFields(r, cacheStatus, closes: closes, into: &out)
            }
            raw.write(NIOAny(IOData.byteBuffer(head)), promise: nil)
            if !context.channel.isWritable { pauseUpstreamIfStillUnwritable(r, context) }
            return
        }
        var headers = UpstreamRequest.clientHeaders(from: upstream.headers)
        if r.gzipStream != nil {
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
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: r.head.version, status: upstream.status, headers: headers))), promise: nil)
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
        state.responseAborted()
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
        if close { state.willClose() }
        // A closing response's request is recorded first: the close below may run at once (the
        // write done), and nothing follows it on this connection.
        if close && r.requestEnded { complete(r, drainingQueue: false) }
        if encoded {
            if close {
                let promise = context.eventLoop.makePromise(of: Void.self)
                rawWriter?.writeAndFlush(NIOAny(IOData.byteBuffer(ByteBuffer())), promise: promise)
                promise.futureResult.assumeIsolated().whenComplete { [self] _ in closeAfterLastResponse(context) }
            } else {
                context.flush()
            }
        } else {
            let written = context.writeAndFlush(wrapOutboundOut(.end(nil)))
            if close {
                written.assumeIsolated().whenComplete { [self] _ in closeAfterLastResponse(context) }
            }
        }
        if !close && r.requestEnded { complete(r) }
    }

    /// The last response is written: the connection closes in stages (`LingeringClose`), so that
    /// request bytes the client is still sending do not reset it before the response is read.
    func closeAfterLastResponse(_ context: ChannelHandlerContext) {
        let limits = runtime.config.configuration.limits
        let settings = LingeringClose.Settings(time: .milliseconds(limits.lingeringTime.milliseconds),
                                               timeout: .milliseconds(limits.lingeringTimeout.milliseconds))
        LingeringClose.begin(context.channel, settings: settings, clientClosed: state.inputClosed)
    }
}
