import Foundation
import HTTPCaching
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import SidecacheConfig
import UnixSignals

/// Runs sidecache in this process until SIGTERM/SIGINT: the entry point behind `sidecache serve`
/// and `sidecache demo`.
public enum SidecacheServer {
    public static let version = "0.1.0"

    /// Serves with the given config; returns when shut down. Throws when the listener cannot bind.
    public static func run(
        snapshot: ConfigSnapshot,
        threads: Int = System.coreCount,
        onListening: @escaping @Sendable (SocketAddress) -> Void = { _ in }
    ) async throws {
        // Trap SIGHUP before anything else, or a reload signal arriving during start-up kills us.
        let hangups = await UnixSignalsSequence(trapping: .sighup)
        let sink = LogSink()
        defer {
            sink.flush()
            sink.close()
        }
        let levelBox = LogLevelBox(Logger.Level(rawValue: snapshot.configuration.logging.level) ?? .info)
        var logger = Logger(label: "sidecache") { label in JSONLogHandler(label: label, sink: sink, level: .trace, levelBox: levelBox) }
        logger.logLevel = .trace
        let group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, threads))
        let notifier = SystemdNotifier()
        let runtime = ProxyRuntime(snapshot: snapshot, group: group, logger: logger, logSink: sink, levelBox: levelBox)
        let server = ProxyServer(
            runtime: runtime, group: group,
            onListening: { address in
                notifier.ready(status: "serving on \(address)")
                onListening(address)
            },
            onStopping: { notifier.stopping() }
        )
        let reload = ReloadService(signals: hangups, runtime: runtime, notifier: notifier)
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: server, successTerminationBehavior: .gracefullyShutdownGroup, serviceName: "proxy"),
            .init(service: reload, successTerminationBehavior: .ignore, serviceName: "reload"),
        ]
        if let admin = snapshot.configuration.admin {
            do {
                let adminServer = try AdminServer(runtime: runtime, group: group, admin: admin, environment: ProcessInfo.processInfo.environment)
                services.append(.init(service: adminServer, successTerminationBehavior: .gracefullyShutdownGroup, serviceName: "admin"))
            } catch {
                logger.critical("not starting: \(error)")
                runtime.shutdown()
                try? await group.shutdownGracefully()
                throw error
            }
        }
        var configuration = ServiceGroupConfiguration(services: services, logger: logger)
        configuration.gracefulShutdownSignals = [.sigterm, .sigint]
        let group2 = ServiceGroup(configuration: configuration)
        do {
            try await group2.run()
        } catch {
            logger.critical("stopped with an error: \(error)")
            runtime.shutdown()
            try? await group.shutdownGracefully()
            throw error
        }
        runtime.shutdown()
        try? await group.shutdownGracefully()
    }
}
