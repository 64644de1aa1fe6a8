import Foundation
import HTTPCaching
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ServiceLifecycle
import Sidecache
import SidecacheConfig
import TestSupport

/// A wall clock the test moves by hand, so TTLs expire without sleeping.
final class ManualClock: Sendable {
    private let value = NIOLockedValueBox(CacheInstant.now())
    func now() -> CacheInstant { value.withLockedValue { $0 } }
    func advance(seconds: Int64) { value.withLockedValue { $0 = $0 + .seconds(seconds) } }
}

/// The monotonic clock of the breaker's open period, the retry budget and the rate limits: the
/// system's, plus whatever the test skipped ahead, so a wait of seconds takes none; or, with
/// `frozenAt`, one that stands still at that many nanoseconds until the test moves it.
final class ManualMonotonicClock: Sendable {
    private let skipped = NIOLockedValueBox<Int64>(0)
    private let frozenAt: Int64?

    init(frozenAt: Int64? = nil) { self.frozenAt = frozenAt }

    var clock: MonotonicClock {
        MonotonicClock { [self] in (frozenAt ?? MonotonicClock.system.nanoseconds()) + skipped.withLockedValue { $0 } }
    }

    func advance(_ amount: TimeAmount) { skipped.withLockedValue { $0 += amount.nanoseconds } }
}

/// A real sidecache (server, handlers, upstream pools) in this process, on a free port, in front of
/// a test origin. Config text uses `UPSTREAM` for the origin's URL.
final class Sidecar: Sendable {
    let port: Int
    /// The admin port, when the config has an `admin` section.
    let adminPort: Int?
    let runtime: ProxyRuntime
    let clock: ManualClock
    let monotonic: ManualMonotonicClock
    let configPath: String
    let logPath: String
    private let group: MultiThreadedEventLoopGroup
    private let services: ServiceGroup
    private let task: Task<Void, any Error>
    private let sink: LogSink

    static let defaultRoutes = """
    routes:
      - name: items
        match: { methods: [GET, HEAD], path: "/api/items/{id}" }
        ttl: 5m
        stale_while_revalidate: 30s
        stale_if_error: 10m
        key: { query: [lang], headers: [X-Tenant] }
        tags: ["items", "item:{id}"]
      - name: origin-rules
        match: { methods: [GET, HEAD], path: "/origin/*" }
      - name: honour
        match: { path: "/honour/*" }
        ttl: 5m
        honor_client_no_cache: true
      - name: writes
        match: { methods: [POST, PUT, PATCH, DELETE], path: "/api/*" }
        cache: false
      - name: default
        match: { path: "/*" }
        ttl: 1m
    """

    init(port: Int, adminPort: Int?, runtime: ProxyRuntime, clock: ManualClock, monotonic: ManualMonotonicClock, configPath: String, logPath: String, group: MultiThreadedEventLoopGroup,
         services: ServiceGroup, task: Task<Void, any Error>, sink: LogSink) {
        self.port = port
        self.adminPort = adminPort
        self.runtime = runtime
        self.clock = clock
        self.monotonic = monotonic
        self.configPath = configPath
        self.logPath = logPath
        self.group = group
        self.services = services
        self.task = task
        self.sink = sink
    }

