import Foundation
import Logging
import NIOConcurrencyHelpers
import SidecacheConfig

/// Reads the config file again for a reload (SIGHUP or `POST /reload`): one reload at a time,
/// every error of a rejected file logged with its path and line, each outcome logged and counted.
/// Swapping the new snapshot in is the runtime's part; a rejected file leaves everything as it was.
struct ConfigReloader: Sendable {
    private let lock = NIOLock()
    private let logger: Logger
    private let metrics: SidecacheMetrics

    init(logger: Logger, metrics: SidecacheMetrics) {
        self.logger = logger
        self.metrics = metrics
    }

    /// Loads the file `current` came from; `apply` swaps the valid result in, under the lock.
    func reload(_ current: ConfigSnapshot, apply: (ConfigSnapshot) -> Void) -> Result<ConfigChanges, ConfigErrors> {
        lock.withLock {
            let next: ConfigSnapshot
            do throws(ConfigErrors) {
                next = try ConfigLoader.load(path: current.sourcePath, version: current.version + 1)
            } catch {
                logger.error("config reload failed; the previous config stays active", metadata: [
                    "file": "\(current.sourcePath)", "errors": "\(error.errors.count)", "version": "\(current.version)",
                ])
                for e in error.errors {
                    logger.error("config error", metadata: [
                        "file": "\(current.sourcePath)", "path": "\(e.path)", "line": "\(e.line.map(String.init) ?? "-")", "error": "\(e.message)",
                    ])
                }
                metrics.recordReload(succeeded: false)
                return .failure(error)
            }
            let changes = ConfigChanges(from: current.configuration, to: next.configuration)
            apply(next)
            logger.notice("config reloaded: \(changes)", metadata: ["version": "\(next.version)", "routes": "\(next.routes.count)"])
            metrics.recordReload(succeeded: true)
            return .success(changes)
        }
    }
}

/// What the last reload did: when, whether the file was taken, and each error of a rejected one.
struct ReloadRecord: Sendable {
    let at: Date
    let succeeded: Bool
    /// The active config's version afterwards (unchanged after a rejected file).
    let version: Int
    let changes: String?
    let errors: [ConfigError]

    init(at: Date, result: Result<ConfigChanges, ConfigErrors>, version: Int) {
        self.at = at
        self.version = version
        switch result {
        case .success(let changes):
            succeeded = true
            self.changes = changes.description
            errors = []
        case .failure(let rejected):
            succeeded = false
            changes = nil
            errors = rejected.errors
        }
    }

    /// As `/stats` shows it under `config.last_reload`.
    var json: [String: Any] {
        [
            "at": ISO8601DateFormatter().string(from: at), "result": succeeded ? "reloaded" : "rejected", "config_version": version,
            "changes": changes.map { $0 as Any } ?? NSNull(),
            "errors": errors.map { ["path": $0.path, "line": $0.line.map { $0 as Any } ?? NSNull(), "message": $0.message] as [String: Any] },
        ]
    }
}
