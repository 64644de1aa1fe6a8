import HTTPWire
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle
import SidecacheConfig

/// The client-facing HTTP/1.1 listener as a service: binds, serves until graceful shutdown, then
/// stops accepting, lets in-flight requests finish within `limits.drain_timeout`, and closes the rest.
public final class ProxyServer: Service, Sendable {
    private let runtime: ProxyRuntime
    private let group: any EventLoopGroup
    private let registry = ConnectionRegistry()
    private let onListening: @Sendable (SocketAddress) -> Void
    private let onStopping: @Sendable () -> Void

    public init(runtime: ProxyRuntime, group: any EventLoopGroup,
                onListening: @escaping @Sendable (SocketAddress) -> Void = { _ in },
                onStopping: @escaping @Sendable () -> Void = {}) {
        self.runtime = runtime
        self.group = group
        self.onListening = onListening
        self.onStopping = onStopping
    }

    public func run() async throws {
        let listen = runtime.config.configuration.listen
        let channel = try await bind(listen)
        guard let address = channel.localAddress else { throw ChannelError.inappropriateOperationForState }
        runtime.logger.notice("listening", metadata: ["address": "\(address.ipAddress ?? "?"):\(address.port ?? 0)", "config": "\(runtime.config.sourcePath)", "summary": "\(runtime.config.summary)"])
        onListening(address)

        try? await gracefulShutdown()

        onStopping()
        let drain = runtime.config.configuration.limits.drainTimeout
        runtime.logger.notice("shutting down: no new connections, draining", metadata: ["open": "\(registry.count)", "drain_timeout_ms": "\(drain.milliseconds)"])
        try? await channel.close()
        registry.quiesceAll()
        let deadline = ContinuousClock.now + .milliseconds(drain.milliseconds)
        while registry.count > 0, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        let left = registry.count
        if left > 0 {
            runtime.logger.warning("drain time over, closing connections", metadata: ["open": "\(left)"])
            registry.closeAll()
        }
        runtime.pools.closeIdle()
        runtime.logger.notice("stopped")
    }

    private func bind(_ listen: SidecacheConfiguration.ListenAddress) async throws -> any Channel {
        let runtime = self.runtime
        let registry = self.registry
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.backlog, value: 1024)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(AcceptBackoffHandler())
                }
            }
            .childChannelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(ChannelOptions.maxMessagesPerRead, value: 16)
            // A client's FIN arrives as `inputClosed`: the requests it sent before are still owed
            // their answers (the proxy handler closes once they are written).
            .childChannelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let snapshot = runtime.config
                    let open = registry.add(channel)
                    if open > snapshot.configuration.limits.maxConnections {
                        try channel.pipeline.syncOperations.addHandler(RefuseConnectionHandler())
                        return
                    }
                    try ClientPipeline.configure(channel, runtime: runtime)
                }
            }
        do {
            return try await bootstrap.bind(host: listen.host, port: listen.port).get()
        } catch {
            throw ListenError(address: listen.description, underlying: error)
        }
    }
}

public struct ListenError: Error, CustomStringConvertible {
    public var address: String
    public var underlying: any Error
    public var description: String { "cannot listen on \(address): \(underlying)" }
}

/// The handlers of one client connection, front to back.
enum ClientPipeline {
    static func configure(_ channel: any Channel, runtime: ProxyRuntime) throws {
        let encoder = HTTPResponseEncoder()
        let limits = runtime.config.configuration.limits
        let decoder = WireRequestDecoder(limits: RequestHeadLimits(maxHeadBytes: limits.maxHeaderBytes))
        let proxy = ProxyHandler(runtime: runtime)
        proxy.httpHandlers = ClientHTTPHandlers(decoder: decoder, encoder: encoder)
        decoder.receiver = proxy
        try channel.pipeline.syncOperations.addHandlers([encoder, decoder, proxy])
        proxy.rawWriter = try channel.pipeline.syncOperations.context(handler: encoder)
    }
}

/// References to a client connection's HTTP handlers, so a WebSocket upgrade can remove them.
struct ClientHTTPHandlers {
    var decoder: any RemovableChannelHandler
    var encoder: any RemovableChannelHandler
}
