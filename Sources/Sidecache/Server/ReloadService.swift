import ServiceLifecycle
import UnixSignals

/// Reloads the config on every SIGHUP. The signal sequence is created by the caller before anything
/// else starts: until a handler is installed, SIGHUP's default action kills the process.
public struct ReloadService: Service {
    private let signals: UnixSignalsSequence
    private let runtime: ProxyRuntime
    private let notifier: SystemdNotifier

    public init(signals: UnixSignalsSequence, runtime: ProxyRuntime, notifier: SystemdNotifier) {
        self.signals = signals
        self.runtime = runtime
        self.notifier = notifier
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            for await _ in signals {
                notifier.reloading()
                runtime.logger.notice("SIGHUP: reloading config", metadata: ["file": "\(runtime.config.sourcePath)"])
                runtime.reload()
                notifier.ready(status: "serving, config version \(runtime.config.version)")
            }
        }
    }
}
