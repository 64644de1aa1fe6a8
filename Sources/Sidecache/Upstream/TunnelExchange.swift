import HTTPCaching
import HTTPWire
import NIOCore
import NIOHTTP1
import NIOPosix

/// `Upgrade: websocket` (RFC 9110 §7.8): the request goes upstream on a connection of its own; if
/// the upstream answers 101 both connections drop their HTTP handlers and are glued together, so
/// frames pass both ways untouched. Any other answer is relayed as a normal response.
final class TunnelExchange {
    private weak var handler: ProxyHandler?
    private let request: ActiveRequest
    private let clientAddress: String
    private var upstream: (any Channel)?
    private var upstreamHandlers: [any RemovableChannelHandler] = []
    private var relayingPlainResponse = false
    /// The circuit breaker's leave for this upgrade (a tunnel is never retried).
    private var pass: BreakerPass?

    init(handler: ProxyHandler, request: ActiveRequest, clientAddress: String) {
        self.handler = handler
        self.request = request
        self.clientAddress = clientAddress
    }

    func start() {
        guard let handler, let context = handler.context else { return }
        let settings = UpstreamSettings(request.snapshot.configuration.upstream, loops: handler.runtime.pools.loopCount)
        let head = UpstreamRequest.head(for: request, clientAddress: clientAddress, forFill: false)
        request.markUpstreamStart()
        switch handler.runtime.upstreamGuard.breaker?.admit() {
        case .rejected(let retryAfter):
            request.markUpstreamEnd()
            handler.respondUpstreamError(UpstreamError(.circuitOpen, "circuit breaker is open; not asking the upstream", requestNotSent: true,
                                                       retryAfter: retryAfter), to: request)
            return
        case .go(let granted):
            pass = granted
        case nil:
            break
        }
        let bootstrap = ClientBootstrap(group: context.eventLoop)
            .connectTimeout(settings.connectTimeout)
            .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
        bootstrap.connect(host: settings.host, port: settings.port).assumeIsolated().whenComplete { [self] result in
            switch result {
            case .failure(let error):
                let e = UpstreamError(.connectFailed, "\(settings.target) is unreachable: \(error)", requestNotSent: true)
                self.pass?.record(e)
                self.handler?.respondUpstreamError(e, to: self.request)
            case .success(let channel):
                self.connected(channel, head: head)
            }
        }
    }

    private func connected(_ channel: any Channel, head: UpstreamRequestHead) {
        guard handler != nil else {
            channel.close(promise: nil)
            return
        }
        upstream = channel
        // NIO's codec for this one exchange (off the hot path): its decoder hands on the bytes
        // after a 101, and needs to see the request go out as a typed head, which the relayed
        // bytes are parsed back into.
        var bytes = head.bytes
        var parser = RequestHeadParser(limits: RequestHeadLimits(maxHeadBytes: max(32 * 1024, bytes.readableBytes)))
        guard let parsed = try? parser.parse(&bytes) else {
            channel.close(promise: nil)
            return
        }
        let encoder = HTTPRequestEncoder()
        let decoder = ByteToMessageHandler(HTTPResponseDecoder(leftOverBytesStrategy: .forwardBytes))
        let receiver = TunnelResponseReceiver(exchange: self)
        upstreamHandlers = [receiver, decoder, encoder]
        do {
            try channel.pipeline.syncOperations.addHandlers([encoder, decoder, receiver])
        } catch {
            channel.close(promise: nil)
            return
        }
        channel.write(HTTPClientRequestPart.head(WireRequestDecoder.requestHead(parsed)), promise: nil)
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
    }

    fileprivate func received(_ part: HTTPClientResponsePart) {
        guard let handler, let upstream else { return }
        switch part {
        case .head(let head) where head.status == .switchingProtocols:
            pass?.record(status: head.status.code)
            request.markUpstreamEnd()
            var headers = head.headers
            headers.replaceOrAdd(name: "X-Request-ID", value: request.requestID.text)
            guard handler.switchToTunnel(request, head: HTTPResponseHead(version: request.head.version, status: .switchingProtocols, headers: headers), upstream: upstream, upstreamHandlers: upstreamHandlers) else {
                upstream.close(promise: nil)
                return
            }
        case .head(let head):
            pass?.record(status: head.status.code)
            request.markUpstreamEnd()
            relayingPlainResponse = true
            handler.beginStreamedResponse(head, to: request, reader: nil, cacheStatus: .forwarded(.bypass))
        case .body(let buffer):
            if relayingPlainResponse { handler.streamBody(buffer, to: request) }
        case .end:
            if relayingPlainResponse {
                handler.endStreamedResponse(request)
                upstream.close(promise: nil)
            }
        }
    }

    fileprivate func failed(_ error: any Error) {
        guard let handler else { return }
        if relayingPlainResponse {
            handler.abortStreamedResponse(request)
        } else if !request.responseStarted {
            handler.respondUpstreamError(UpstreamError(.closedBeforeResponse, "closed the connection before answering the upgrade"), to: request)
        }
    }

    /// The client left: the upstream side of the tunnel (or of the relayed answer) goes too.
    func cancel() {
        pass?.abandon()
        upstream?.close(promise: nil)
    }
}

/// Reads the upstream's answer to an upgrade request.
private final class TunnelResponseReceiver: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart

    private let exchange: TunnelExchange
    private var done = false
    /// After a 101 the decoder may still deliver the message's end; nothing more is relayed.
    private var upgraded = false

    init(exchange: TunnelExchange) { self.exchange = exchange }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !upgraded else { return }
        let part = unwrapInboundIn(data)
        if case .head(let head) = part, head.status == .switchingProtocols { upgraded = true }
        exchange.received(part)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        exchange.failed(error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !done { exchange.failed(ChannelError.eof) }
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) { done = true }
}
