import NIOCore
import NIOHTTP1

extension ProxyHandler {
    /// The upstream accepted a WebSocket upgrade: send the 101, then replace both connections' HTTP
    /// handlers by a glued pair. Bytes the decoders had read past the head are forwarded to the glue.
    func switchToTunnel(_ r: ActiveRequest, head: HTTPResponseHead, upstream: any Channel,
                        upstreamHandlers: [any RemovableChannelHandler]) -> Bool {
        guard let context, request === r, let http = httpHandlers else { return false }
        r.status = 101
        r.responseStarted = true
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        tunnelEstablished(r)

        let (clientGlue, upstreamGlue) = GlueHandler.matchedPair()
        do {
            let client = context.pipeline.syncOperations
            try client.addHandler(clientGlue)
            try upstream.pipeline.syncOperations.addHandler(upstreamGlue)
            // We are inside the upstream decoder's callback: it still has the 101's end to deliver
            // (the receiver swallows it). Remove the HTTP handlers once that call stack unwinds;
            // bytes the decoder read past the head are then forwarded to the glue.
            upstream.eventLoop.assumeIsolated().execute {
                let ops = upstream.pipeline.syncOperations
                for h in upstreamHandlers { ops.removeHandler(h, promise: nil) }
            }
            client.removeHandler(http.decoder, promise: nil)
            client.removeHandler(http.encoder, promise: nil)
            _ = context.channel.setOption(ChannelOptions.autoRead, value: true)
            _ = upstream.setOption(ChannelOptions.autoRead, value: true)
            client.removeHandler(self, promise: nil)
        } catch {
            context.close(promise: nil)
            upstream.close(promise: nil)
            return false
        }
        return true
    }
}
