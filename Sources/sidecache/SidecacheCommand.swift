import ArgumentParser
import NIOCore
import Sidecache
import SidecacheConfig

#if canImport(Glibc)
import Glibc
#endif

@main
struct SidecacheCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sidecache",
        abstract: "A caching reverse proxy sidecar for HTTP APIs.",
        discussion: """
        Runs beside an existing HTTP API and caches its responses per route, as declared in one YAML file.
        Reload the file with SIGHUP (systemctl reload sidecache); stop with SIGTERM.
        """,
        version: SidecacheServer.version,
        subcommands: [Serve.self, Check.self, Demo.self, Simulate.self]
    )
}

struct ConfigOption: ParsableArguments {
    @Option(name: .shortAndLong, help: "Path of the YAML config file (default: $SIDECACHE_CONFIG, else /etc/sidecache/sidecache.yaml).")
    var config: String?

    var path: String {
        if let config { return config }
        if let env = getenv("SIDECACHE_CONFIG"), let value = String(validatingCString: env), !value.isEmpty { return value }
        return "/etc/sidecache/sidecache.yaml"
    }
}

/// Loads a config file or prints every error (path and line) and exits 1.
func loadOrExit(_ path: String) throws -> ConfigSnapshot {
    do throws(ConfigErrors) {
        return try ConfigLoader.load(path: path, version: 1)
    } catch {
        var stderr = StandardError()
        print("sidecache: \(error.errors.count) error\(error.errors.count == 1 ? "" : "s") in \(path):", to: &stderr)
        for e in error.errors { print("  \(e)", to: &stderr) }
        throw ExitCode(1)
    }
}

struct StandardError: TextOutputStream {
    mutating func write(_ string: String) { _ = string.withCString { Glibc.write(2, $0, strlen($0)) } }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the proxy (the systemd unit's ExecStart).")

    @OptionGroup var options: ConfigOption

    func run() async throws {
        let snapshot = try loadOrExit(options.path)
        do {
            try await SidecacheServer.run(snapshot: snapshot, threads: snapshot.configuration.eventLoops ?? System.coreCount)
        } catch {
            var stderr = StandardError()
            print("sidecache: \(error)", to: &stderr)
            throw ExitCode(1)
        }
    }
}

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Validate a config file, like nginx -t: exit 0 if it is valid, else list every error and exit 1.")

    @OptionGroup var options: ConfigOption

    func run() throws {
        let snapshot = try loadOrExit(options.path)
        print("sidecache: \(options.path) is valid: \(snapshot.summary)")
    }
}
