import Foundation
import HTTPCaching
import NIOCore
import NIOHTTP1
import NIOPosix
import SidecacheConfig

/// One admin connection: reads a request (JSON body up to 1 MiB), checks the token, and answers
/// with JSON. `/healthz` and `/readyz` need no token.
final class AdminHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    static let maxBodyBytes = 1 << 20

    private let runtime: ProxyRuntime
    private let token: String?
    private var head: HTTPRequestHead?
    private var body = ByteBuffer()
    private var tooLarge = false

    init(runtime: ProxyRuntime, token: String?) {
        self.runtime = runtime
        self.token = token
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h):
            head = h
            body.clear()
            tooLarge = false
        case .body(var chunk):
            if body.readableBytes + chunk.readableBytes > Self.maxBodyBytes { tooLarge = true } else { body.writeBuffer(&chunk) }
        case .end:
            guard let head else { return }
            self.head = nil
            if tooLarge {
                respond(context, head, .payloadTooLarge, ["error": "request body over 1 MiB"])
                return
            }
            handle(head, body: body, context: context)
        }
    }

    // MARK: Routing

    private func handle(_ head: HTTPRequestHead, body: ByteBuffer, context: ChannelHandlerContext) {
        let path = String(CacheKeyPolicy.split(uri: head.uri).path)
        switch (head.method, path) {
        case (.GET, "/healthz"), (.HEAD, "/healthz"):
            respond(context, head, .ok, ["status": "ok"])
            return
        case (.GET, "/readyz"), (.HEAD, "/readyz"):
            readiness(head, context: context)
            return
        case (.GET, _), (.HEAD, _):
            // The dashboard's page, script and styles hold no data: the browser fetches them
            // without the token, and the script then sends it with every data request.
            if let asset = DashboardAssets.asset(at: path) {
                serve(asset, head, context: context)
                return
            }
        default:
            break
        }
        guard authorized(head) else {
            respond(context, head, .unauthorized, ["error": "missing or wrong bearer token"], extra: [("WWW-Authenticate", "Bearer")])
            return
        }
        switch (head.method, path) {
        case (.POST, "/purge"):
            purge(head, body: body, context: context)
        case (.PURGE, _):
            run(.path(path), head, context: context)
        case (.POST, "/reload"):
            reload(head, context: context)
        case (.GET, "/config"):
            configuration(head, context: context)
        case (.GET, "/stats"), (.HEAD, "/stats"):
            respond(context, head, .ok, runtime.statsReport())
        case (.GET, "/metrics"), (.HEAD, "/metrics"):
            metrics(head, context: context)
        case (.GET, "/stats/series"), (.HEAD, "/stats/series"):
            series(head, context: context)
        case (.POST, "/warm"):
            warm(head, body: body, context: context)
        case (.GET, "/warm"), (.HEAD, "/warm"):
            warmJobs(head, context: context)
        case (_, "/purge"), (_, "/reload"), (_, "/config"), (_, "/healthz"), (_, "/readyz"), (_, "/stats"), (_, "/metrics"), (_, "/stats/series"), (_, "/warm"):
            respond(context, head, .methodNotAllowed, ["error": "\(head.method.rawValue) is not allowed on \(path)"])
        case (_, _) where DashboardAssets.asset(at: path) != nil:
            respond(context, head, .methodNotAllowed, ["error": "\(head.method.rawValue) is not allowed on \(path)"])
        default:
            respond(context, head, .notFound, ["error": "no admin endpoint \(path)",
                                               "endpoints": ["GET / (dashboard)", "POST /purge", "PURGE /<path>", "POST /reload", "GET /config", "GET /stats",
                                                             "GET /stats/series", "GET /metrics", "POST /warm", "GET /warm", "GET /healthz", "GET /readyz"]])
        }
    }

    private func authorized(_ head: HTTPRequestHead) -> Bool {
        guard let token else { return true }
        guard let value = head.headers.first(name: "authorization"), value.lowercased().hasPrefix("bearer ") else { return false }
        return AdminToken.matches(value.dropFirst("bearer ".count), token)
    }

    // MARK: Endpoints

    /// Ready when a config is loaded and the upstream accepts a TCP connection; 503 `warming`
    /// while the warm start's fetches run (at most `warming.start_timeout`).
    private func readiness(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        if let pending = runtime.current.warmer?.warmingStart {
            respond(context, head, .serviceUnavailable, ["status": "warming", "pending": pending,
                                                         "reason": "fetching the hot keys of warming.state_file"])
            return
        }
        let snapshot = runtime.config
        let upstream = snapshot.configuration.upstream
        let loop = context.eventLoop
        let bound = NIOLoopBound((self, context), eventLoop: loop)
        ClientBootstrap(group: loop)
            .connectTimeout(.milliseconds(upstream.connectTimeout.milliseconds))
            .connect(host: upstream.host, port: upstream.port)
            .flatMap { $0.close() }
            .hop(to: loop)
            .whenComplete { result in
                let (handler, context) = bound.value
                switch result {
                case .success:
                    handler.respond(context, head, .ok, ["status": "ready", "config_version": snapshot.version])
                case .failure(let error):
                    handler.respond(context, head, .serviceUnavailable, ["status": "not ready", "reason": "upstream \(upstream.url) unreachable: \(error)"])
                }
            }
    }

    /// `{"url"}`, `{"pattern"}`, `{"regex"}`, `{"tags"}` or `{"all": true}`, each with an optional `"soft": true`.
    private func purge(_ head: HTTPRequestHead, body: ByteBuffer, context: ChannelHandlerContext) {
        let request: PurgeRequest
        do {
            request = try PurgeRequest(json: body)
        } catch {
            respond(context, head, .badRequest, ["error": error.description])
            return
        }
        let loop = context.eventLoop
        let targets: [InvalidationMessage.Target]
        switch request.target {
        case .url(let path): targets = [.path(path)]
        case .tags(let tags): targets = tags.map { .tag($0) }
        case .pattern(let pattern): targets = [.pattern(pattern)]
        case .all: targets = [.all]
        }
        let bound = NIOLoopBound((self, context), eventLoop: loop)
        runtime.invalidation.invalidate(targets, soft: request.soft, rewarm: request.rewarm, on: loop).whenSuccess { counts in
            let (handler, context) = bound.value
            handler.respond(context, head, .ok, Self.summary(ProxyRuntime.PurgeCount(adding: counts), kind: targets[0].kind, soft: request.soft))
        }
    }

    private func run(_ target: InvalidationMessage.Target, _ head: HTTPRequestHead, context: ChannelHandlerContext) {
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        runtime.invalidation.invalidate(target, on: context.eventLoop).whenSuccess { count in
            let (handler, context) = bound.value
            handler.respond(context, head, .ok, Self.summary(count, kind: target.kind, soft: false))
        }
    }

    /// `{"purged": kind, "removed" or "marked_stale": {"memory": n, "redis": n or null}}`.
    static func summary(_ count: ProxyRuntime.PurgeCount, kind: String, soft: Bool) -> [String: Any] {
        ["purged": kind, "soft": soft, soft ? "marked_stale" : "removed": ["memory": count.memory, "redis": count.redis.map { $0 as Any } ?? NSNull()]]
    }

    private func reload(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        switch runtime.reload() {
        case .success(let changes):
            respond(context, head, .ok, ["status": "reloaded", "config_version": runtime.config.version, "changes": changes.description])
        case .failure(let errors):
            respond(context, head, .unprocessableEntity, [
                "status": "rejected; the previous config stays active", "file": errors.file,
                "errors": errors.errors.map { ["path": $0.path, "line": $0.line.map { $0 as Any } ?? NSNull(), "message": $0.message] },
            ])
        }
    }

    /// The active config as JSON; secrets (the Redis password) are left out, the token is never in it.
    private func configuration(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        let snapshot = runtime.config
        do {
            let encoded = try JSONEncoder().encode(snapshot.configuration)
            let config = try JSONSerialization.jsonObject(with: encoded)
            respond(context, head, .ok, ["config_version": snapshot.version, "file": snapshot.sourcePath, "config": config])
        } catch {
            respond(context, head, .internalServerError, ["error": "cannot encode the config: \(error)"])
        }
    }

    /// `{"urls": [...]}` or `{"sitemap": "/sitemap.xml"}` (with optional `"headers"`): answered
    /// at once (202) with the job's id; the fetches go through the warming budget.
    private func warm(_ head: HTTPRequestHead, body: ByteBuffer, context: ChannelHandlerContext) {
        guard let warmer = runtime.current.warmer else {
            respond(context, head, .conflict, ["error": "warming is off: the config has no warming section"])
            return
        }
        let request: WarmRequest
        do {
            request = try WarmRequest(json: body)
        } catch {
            respond(context, head, .badRequest, ["error": error.description])
            return
        }
        let id: Int
        switch request.target {
        case .urls(let urls): id = warmer.warm(urls, fields: request.headers, kind: "urls")
        case .sitemap(let path): id = warmer.warm(sitemap: path, fields: request.headers)
        }
        respond(context, head, .accepted, ["job": id, "status": "accepted", "progress": "GET /warm"])
    }

    /// Every explicit warming job kept (the last 50), newest first, with its progress.
    private func warmJobs(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        guard let warmer = runtime.current.warmer else {
            respond(context, head, .ok, ["jobs": [Any](), "warming": "off"])
            return
        }
        let formatter = ISO8601DateFormatter()
        respond(context, head, .ok, ["jobs": warmer.lists.map { job -> [String: Any] in
            var entry: [String: Any] = [
                "job": job.id, "kind": job.kind, "state": job.state, "created": formatter.string(from: job.created), "urls": job.urls,
                "pending": job.pending, "stored": job.counts.stored, "not_modified": job.counts.notModified, "not_stored": job.counts.notStored,
                "failed": job.counts.failed, "dropped": job.counts.dropped, "skipped": job.counts.skipped, "bytes": job.counts.bytes,
            ]
            if let error = job.error { entry["error"] = error }
            return entry
        }])
    }

    /// The dashboard's points: `?since=<unix ms>` gives only the points after that time.
    private func series(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        let query = CacheKeyPolicy.split(uri: head.uri).query
        var since: Int64?
        for pair in (query ?? "").split(separator: "&") where pair.hasPrefix("since=") {
            guard let value = Int64(pair.dropFirst("since=".count)) else {
                respond(context, head, .badRequest, ["error": "since must be a time in milliseconds since 1970 (the last \"times\" value you have)"])
                return
            }
            since = value
        }
        respond(context, head, .ok, runtime.sampler.report(sinceMilliseconds: since))
    }

    private func serve(_ asset: DashboardAssets.Asset, _ head: HTTPRequestHead, context: ChannelHandlerContext) {
        var headers = HTTPHeaders([("Content-Type", asset.contentType), ("Content-Length", String(asset.body.readableBytes))])
        headers.add(contentsOf: DashboardAssets.securityFields)
        headers.add(name: "Cache-Control", value: "no-cache")
        if !head.isKeepAlive { headers.add(name: "Connection", value: "close") }
        write(context, head, HTTPResponseHead(version: head.version, status: .ok, headers: headers), body: asset.body)
    }

    /// Prometheus text exposition format 0.0.4.
    private func metrics(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        let text = runtime.renderMetrics()
        var headers = HTTPHeaders([("Content-Type", "text/plain; version=0.0.4; charset=utf-8"), ("Content-Length", String(text.count))])
        if !head.isKeepAlive { headers.add(name: "Connection", value: "close") }
        write(context, head, HTTPResponseHead(version: head.version, status: .ok, headers: headers), body: ByteBuffer(bytes: text))
    }

    // MARK: Writing

    private func respond(_ context: ChannelHandlerContext, _ head: HTTPRequestHead, _ status: HTTPResponseStatus, _ object: [String: Any],
                         extra: [(String, String)] = []) {
        var data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        data.append(UInt8(ascii: "\n"))
        var headers = HTTPHeaders([("Content-Type", "application/json"), ("Content-Length", String(data.count)), ("Cache-Control", "no-store"),
                                   ("X-Content-Type-Options", "nosniff")] + extra)
        if !head.isKeepAlive { headers.add(name: "Connection", value: "close") }
        write(context, head, HTTPResponseHead(version: head.version, status: status, headers: headers), body: ByteBuffer(bytes: data))
    }

    private func write(_ context: ChannelHandlerContext, _ head: HTTPRequestHead, _ response: HTTPResponseHead, body: ByteBuffer) {
        context.write(wrapOutboundOut(.head(response)), promise: nil)
        if head.method != .HEAD { context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil) }
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !head.isKeepAlive { done.assumeIsolated().whenComplete { _ in context.close(promise: nil) } }
    }
}
