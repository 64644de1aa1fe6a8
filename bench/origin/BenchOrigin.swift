// A fast origin for sidecache's load benchmark, with the URL space of ../shared/bench:
//   /items/<n>    1024 B JSON, Cache-Control: max-age=60, ETag, Last-Modified
//   /big/<n>      65536 B JSON, same headers
//   /nostore/<x>  1024 B, Cache-Control: no-store
//   /fill/<x>     1024 B, max-age=60
//   /slow/<x>     1024 B after 50 ms, max-age=60, 304 on a matching If-None-Match
//   /_stats       {"requests": N}: requests served so far (excluding /_stats)
// Usage: bench-origin [port] [threads]
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

let arguments = CommandLine.arguments
let port = arguments.count > 1 ? Int(arguments[1]) ?? 18280 : 18280
let threads = arguments.count > 2 ? Int(arguments[2]) ?? 1 : 1
let served = Atomic<Int>(0)

func json(size: Int, id: String) -> ByteBuffer {
    var text = "{\"id\":\"\(id)\",\"data\":\""
    let tail = "\"}\n"
    text += String(repeating: "x", count: max(0, size - text.utf8.count - tail.utf8.count))
    text += tail
    return ByteBuffer(string: text)
}

let smallBody = json(size: 1024, id: "small")
let bigBody = json(size: 65536, id: "big")
let lastModified = "Sat, 21 Nov 2026 12:00:00 GMT"

final class OriginHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart
    private var head: HTTPRequestHead?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h): head = h
        case .body: break
        case .end:
            guard let head else { return }
            self.head = nil
            route(head, context: context)
        }
    }

    private func route(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
        if path == "/_stats" {
            send(context, head, .ok, ByteBuffer(string: "{\"requests\":\(served.load(ordering: .relaxed))}\n"), [("Cache-Control", "no-store")])
            return
        }
        served.add(1, ordering: .relaxed)
        let parts = path.split(separator: "/", maxSplits: 1)
        let kind = parts.first.map(String.init) ?? ""
        let id = parts.count > 1 ? String(parts[1]) : "0"
        let etag = "\"\(kind)-\(id)\""
        let cacheable: [(String, String)] = [("Cache-Control", "max-age=60"), ("ETag", etag), ("Last-Modified", lastModified)]
        switch kind {
        case "items": send(context, head, .ok, smallBody, cacheable)
        case "big": send(context, head, .ok, bigBody, cacheable)
        case "nostore": send(context, head, .ok, smallBody, [("Cache-Control", "no-store")])
        case "fill": send(context, head, .ok, smallBody, [("Cache-Control", "max-age=60")])
        case "slow":
            let notModified = head.headers.first(name: "if-none-match") == etag
            context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(50)) {
                self.send(context, head, notModified ? .notModified : .ok, notModified ? nil : smallBody, cacheable)
            }
        default: send(context, head, .notFound, ByteBuffer(string: "not found\n"), [])
        }
    }

    private func send(_ context: ChannelHandlerContext, _ request: HTTPRequestHead, _ status: HTTPResponseStatus,
                      _ body: ByteBuffer?, _ extra: [(String, String)]) {
        var headers = HTTPHeaders(extra)
        headers.add(name: "Content-Type", value: "application/json")
        if status != .notModified { headers.add(name: "Content-Length", value: String(body?.readableBytes ?? 0)) }
        if !request.isKeepAlive { headers.add(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        if let body, request.method != .HEAD { context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil) }
        let keepAlive = request.isKeepAlive
        context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
            if !keepAlive { context.close(promise: nil) }
        }
    }
}

let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
let channel = try ServerBootstrap(group: group)
    .serverChannelOption(ChannelOptions.backlog, value: 1024)
    .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
    .childChannelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
    .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.configureHTTPServerPipeline()
            try channel.pipeline.syncOperations.addHandler(OriginHandler())
        }
    }
    .bind(host: "127.0.0.1", port: port).wait()
print("bench-origin listening on 127.0.0.1:\(port) with \(threads) thread(s)")
try channel.closeFuture.wait()
