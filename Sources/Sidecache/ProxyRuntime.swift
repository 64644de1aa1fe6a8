import HTTPCaching
import Logging
import NIOConcurrencyHelpers
import NIOCore
import SidecacheConfig

/// Everything the request path shares across connections and event loops: the current config
/// snapshot, the cache, the coalescer, the upstream pools and the logs.
public final class ProxyRuntime: Sendable {
    private let snapshot: NIOLockedValueBox<ConfigSnapshot>
    let store: MemoryStore
    let coalescer = FillCoalescer()
    let pools: UpstreamPools
    let logger: Logger
    let levelBox: LogLevelBox
    let accessLog: AccessLog
    let requestIDs = RequestIDGenerator()
    private let accessEnabled: NIOLockedValueBox<Bool>
    private let loadLock = NIOLock()
    private let clock: @Sendable () -> CacheInstant

    /// `clock` gives the wall-clock time for RFC 9111 arithmetic; tests pass a manual one.
    public init(snapshot: ConfigSnapshot, group: any EventLoopGroup, logger: Logger, logSink: LogSink, levelBox: LogLevelBox,
                clock: @escaping @Sendable () -> CacheInstant = { CacheInstant.now() }) {
        self.clock = clock
        self.snapshot = NIOLockedValueBox(snapshot)
        self.store = MemoryStore(limits: snapshot.configuration.cache.memory)
        self.pools = UpstreamPools(group: group)
        self.logger = logger
        self.levelBox = levelBox
        self.accessLog = AccessLog(sink: logSink)
        self.accessEnabled = NIOLockedValueBox(snapshot.configuration.logging.access)
        levelBox.level = Logger.Level(rawValue: snapshot.configuration.logging.level) ?? .info
    }

    func now() -> CacheInstant { clock() }

    /// The snapshot new requests use.
    public var config: ConfigSnapshot { snapshot.withLockedValue { $0 } }

    var accessLogEnabled: Bool { accessEnabled.withLockedValue { $0 } }

    public var cacheStatistics: MemoryStore.Statistics { store.statistics }

    /// Loads the file again and swaps the snapshot in if it is valid. An invalid file leaves the
    /// running config untouched; every error is logged and returned.
    @discardableResult
    public func reload() -> Result<ConfigChanges, ConfigErrors> {
        loadLock.withLock {
            let current = config
            let next: ConfigSnapshot
            do throws(ConfigErrors) {
                next = try ConfigLoader.load(path: current.sourcePath, version: current.version + 1)
            } catch {
                logger.error("config reload failed; the previous config stays active", metadata: [
                    "file": "\(current.sourcePath)", "errors": "\(error.errors.count)", "version": "\(current.version)",
                ])
                for e in error.errors {
                    logger.error("config error", metadata: ["file": "\(current.sourcePath)", "path": "\(e.path)", "line": "\(e.line.map(String.init) ?? "-")", "error": "\(e.message)"])
                }
                return .failure(error)
            }
            let changes = ConfigChanges(from: current.configuration, to: next.configuration)
            snapshot.withLockedValue { $0 = next }
            store.updateLimits(next.configuration.cache.memory)
            accessEnabled.withLockedValue { $0 = next.configuration.logging.access }
            levelBox.level = Logger.Level(rawValue: next.configuration.logging.level) ?? .info
            logger.notice("config reloaded: \(changes)", metadata: ["version": "\(next.version)", "routes": "\(next.routes.count)"])
            return .success(changes)
        }
    }
}
