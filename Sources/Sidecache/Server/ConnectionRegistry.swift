import NIOConcurrencyHelpers
import NIOCore

/// The open client connections: counted for `limits.max_connections`, asked to quiesce on
/// shutdown, and closed when the drain time is over.
final class ConnectionRegistry: Sendable {
    private let channels = NIOLockedValueBox<[ObjectIdentifier: any Channel]>([:])

    /// Registers a new connection; returns how many are open including it.
    func add(_ channel: any Channel) -> Int {
        let id = ObjectIdentifier(channel)
        let count = channels.withLockedValue { table -> Int in
            table[id] = channel
            return table.count
        }
        channel.closeFuture.whenComplete { [self] _ in
            _ = self.channels.withLockedValue { $0.removeValue(forKey: id) }
        }
        return count
    }

    var count: Int { channels.withLockedValue { $0.count } }

    /// Asks every connection to finish its current request and close (HTTPServerPipelineHandler
    /// closes idle connections at once and busy ones after their response).
    func quiesceAll() {
        for channel in channels.withLockedValue({ Array($0.values) }) {
            channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        }
    }

    func closeAll() {
        for channel in channels.withLockedValue({ Array($0.values) }) {
            channel.close(promise: nil)
        }
    }
}

/// Answers a connection over the limit with 503 and closes it, without parsing anything.
final class RefuseConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func channelActive(context: ChannelHandlerContext) {
        let text = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 28\r\nRetry-After: 1\r\nConnection: close\r\n\r\ntoo many connections, retry\n"
        var buffer = context.channel.allocator.buffer(capacity: text.utf8.count)
        buffer.writeString(text)
        context.writeAndFlush(wrapOutboundOut(buffer)).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}
}
