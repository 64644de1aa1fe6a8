import ArgumentParser
import Foundation
import HTTPCaching
import Sidecache
import SidecacheConfig

extension AccessLogFormat: ExpressibleByArgument {}

/// `sidecache simulate`: an access log replayed offline through the memory cache, to choose
/// `max_bytes` (and see what the eviction policy buys) from one's own traffic.
struct Simulate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Replay an access log through the memory cache offline: hit ratios per cache size and policy.",
        discussion: """
        Reads GET requests answered 200 with a byte count, replays them through the same store code the
        server runs, and prints the object and byte hit ratio for each size and policy. Sizes are bytes
        (64MiB) or a share of the log's footprint (10%). Every stored entry is taken to stay fresh.
        """
    )

    @Option(help: "The access log (or trace) to replay.")
    var log: String

    @Option(help: "combined, common, jsonl (sidecache's access log), trace (`time id size` lines) or ids (big-endian 32-bit ids).")
    var format: AccessLogFormat = .combined

    @Option(help: "Comma-separated cache sizes: bytes (16MiB) or shares of the footprint (5%).")
    var sizes: String

    @Option(help: "Comma-separated policies: s3fifo, lru.")
    var policy: String = "s3fifo,lru"

    @Option(help: "Key each request by its route, and take max_object_bytes, as this config would.")
    var config: String?

    @Option(name: .customLong("object-size"), help: "The size of every object of an ids trace.")
    var objectSize: String = "1KiB"

    @Option(help: ArgumentHelp("Shards of the store (the server's: 16).", visibility: .hidden))
    var shards: Int = MemoryStore.defaultShardCount

    func run() throws {
        let policies = try policy.split(separator: ",").map { text -> EvictionPolicy in
            guard let p = EvictionPolicy(rawValue: text.trimmingCharacters(in: .whitespaces)) else {
                throw ValidationError("unknown policy \"\(text)\" (expected s3fifo or lru)")
            }
            return p
        }
        guard let perObject = SizeText.parse(objectSize) else { throw ValidationError("--object-size: \"\(objectSize)\" is not a size") }
        let snapshot = try config.map { try loadOrExit($0) }
        let maxObjectBytes = snapshot?.configuration.cache.memory.maxObjectBytes ?? MemoryStore.Limits.default.maxObjectBytes
        guard let data = FileManager.default.contents(atPath: log) else { throw ValidationError("cannot read \(log)") }
        let started = Date()
        let (requests, skipped) = format.requests(in: data, objectSize: perObject)
        let simulator = CacheSimulator(requests, snapshot: snapshot)
        let footprint = simulator.footprint
        let sizes = try self.sizes.split(separator: ",").map { try Self.size(String($0), footprint: footprint.bytes) }

        let oneTimeShare = footprint.objects == 0 ? 0 : 100 * Double(footprint.oneTimeObjects) / Double(footprint.objects)
        print("\(requests.count) requests (\(skipped) lines skipped\(snapshot == nil ? "" : ", \(simulator.uncached) on uncached routes")), "
              + "\(footprint.objects) objects, footprint \(SizeText.approximate(footprint.bytes)), "
              + "\(footprint.oneTimeObjects) objects asked for once (\(String(format: "%.1f", oneTimeShare))%)")
        print(Self.row("size", "policy", "hit ratio", "byte hit ratio", "misses vs lru"))
        var replayed = 0
        for size in sizes {
            var outcomes: [(EvictionPolicy, CacheSimulator.Outcome)] = []
            for p in policies {
                outcomes.append((p, simulator.run(maxBytes: size, maxObjectBytes: maxObjectBytes, policy: p, shardCount: max(1, shards))))
                replayed += requests.count
            }
            let lru = outcomes.first { $0.0 == .lru }?.1
            for (p, o) in outcomes {
                var versus = ""
                if let lru, p != .lru, lru.requests > lru.hits {
                    let change = Double(o.requests - o.hits) / Double(lru.requests - lru.hits) - 1
                    versus = String(format: "%+.1f%%", 100 * change)
                }
                print(Self.row(SizeText.approximate(size), p.rawValue, String(format: "%.4f", o.hitRatio), String(format: "%.4f", o.byteHitRatio), versus))
            }
        }
        let seconds = Date().timeIntervalSince(started)
        print(String(format: "%d requests replayed in %.1f s (%.0f per minute)", replayed, seconds, Double(replayed) / max(seconds, 0.001) * 60))
    }

    static func size(_ text: String, footprint: Int) throws -> Int {
        let t = text.trimmingCharacters(in: .whitespaces)
        if t.hasSuffix("%"), let share = Double(t.dropLast()), share > 0 {
            return max(1, Int(Double(footprint) * share / 100))
        }
        guard let bytes = SizeText.parse(t), bytes > 0 else { throw ValidationError("\"\(t)\" is not a size (16MiB) or a share (5%)") }
        return bytes
    }

    static func row(_ columns: String...) -> String {
        let widths = [10, 8, 11, 16, 14]
        return zip(columns, widths).map { $0.padding(toLength: max($1, $0.count), withPad: " ", startingAt: 0) }.joined(separator: " ")
    }
}
