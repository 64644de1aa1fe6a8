import HTTPCaching
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// A small sample API for `sidecache demo`: items, search, and writes, answering like a typical
/// backend that knows nothing about caching (no Cache-Control; the routes' TTLs apply).
final class DemoOrigin: Sendable {
    private let group: any EventLoopGroup
    private let hits = NIOLockedValueBox(0)
    private let channel: NIOLockedValueBox<(any Channel)?> = NIOLockedValueBox(nil)

    init(group: any EventLoopGroup) { self.group = group }

    /// Requests the origin has answered (the demo prints it to show what the cache saved).
    var requestCount: Int { hits.withLockedValue { $0 } }

    func start(host: String, port: Int) async throws -> SocketAddress {
        let origin = self
        let ch = try await ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(DemoOriginHandler(origin: origin))
                }
            }
            .bind(host: host, port: port).get()
        channel.withLockedValue { $0 = ch }
        guard let address = ch.localAddress else { throw ChannelError.inappropriateOperationForState }
        return address
    }

    func stop() async {
        try? await channel.withLockedValue({ $0 })?.close()
    }

    fileprivate func countHit() -> Int { hits.withLockedValue { $0 += 1; return $0 } }
}

private final class DemoOriginHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let origin: DemoOrigin
    private var head: HTTPRequestHead?

    init(origin: DemoOrigin) { self.origin = origin }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h): head = h
        case .body: break
        case .end:
            guard let head else { return }
            self.head = nil
            let n = origin.countHit()
            let (status, body, extra) = answer(head, hit: n)
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: "application/json")
            headers.add(name: "Content-Length", value: String(body.utf8.count))
            headers.add(name: "Date", value: HTTPDate.format(secondsSinceEpoch: CacheInstant.now().seconds))
            headers.add(name: "X-Origin-Request", value: String(n))
            for (k, v) in extra { headers.add(name: k, value: v) }
            if !head.isKeepAlive { headers.add(name: "Connection", value: "close") }
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
            if head.method != .HEAD {
                context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: body)))), promise: nil)
            }
            let keepAlive = head.isKeepAlive
            context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
                if !keepAlive { context.close(promise: nil) }
            }
        }
    }

    private func answer(_ head: HTTPRequestHead, hit: Int) -> (HTTPResponseStatus, String, [(String, String)]) {
        let (path, query) = CacheKeyPolicy.split(uri: head.uri)
        let parts = path.split(separator: "/")
        if parts.count == 3, parts[0] == "api", parts[1] == "items" {
            let id = parts[2]
            if head.method == .GET || head.method == .HEAD {
                return (.ok, "{\"id\":\"\(id)\",\"name\":\"item \(id)\",\"price\":\(id.count * 7 + 3),\"origin_request\":\(hit)}\n",
                        [("ETag", "\"item-\(id)-v1\""), ("Last-Modified", "Sat, 21 Nov 2026 12:00:00 GMT")])
            }
            return (.ok, "{\"id\":\"\(id)\",\"updated\":true}\n", [])
        }
        if path == "/api/search" {
            return (.ok, "{\"query\":\"\(query ?? "")\",\"results\":[1,2,3],\"origin_request\":\(hit)}\n", [])
        }
        if path == "/" {
            return (.ok, "{\"service\":\"sidecache demo origin\",\"try\":[\"/api/items/42\",\"/api/search?q=shoes\"]}\n", [])
        }
        return (.notFound, "{\"error\":\"not found\"}\n", [])
    }
}
