import ArgumentParser
import NIOCore
import NIOPosix
import Sidecache
import SidecacheConfig

#if canImport(Glibc)
import Glibc
#endif

struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Start a sample API and sidecache in front of it (memory cache, no Redis), and show a MISS then a HIT."
    )

    @Option(name: .shortAndLong, help: "Config file to use; its upstream.url says where the sample API listens.")
    var config: String = "conf/sidecache.yaml"

    func run() async throws {
        let snapshot = try loadOrExit(config)
        let c = snapshot.configuration
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let origin = DemoOrigin(group: group)
        do {
            _ = try await origin.start(host: c.upstream.host, port: c.upstream.port)
        } catch {
            var stderr = StandardError()
            print("sidecache demo: cannot start the sample API on \(c.upstream.host):\(c.upstream.port): \(error)", to: &stderr)
            throw ExitCode(1)
        }
        let base = Self.url(c.listen)
        var adminLines = ""
        if let admin = c.admin {
            let adminBase = Self.url(admin.listen)
            adminLines = """

              open \(adminBase)/ in a browser                                 # the live dashboard: traffic, hit ratio, latency, purges
              curl -s \(adminBase)/stats                                        # admin port: hits, misses, hit ratio per route
              curl -s -X POST \(adminBase)/purge -d '{"tags": ["items"]}'      # purge every entry tagged "items"
            """
        }
        print("""
        sidecache demo: sample API on \(c.upstream.url), sidecache on \(base) (config \(config))
        JSON log lines follow on stdout. Try, in another terminal:

          curl -si \(base)/api/items/42 | grep -iE '^(HTTP|x-cache|cache-status|age)'   # X-Cache: MISS
          curl -si \(base)/api/items/42 | grep -iE '^(HTTP|x-cache|cache-status|age)'   # X-Cache: HIT
          curl -si -X PUT \(base)/api/items/42 | grep -iE '^(HTTP|x-cache)'             # write: invalidates item 42
          curl -si \(base)/api/items/42 | grep -iE '^(HTTP|x-cache)'                    # X-Cache: MISS again\(adminLines)
          kill -HUP \(getpid())                                                         # reload \(config)

        Ctrl-C stops both.

        """)
        fflush(nil)
        let probeURL = "/api/items/42"
        do {
            try await SidecacheServer.run(snapshot: snapshot) { address in
                // Show the cache working once, from a plain thread (never an event loop).
                let port = address.port ?? c.listen.port
                Task.detached {
                    for attempt in 1...2 {
                        let line = DemoProbe.get(host: "127.0.0.1", port: port, path: probeURL)
                        print("sidecache demo: request \(attempt) GET \(probeURL) -> \(line)")
                        fflush(nil)
                    }
                }
            }
        } catch {
            var stderr = StandardError()
            print("sidecache demo: \(error)", to: &stderr)
            await origin.stop()
            try? await group.shutdownGracefully()
            throw ExitCode(1)
        }
        await origin.stop()
        try? await group.shutdownGracefully()
        print("sidecache demo: the sample API answered \(origin.requestCount) request(s)")
    }
}

extension Demo {
    /// A URL to reach a listen address from this machine (a wildcard address through loopback).
    static func url(_ address: SidecacheConfiguration.ListenAddress) -> String {
        let host = address.host == "0.0.0.0" || address.host.isEmpty ? "127.0.0.1" : address.host
        return "http://\(host.contains(":") ? "[\(host)]" : host):\(address.port)"
    }
}

/// One blocking HTTP GET over a plain socket, summarised as "status, X-Cache, Cache-Status".
enum DemoProbe {
    static func get(host: String, port: Int, path: String) -> String {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return "socket() failed" }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        inet_pton(AF_INET, host, &addr.sin_addr)
        let connected = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { return "connect failed" }
        let request = "GET \(path) HTTP/1.1\r\nHost: \(host):\(port)\r\nConnection: close\r\n\r\n"
        _ = request.withCString { send(fd, $0, strlen($0), 0) }
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { break }
            data.append(contentsOf: buffer[0..<n])
        }
        let text = String(decoding: data, as: UTF8.self)
        let lines = text.split(separator: "\r\n")
        let status = lines.first.map(String.init) ?? "no response"
        func header(_ name: String) -> String {
            lines.first { $0.lowercased().hasPrefix(name + ":") }.map { String(String($0.split(separator: ":", maxSplits: 1)[1]).drop(while: { $0 == " " })) } ?? "-"
        }
        return "\(status), X-Cache: \(header("x-cache")), Cache-Status: \(header("cache-status"))"
    }
}
