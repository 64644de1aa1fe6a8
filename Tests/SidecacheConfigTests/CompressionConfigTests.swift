import SidecacheConfig
import Testing

@Suite struct CompressionConfigTests {
    static let upstream = "upstream: { url: \"http://127.0.0.1:3000\" }\n"

    @Test func gzipIsOnWithDefaultsAndRoutesMayOverrideOrTurnItOff() throws {
        let config = try parse(Self.upstream + """
        compression: { gzip: { min_bytes: 2KiB, level: 4, types: ["application/json"] } }
        routes:
          - { name: a, match: { path: "/a" } }
          - { name: b, match: { path: "/b" }, compression: { gzip: false } }
          - { name: c, match: { path: "/c" }, compression: { gzip: { level: 9 } } }
        """)
        let snapshot = ConfigSnapshot(configuration: config, version: 1, sourcePath: "test.yaml")
        #expect(snapshot.routes[0].gzip?.minBytes == 2048 && snapshot.routes[0].gzip?.level == 4)
        #expect(snapshot.routes[1].gzip == nil)
        #expect(snapshot.routes[2].gzip?.level == 9 && snapshot.routes[2].gzip?.minBytes == 1024)
        let defaults = try parse(Self.upstream)
        #expect(defaults.gzip == SidecacheConfiguration.Gzip())
        #expect(defaults.gzip?.types.contains("text/*") == true)
        #expect(try parse(Self.upstream + "compression: { gzip: false }").gzip == nil)
    }

    @Test func mistakesAreReportedWithPathAndLine() {
        let e = errors(Self.upstream + """
        compression:
          gzip: { level: 11, types: ["json"], minbytes: 1 }
        routes:
          - { name: a, match: { path: "/a" }, compression: { gzip: maybe } }
        """)
        #expect(e.contains { $0.path == "compression.gzip.level" && $0.line == 3 })
        #expect(e.contains { $0.path == "compression.gzip.types[0]" && $0.message.contains("media type") })
        #expect(e.contains { $0.path == "compression.gzip.minbytes" && $0.message.contains("min_bytes") })
        #expect(e.contains { $0.path == "routes[0].compression.gzip" && $0.line == 5 })
    }
}
