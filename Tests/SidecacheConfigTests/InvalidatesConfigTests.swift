import SidecacheConfig
import Testing

@Suite struct InvalidatesConfigTests {
    static let upstream = "upstream: { url: \"http://127.0.0.1:3000\" }\n"

    @Test func theIssueExampleIsAcceptedAndFilledFromThePath() throws {
        let config = try parse(Self.upstream + """
        routes:
          - name: item-writes
            match: { methods: [POST, PUT, PATCH, DELETE], path: "/api/items/{id}" }
            invalidates:
              tags: ["item:{id}", "items-list"]
              patterns: ["/api/search*", "/api/items/{id}/*"]
        """)
        let snapshot = ConfigSnapshot(configuration: config, version: 1, sourcePath: "test.yaml")
        let route = try #require(snapshot.routes.first)
        let filled = route.invalidations(forPath: "/api/items/42")
        #expect(filled.tags == ["item:42", "items-list"])
        #expect(filled.patterns == ["/api/search*", "/api/items/42/*"])
        // A parameter value is matched literally in a glob.
        #expect(route.invalidations(forPath: "/api/items/a*b").patterns[1] == #"/api/items/a\*b/*"#)
    }

    @Test func mistakesAreReportedWithPathAndLine() {
        let e = errors(Self.upstream + """
        routes:
          - name: w
            match: { methods: [POST], path: "/api/items/{id}" }
            invalidates:
              tags: ["item:{sku}", "has space"]
              patterns: ["api/search*"]
              tag: ["x"]
          - name: v
            match: { path: "/other" }
            invalidates: {}
        """)
        let paths = e.map(\.path)
        #expect(paths.contains("routes[0].invalidates.tag"))
        #expect(e.contains { $0.path == "routes[0].invalidates.tags[0]" && $0.message.contains("{sku} is not a parameter") && $0.line == 6 })
        #expect(paths.contains("routes[0].invalidates.tags[1]"))
        #expect(e.contains { $0.path == "routes[0].invalidates.patterns[0]" && $0.message.contains("starting with /") })
        #expect(e.contains { $0.path == "routes[1].invalidates" && $0.message.contains("names nothing") })
    }
}