    /// `upstreamSection` replaces the whole `upstream:` block (for breaker and retry settings).
    static func start(origin: TestOrigin?, upstreamPort: Int? = nil, upstreamSection: String? = nil, extra: String = "",
                      routes: String = defaultRoutes, access: Bool = false, adminEnvironment: [String: String] = [:]) async throws -> Sidecar {
        let upstream = "http://127.0.0.1:\(upstreamPort ?? origin?.port ?? 1)"
        let yaml = """
        listen: "127.0.0.1:0"
        \(upstreamSection ?? """
        upstream:
          url: "\(upstream)"
          connect_timeout: 1s
          response_timeout: 2s
        """)
        \(extra)
        logging: { level: debug, access: \(access) }
        \(routes)
        """
        let dir = NSTemporaryDirectory() + "sidecache-test-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let configPath = dir + "/sidecache.yaml"
        let logPath = dir + "/log.jsonl"
        try yaml.write(toFile: configPath, atomically: true, encoding: .utf8)
        let snapshot = try ConfigLoader.load(path: configPath, version: 1)
        let clock = ManualClock()
        let monotonic = ManualMonotonicClock()
        let fd = open(logPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        let sink = LogSink(fileDescriptor: fd)
        let levelBox = LogLevelBox(.debug)
        let logger = Logger(label: "test") { JSONLogHandler(label: $0, sink: sink, level: .trace, levelBox: levelBox) }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let runtime = ProxyRuntime(snapshot: snapshot, group: group, logger: logger, logSink: sink, levelBox: levelBox, clock: { clock.now() },
                                   monotonic: monotonic.clock)
        let (stream, continuation) = AsyncStream<Int>.makeStream()
        let server = ProxyServer(runtime: runtime, group: group, onListening: { address in
            continuation.yield(address.port ?? 0)
            continuation.finish()
        })
        var list: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: server)]
        let (adminStream, adminContinuation) = AsyncStream<Int>.makeStream()
        if let admin = snapshot.configuration.admin {
            let adminServer = try AdminServer(runtime: runtime, group: group, admin: admin, environment: adminEnvironment) { address in
                adminContinuation.yield(address.port ?? 0)
                adminContinuation.finish()
            }
            list.append(.init(service: adminServer))
        } else {
            adminContinuation.finish()
        }
        var config = ServiceGroupConfiguration(services: list, logger: logger)
        config.gracefulShutdownSignals = []
        let services = ServiceGroup(configuration: config)
        let task = Task { try await services.run() }
        var port = 0
        for await p in stream { port = p }
        guard port != 0 else { throw TestClientError(description: "sidecache did not start") }
        var adminPort: Int?
        for await p in adminStream { adminPort = p }
        return Sidecar(port: port, adminPort: adminPort, runtime: runtime, clock: clock, monotonic: monotonic, configPath: configPath, logPath: logPath, group: group,
                       services: services, task: task, sink: sink)
    }

    func stop() async {
        await services.triggerGracefulShutdown()
        _ = try? await task.value
        runtime.shutdown()
        try? await group.shutdownGracefully()
        sink.flush()
    }

    var logLines: [String] {
        sink.flush()
        return ((try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }
}

/// Runs `body` with an origin and a sidecar in front of it, and stops both whatever happens.
/// `upstream` makes the whole `upstream:` section from the origin's port (for breaker and retries).
func withProxy(upstream: ((Int) -> String)? = nil, extra: String = "", routes: String = Sidecar.defaultRoutes, access: Bool = false,
               originKeepsRequests: Bool = true,
               _ responder: @escaping TestOrigin.Responder,
               _ body: (TestOrigin, Sidecar) async throws -> Void) async throws {
    let origin = try await TestOrigin.start(keepsRequests: originKeepsRequests, responder)
    let proxy: Sidecar
    do {
        proxy = try await Sidecar.start(origin: origin, upstreamSection: upstream?(origin.port), extra: extra, routes: routes, access: access)
    } catch {
        await origin.stop()
        throw error
    }
    do {
        try await body(origin, proxy)
    } catch {
        await proxy.stop()
        await origin.stop()
        throw error
    }
    await proxy.stop()
    await origin.stop()
}

/// The sidecache executable built next to the tests, run as a real process.
/// Started with posix_spawn (TestSupport's `ChildProcess`), not Foundation's `Process`, whose
/// `run()` now and then crashed the test process (swift-corelibs-foundation #5472).
final class SidecacheProcess: Sendable {
    let process: ChildProcess
    let outputPath: String
    let port: Int

    static var binary: String {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent(".build/debug/sidecache").path
    }

    init(config: String, port: Int, environment: [String: String] = [:]) throws {
        self.port = port
        outputPath = NSTemporaryDirectory() + "sidecache-proc-\(UUID().uuidString).log"
        process = try ChildProcess(Self.binary, ["serve", "--config", config], output: outputPath, environment: environment)
    }

    var pid: Int32 { process.pid }

    var output: String { (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "" }

    /// Waits until the listener accepts connections.
    func waitUntilListening(seconds: Double = 15) async throws {
        let listening = await eventually(timeout: .seconds(seconds), interval: .milliseconds(50)) {
            (try? TestConnection(port: port, timeoutSeconds: 1)) != nil || !process.isRunning
        }
        if !process.isRunning { throw TestClientError(description: "sidecache exited early:\n\(output)") }
        if listening { return }
        throw TestClientError(description: "sidecache did not listen on \(port):\n\(output)")
    }

    func signal(_ sig: Int32) { process.signal(sig) }

    func waitForExit(seconds: Double) async -> Int32? {
        let exited = await eventually(timeout: .seconds(seconds), interval: .milliseconds(50)) { !process.isRunning }
        return exited ? process.exitStatus : nil
    }

    func stop() async {
        if process.isRunning {
            signal(SIGTERM)
            if await waitForExit(seconds: 10) == nil { signal(SIGKILL) }
        }
    }

    /// Open file descriptors of the process.
    var openDescriptors: Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? 0
    }

    /// Resident memory now (VmRSS) in KiB.
    var residentKiB: Int { statusField("VmRSS:") ?? 0 }

    private func statusField(_ name: String) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix(name) {
            return Int(line.split(separator: " ", omittingEmptySubsequences: true)[1])
        }
        return nil
    }

    /// Peak resident memory (VmHWM) in KiB.
    var peakRSSKiB: Int? { statusField("VmHWM:") }

    /// Waits until the output contains `text`.
    func waitForOutput(_ text: String, seconds: Double = 10) async -> Bool {
        await eventually(timeout: .seconds(seconds), interval: .milliseconds(50)) { output.contains(text) }
    }
}
