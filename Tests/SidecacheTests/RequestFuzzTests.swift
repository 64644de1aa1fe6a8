import Foundation
import NIOCore
import Sidecache
import TestSupport
import Testing

/// A seeded mutation fuzz of ordinary requests over a real socket, ended by the client in every
/// way (reading the answer after a half-close, closing, resetting, leaving mid-response). Whatever
/// arrives must be HTTP, and afterwards no upstream connection is lent out, descriptors and memory
/// are back near where they were, and a normal request is answered.
///
/// `SIDECACHE_FUZZ_SECONDS` (default 3) and `SIDECACHE_FUZZ_SEED` set the run; the summary line is
/// printed for longer runs by hand.
@Suite struct RequestFuzzTests {
    static let bases: [String] = [
        "GET /api/items/1 HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n",
        "GET /api/items/2?lang=en HTTP/1.1\r\nHost: x\r\nX-Tenant: t1\r\nIf-None-Match: \"v1\"\r\n\r\n",
        "HEAD /other/page HTTP/1.1\r\nHost: x\r\n\r\n",
        "POST /api/items/3 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{\"name\":\"a\"}\n",
        "PUT /api/items/4 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        "POST /api/items/5 HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\nbody",
        "GET /api/items/6 HTTP/1.1\r\nHost: x\r\n\r\nGET /api/items/6 HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET http://x/slow/7 HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /stream/8 HTTP/1.1\r\nHost: x\r\n\r\n",
        "DELETE /api/items/9 HTTP/1.0\r\n\r\n",
    ]

    /// How the client ends a case.
    enum Ending: CaseIterable {
        case halfCloseAndRead
        case closeAtOnce
        case resetAtOnce
        case resetAfterFirstBytes
    }

    struct Tally: Sendable {
        var cases = 0
        var responses = 0
        var notHTTP = 0
        var byStatusClass = [Int](repeating: 0, count: 6)
        var cut = 0

        mutating func add(_ other: Tally) {
            cases += other.cases
            responses += other.responses
            notHTTP += other.notHTTP
            cut += other.cut
            for i in 0..<6 { byStatusClass[i] += other.byStatusClass[i] }
        }
    }

    /// The built `sidecache` binary in its own process, so its descriptors and memory are its
    /// own (the origin and the clients live in this one), with the pool read from `/stats`.
    @Test func mutatedRequestsLeaveNoConnectionDescriptorOrMemoryBehind() async throws {
        let env = ProcessInfo.processInfo.environment
        let seconds = env["SIDECACHE_FUZZ_SECONDS"].flatMap(Double.init) ?? 3
        let seed = env["SIDECACHE_FUZZ_SEED"].flatMap { UInt64($0) } ?? 0x5EED_CAFE
        let origin = try await TestOrigin.start(keepsRequests: false) { r in
            if r.path.hasPrefix("/slow") { return .init(status: .ok, body: "late", delay: .milliseconds(20)) }
            if r.path.hasPrefix("/stream") { return .init(status: .ok, headers: [("Cache-Control", "no-store")], streamBytes: 256 * 1024) }
            return .ok("{\"ok\":true,\"path\":\"\(r.path)\"}", [("Content-Type", "application/json"), ("ETag", "\"v1\"")])
        }
        defer { Task { await origin.stop() } }
        let port = try freePort(), adminPort = try freePort()
        // A small cache: what a long run holds is then bounded, and memory that keeps growing is a leak.
        let path = NSTemporaryDirectory() + "sidecache-fuzz-\(UUID().uuidString).yaml"
        try """
        listen: "127.0.0.1:\(port)"
        upstream: { url: "http://127.0.0.1:\(origin.port)", connect_timeout: 1s, response_timeout: 2s }
        admin: { listen: "127.0.0.1:\(adminPort)" }
        cache: { memory: { max_bytes: 2MiB, max_object_bytes: 512KiB } }
        logging: { level: error, access: false }
        \(Sidecar.defaultRoutes)
        """.write(toFile: path, atomically: true, encoding: .utf8)
        let proxy = try SidecacheProcess(config: path, port: port)
        defer { Task { await proxy.stop() } }
        try await proxy.waitUntilListening()

        // Warm up, so lazily made things (pools, caches, buffers) exist before the baseline.
        let warm = try await Self.run(port, seed: seed &+ 99, seconds: 0.5, workers: 4)
        #expect(warm.cases > 0)
        _ = try await Self.settled(adminPort)
        let fdsBefore = proxy.openDescriptors - (try await Self.pool(adminPort).open)
        let rssBefore = proxy.residentKiB

        // Long runs go in rounds of 30 s, printing memory after each: a leak shows as a line
        // that keeps climbing, an allocator settling as one that flattens.
        var tally = Tally()
        var round = 0
        var left = seconds
        while left > 0 {
            let slice = min(left, 30)
            tally.add(try await Self.run(port, seed: seed &+ UInt64(round) &* 7919, seconds: slice, workers: 4))
            left -= slice
            round += 1
            if seconds > 30 { print("fuzz round \(round): \(tally.cases) cases, sidecache RSS \(proxy.residentKiB) KiB") }
        }

        let settled = try await Self.settled(adminPort)
        #expect(settled.inUse == 0 && settled.waiting == 0, "pool after the fuzz: \(settled)")
        let fdsAfter = proxy.openDescriptors - settled.open
        let rssAfter = proxy.residentKiB
        print("fuzz: seed \(seed), \(tally.cases) cases in \(seconds)s, \(tally.responses) responses (1xx-5xx: \(tally.byStatusClass[1...])), "
              + "\(tally.cut) cut, \(tally.notHTTP) not HTTP; sidecache descriptors \(fdsBefore) -> \(fdsAfter) (pooled upstream connections aside), "
              + "RSS \(rssBefore) -> \(rssAfter) KiB; origin saw \(origin.requestCount) requests; pool \(settled)")
        #expect(tally.notHTTP == 0)
        #expect(tally.byStatusClass[4] > 0, "malformed requests get a 4xx")
        #expect(fdsAfter <= fdsBefore + 2, "descriptors \(fdsBefore) -> \(fdsAfter)")
        #expect(rssAfter - rssBefore < 16 * 1024, "RSS \(rssBefore) -> \(rssAfter) KiB")
        let r = try await request(port, "POST", "/api/after-fuzz", body: "ok")
        #expect(r.status == 200)
        #expect(try await get(port, "/api/items/1").status == 200)
    }

