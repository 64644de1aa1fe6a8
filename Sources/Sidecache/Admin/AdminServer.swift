import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle
import SidecacheConfig

/// The operators' HTTP port as a service: purge, reload, the active config, health. Runs beside
/// the proxy listener on the same event loops; nothing here is on the request path.
public final class AdminServer: Service, Sendable {
    private let runtime: ProxyRuntime
    private let group: any EventLoopGroup
    private let admin: SidecacheConfiguration.Admin
    private let token: String?
    private let onListening: @Sendable (SocketAddress) -> Void

    /// Throws when a token is needed (non-loopback address) and none can be found.
    public init(runtime: ProxyRuntime, group: any EventLoopGroup, admin: SidecacheConfiguration.Admin,
                environment: [String: String], onListening: @escaping @Sendable (SocketAddress) -> Void = { _ in }) throws {
        self.runtime = runtime
        self.group = group
        self.admin = admin
        self.token = try AdminToken.resolve(admin, environment: environment)
        self.onListening = onListening
    }

    public func run() async throws {
        let runtime = self.runtime
        let token = self.token
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(AdminHandler(runtime: runtime, token: token))
                }
            }
        let channel: any Channel
        do {
            channel = try await bootstrap.bind(host: admin.listen.host, port: admin.listen.port).get()
        } catch {
            throw ListenError(address: "admin \(admin.listen)", underlying: error)
        }
        if let address = channel.localAddress {
            runtime.logger.notice("admin port listening", metadata: [
                "address": "\(address.ipAddress ?? "?"):\(address.port ?? 0)", "token": "\(token == nil ? "none (loopback only)" : "required")",
            ])
            onListening(address)
        }
        try? await gracefulShutdown()
        try? await channel.close()
    }
}
