import Foundation
import NIOCore
import TestSupport
import Testing

/// The built `sidecache` executable as a real process: signals, systemd notifications, the CLI and
/// memory use while streaming large bodies.
@Suite(.serialized) struct ProcessTests {
    func writeConfig(upstreamPort: Int, listenPort: Int, routes: String = Sidecar.defaultRoutes, extra: String = "") throws -> String {
        let path = NSTemporaryDirectory() + "sidecache-proc-\(UUID().uuidString).yaml"
        try """
        listen: "127.0.0.1:\(listenPort)"
        upstream: { url: "http://127.0.0.1:\(upstreamPort)", response_timeout: 10s }
        \(extra)
        \(routes)
        """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func runCLI(_ arguments: [String]) throws -> (Int32, String) {
        let output = NSTemporaryDirectory() + "sidecache-cli-\(UUID().uuidString).log"
        defer { try? FileManager.default.removeItem(atPath: output) }
        let p = try ChildProcess(SidecacheProcess.binary, arguments, output: output)
        p.wait()
        return (p.exitStatus ?? -1, (try? String(contentsOfFile: output, encoding: .utf8)) ?? "")
    }

    @Test func checkAcceptsAGoodFileAndListsEveryErrorOfABadOne() throws {
        let good = try writeConfig(upstreamPort: 3000, listenPort: 8080)
        let (ok, okText) = try runCLI(["check", "--config", good])
        #expect(ok == 0)
        #expect(okText.contains("is valid: 5 routes"))
        let bad = try writeConfig(upstreamPort: 3000, listenPort: 8080, extra: "limits: { idle_timeout: soon, max_conections: 5 }")
        let (code, text) = try runCLI(["check", "--config", bad])
        #expect(code == 1)
        #expect(text.contains("2 errors"))
        #expect(text.contains("line 3: limits.idle_timeout"))
        #expect(text.contains("limits.max_conections: unknown key"))
        let (versionCode, version) = try runCLI(["--version"])
        #expect(versionCode == 0 && !version.isEmpty)
    }

    @Test func sighupReloadsAValidFileAndKeepsTheOldConfigOnAnInvalidOne() async throws {
        let origin = try await TestOrigin.start { r in .ok("x \(r.path)") }
        let port = try freePort()
        let path = try writeConfig(upstreamPort: origin.port, listenPort: port)
        let proc = try SidecacheProcess(config: path, port: port)
        try await proc.waitUntilListening()
        _ = try await get(port, "/api/items/1")
        #expect(try await get(port, "/api/items/1").xCache == "HIT")

        try "routes: [".write(toFile: path, atomically: true, encoding: .utf8)
        proc.signal(SIGHUP)
        #expect(await proc.waitForOutput("config reload failed"))
        #expect(try await get(port, "/api/items/1").xCache == "HIT")

        let newRoutes = "routes:\n  - { name: everything, match: { path: \"/*\" }, cache: false }\n"
        _ = try writeConfig(upstreamPort: origin.port, listenPort: port, routes: newRoutes)
        try """
        listen: "127.0.0.1:\(port)"
        upstream: { url: "http://127.0.0.1:\(origin.port)", response_timeout: 10s }
        \(newRoutes)
        """.write(toFile: path, atomically: true, encoding: .utf8)
        proc.signal(SIGHUP)
        #expect(await proc.waitForOutput("routes added: everything"))
        #expect(proc.output.contains("routes removed: items, origin-rules, honour, writes, default"))
        #expect(try await get(port, "/api/items/1").xCache == "BYPASS")
        await proc.stop()
        #expect(proc.process.exitStatus == 0)
        await origin.stop()
    }

    @Test func sigtermFinishesInFlightRequestsThenExitsZero() async throws {
        let origin = try await TestOrigin.start { _ in OriginReply(status: .ok, body: "done", delay: .milliseconds(800)) }
        let port = try freePort()
        let path = try writeConfig(upstreamPort: origin.port, listenPort: port)
        let proc = try SidecacheProcess(config: path, port: port)
        try await proc.waitUntilListening()
        async let inFlight = request(port, "POST", "/api/slow", body: "x")
        try await Task.sleep(for: .milliseconds(200))
        proc.signal(SIGTERM)
        let r = try await inFlight
        #expect(r.status == 200 && r.text == "done")
        #expect(await proc.waitForExit(seconds: 10) == 0)
        #expect(throws: (any Error).self) { _ = try TestConnection(port: port, timeoutSeconds: 1) }
        #expect(proc.output.contains("shutting down"))
        await origin.stop()
    }

    @Test func systemdIsToldReadyReloadingAndStopping() async throws {
        let origin = try await TestOrigin.start { _ in .ok("x") }
        let socketPath = NSTemporaryDirectory() + "notify-\(UUID().uuidString.prefix(8)).sock"
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in socketPath.utf8.enumerated() { raw[i] = b }
        }
        let bound = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        #expect(bound == 0)
        var tv = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        defer { close(fd); unlink(socketPath) }

        let port = try freePort()
        let path = try writeConfig(upstreamPort: origin.port, listenPort: port)
        let proc = try SidecacheProcess(config: path, port: port, environment: ["NOTIFY_SOCKET": socketPath])
        let receive = { @Sendable () -> String in
            var buffer = [UInt8](repeating: 0, count: 512)
            let n = recv(fd, &buffer, buffer.count, 0)
            return n > 0 ? String(decoding: buffer[0..<n], as: UTF8.self) : ""
        }
        #expect(try await offloaded(receive).hasPrefix("READY=1"))
        proc.signal(SIGHUP)
        #expect(try await offloaded(receive) == "RELOADING=1")
        #expect(try await offloaded(receive).hasPrefix("READY=1"))
        proc.signal(SIGTERM)
        #expect(try await offloaded(receive) == "STOPPING=1")
        #expect(await proc.waitForExit(seconds: 10) == 0)
        await origin.stop()
    }

    @Test func largeBodiesStreamThroughInBoundedMemory() async throws {
        let size = 512 << 20
        let origin = try await TestOrigin.start { r in
            r.method == .POST ? .ok("received \(r.bodyBytes)") : OriginReply(status: .ok, streamBytes: size)
        }
        let port = try freePort()
        let path = try writeConfig(upstreamPort: origin.port, listenPort: port)
        let proc = try SidecacheProcess(config: path, port: port)
        try await proc.waitUntilListening()
        let before = proc.peakRSSKiB ?? 0

        let downloaded = try await offloaded { () -> Int in
            let c = try TestConnection(port: port, timeoutSeconds: 60)
            try c.send("GET /download HTTP/1.1\r\nHost: x\r\n\r\n")
            return try c.readResponseCountingBody(pauseEveryMiB: 8).1
        }
        #expect(downloaded == size)

        let uploaded = try await offloaded { () -> String in
            let c = try TestConnection(port: port, timeoutSeconds: 60)
            try c.send("POST /api/upload HTTP/1.1\r\nHost: x\r\nContent-Length: \(size)\r\n\r\n")
            let chunk = [UInt8](repeating: 0x41, count: 1 << 20)
            for _ in 0..<(size >> 20) { try c.send(chunk) }
            return try c.readResponse().text
        }
        #expect(uploaded == "received \(size)")
        let peak = proc.peakRSSKiB ?? .max
        // 512 MiB each way went through; the process grew by a few buffers, not by the bodies.
        #expect(peak - before < 96 * 1024, "peak RSS grew from \(before) KiB to \(peak) KiB")
        await proc.stop()
        await origin.stop()
    }
}