    /// The pool as `/stats` reports it.
    static func pool(_ adminPort: Int) async throws -> UpstreamPoolCounts {
        let stats = try await get(adminPort, "/stats")
        let json = try JSONSerialization.jsonObject(with: Data(stats.body)) as? [String: Any]
        let pool = json?["upstream_pool"] as? [String: Int] ?? [:]
        return UpstreamPoolCounts(open: pool["open"] ?? -1, inUse: pool["in_use"] ?? -1, idle: pool["idle"] ?? -1, waiting: pool["waiting"] ?? -1)
    }

    /// Polls the pool until nothing is in use or waiting (5 s at most), and returns it.
    static func settled(_ adminPort: Int) async throws -> UpstreamPoolCounts {
        try await eventually(interval: .milliseconds(20), { try await pool(adminPort) }, until: { $0.inUse == 0 && $0.waiting == 0 })
    }

    /// Runs cases from `workers` threads until `seconds` have passed.
    static func run(_ port: Int, seed: UInt64, seconds: Double, workers: Int) async throws -> Tally {
        let deadline = Date().addingTimeInterval(seconds)
        return try await withThrowingTaskGroup(of: Tally.self) { group in
            for w in 0..<workers {
                group.addTask {
                    try await offloaded {
                        var rng = SplitMix64(seed: seed &+ UInt64(w) &* 0x9E37_79B9_7F4A_7C15)
                        var tally = Tally()
                        while Date() < deadline {
                            try runCase(port, rng: &rng, tally: &tally)
                        }
                        return tally
                    }
                }
            }
            var total = Tally()
            for try await t in group { total.add(t) }
            return total
        }
    }

    static func runCase(_ port: Int, rng: inout SplitMix64, tally: inout Tally) throws {
        var bytes = Array(bases[Int(rng.next() % UInt64(bases.count))].utf8)
        let mutations = Int(rng.next() % 4)
        for _ in 0..<mutations { mutate(&bytes, rng: &rng) }
        let ending = Ending.allCases[Int(rng.next() % UInt64(Ending.allCases.count))]
        tally.cases += 1
        let c = try TestConnection(port: port, timeoutSeconds: 3)
        do { try c.send(bytes) } catch { return }  // the proxy may already have answered and closed
        switch ending {
        case .halfCloseAndRead:
            c.halfClose()
            while true {
                do {
                    let r = try c.readResponse(forHead: bytes.starts(with: Array("HEAD".utf8)))
                    tally.responses += 1
                    tally.byStatusClass[min(5, max(0, r.status / 100))] += 1
                } catch let error as TestClientError {
                    if error.description.hasPrefix("bad status line") { tally.notHTTP += 1 }
                    else if error.description != TestConnection.closedBeforeResponse { tally.cut += 1 }
                    break
                }
            }
        case .closeAtOnce:
            c.close()
        case .resetAtOnce:
            c.reset()
        case .resetAfterFirstBytes:
            _ = try? c.readSomeBytes(waitingAtMost: 50)
            c.reset()
        }
    }

    /// One random edit: flip a byte, insert or delete some, duplicate a run, cut the tail, or
    /// change a digit (lengths, chunk sizes, versions).
    static func mutate(_ bytes: inout [UInt8], rng: inout SplitMix64) {
        guard !bytes.isEmpty else { return }
        let at = Int(rng.next() % UInt64(bytes.count))
        let interesting: [UInt8] = Array(" \r\n:\t0\u{0}\u{7f}9-;,\"/?#%".utf8)
        switch rng.next() % 7 {
        case 0: bytes[at] ^= UInt8(truncatingIfNeeded: 1 << (rng.next() % 8))
        case 1: bytes.insert(interesting[Int(rng.next() % UInt64(interesting.count))], at: at)
        case 2: bytes.removeSubrange(at..<min(bytes.count, at + 1 + Int(rng.next() % 8)))
        case 3:
            let run = Array(bytes[at..<min(bytes.count, at + 1 + Int(rng.next() % 16))])
            bytes.insert(contentsOf: run, at: at)
        case 4: bytes.removeSubrange(at...)
        case 5:
            if let digit = bytes.indices.filter({ bytes[$0] >= 48 && bytes[$0] <= 57 }).randomElement(using: &rng) {
                bytes[digit] = 48 + UInt8(rng.next() % 10)
            }
        default: bytes.insert(contentsOf: Array("\r\nX-F: \(rng.next())".utf8), at: at)
        }
    }

    static func openDescriptors() -> Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? 0
    }


    static func residentKiB() -> Int {
        guard let statm = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8),
              let pages = statm.split(separator: " ").dropFirst().first.flatMap({ Int($0) }) else { return 0 }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE))) / 1024
    }
}
