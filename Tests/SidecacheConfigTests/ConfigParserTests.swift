import HTTPCaching
import NIOHTTP1
import SidecacheConfig
import Testing

/// The file from the issue, accepted as is.
let issueExample = """
listen: "127.0.0.1:8080"
upstream:
  url: "http://127.0.0.1:3000"      # http (https upstreams come in a later issue)
  connect_timeout: 2s
  response_timeout: 30s
  max_connections: 64
limits:
  max_header_bytes: 16KiB
  max_connections: 10000
  header_read_timeout: 10s
  idle_timeout: 60s
cache:
  memory:
    max_bytes: 256MiB
    max_object_bytes: 8MiB
routes:
  - name: items
    match: { methods: [GET, HEAD], path: "/api/items/{id}" }
    ttl: 5m
    stale_while_revalidate: 30s
    stale_if_error: 10m
    key: { query: [lang], headers: [X-Tenant] }
    tags: ["items", "item:{id}"]
  - name: search
    match: { path: "/api/search" }
    ttl: 30s
    key: { query: all }
  - name: writes
    match: { methods: [POST, PUT, PATCH, DELETE], path: "/api/*" }
    cache: false
  - name: default
    match: { path: "/*" }
"""

func errors(_ yaml: String) -> [ConfigError] {
    do {
        _ = try ConfigParser.parse(yaml: yaml, file: "test.yaml")
        return []
    } catch {
        return error.errors
    }
}

func parse(_ yaml: String) throws -> SidecacheConfiguration {
    try ConfigParser.parse(yaml: yaml, file: "test.yaml")
}

@Suite struct ConfigParserTests {
    @Test func theIssueExampleIsAcceptedWithEveryValue() throws {
        let c = try parse(issueExample)
        #expect(c.listen == .init(host: "127.0.0.1", port: 8080))
        #expect(c.upstream.host == "127.0.0.1" && c.upstream.port == 3000)
        #expect(c.upstream.connectTimeout == .seconds(2))
        #expect(c.upstream.responseTimeout == .seconds(30))
        #expect(c.upstream.maxConnections == 64)
        #expect(c.limits.maxHeaderBytes == 16 * 1024)
        #expect(c.limits.maxConnections == 10_000)
        #expect(c.cache.memory.maxBytes == 256 << 20)
        #expect(c.cache.memory.maxObjectBytes == 8 << 20)
        #expect(c.routes.map(\.name) == ["items", "search", "writes", "default"])
        let items = c.routes[0]
        #expect(items.methods == ["GET", "HEAD"])
        #expect(items.ttl == .seconds(300))
        #expect(items.staleWhileRevalidate == .seconds(30))
        #expect(items.staleIfError == .seconds(600))
        #expect(items.keyQuery == .only(["lang"]))
        #expect(items.keyHeaders == ["x-tenant"])
        #expect(items.tags.map(\.source) == ["items", "item:{id}"])
        #expect(!c.routes[2].cache)
    }

    @Test func theShippedExampleConfigIsValid() throws {
        let path = String(#filePath).replacingOccurrences(of: "Tests/SidecacheConfigTests/ConfigParserTests.swift", with: "conf/sidecache.yaml")
        let snapshot = try ConfigLoader.load(path: path, version: 1)
        #expect(snapshot.routes.map(\.name) == ["items", "search", "item-writes", "writes", "default"])
    }

    @Test func defaultsApplyWhenSectionsAreLeftOut() throws {
        let c = try parse("upstream: { url: \"http://localhost\" }")
        #expect(c.upstream.port == 80)
        #expect(c.limits.headerReadTimeout == .seconds(10))
        #expect(c.limits.idleTimeout == .seconds(60))
        #expect(c.cache.memory.maxBytes == 256 << 20)
        #expect(c.logging.access)
        #expect(c.routes.isEmpty)
    }

    @Test func keyHostIsRequestByDefaultAndNoneLeavesTheHostOutOfEveryKey() throws {
        let byDefault = try ConfigSnapshot(configuration: parse(issueExample), version: 1, sourcePath: "test.yaml")
        #expect(byDefault.configuration.cache.keyHost == .request)
        #expect(byDefault.routes[0].keyPolicy.key(host: "A.example", uri: "/api/items/1", headers: [:]).value.hasPrefix("a.example/api/items/1\u{0}"))
        let yaml = issueExample.replacingOccurrences(of: "cache:\n  memory:", with: "cache:\n  key_host: none\n  memory:")
        let none = try ConfigSnapshot(configuration: parse(yaml), version: 1, sourcePath: "test.yaml")
        #expect(none.configuration.cache.keyHost == .none)
        #expect(none.routes[0].keyPolicy.key(host: "A.example", uri: "/api/items/1", headers: [:]).value.hasPrefix("/api/items/1\u{0}"))
        let e = errors("upstream: { url: \"http://localhost\" }\ncache:\n  key_host: upstream\n")
        #expect(e.count == 1 && e.first?.path == "cache.key_host" && e.first?.line == 3)
    }

    @Test func heuristicFreshnessIsOnWithoutATTLAndConfigurable() throws {
        let c = try parse("""
        upstream: { url: "http://localhost" }
        routes:
          - { name: a, match: { path: "/a/*" } }
          - { name: b, match: { path: "/b/*" }, ttl: 5m }
          - { name: c, match: { path: "/c/*" }, ttl: 5m, heuristic: true, heuristic_max: 2h }
        """)
        #expect(c.routes.map(\.heuristic) == [true, false, true])
        #expect(c.routes[2].heuristicMax == .seconds(7200) && c.routes[0].heuristicMax == .seconds(86_400))
        let e = errors("upstream: { url: \"http://localhost\" }\nroutes:\n  - { name: a, match: { path: \"/*\" }, heuristic_max: 0s }\n")
        #expect(e.first?.path == "routes[0].heuristic_max")
    }

    @Test func eventLoopsAreOnePerCoreUnlessSet() throws {
        #expect(try parse("upstream: { url: \"http://localhost\" }").eventLoops == nil)
        #expect(try parse("upstream: { url: \"http://localhost\" }\nevent_loops: auto").eventLoops == nil)
        #expect(try parse("upstream: { url: \"http://localhost\" }\nevent_loops: 1").eventLoops == 1)
        let e = errors("upstream: { url: \"http://localhost\" }\nevent_loops: 0\n")
        #expect(e.first?.path == "event_loops" && e.first?.line == 2)
    }

    @Test func lingeringCloseHasDefaultsAndChecksItsDurations() throws {
        let defaults = try parse("upstream: { url: \"http://localhost\" }").limits
        #expect(defaults.lingeringTime == .seconds(5) && defaults.lingeringTimeout == .seconds(1))
        let set = try parse("upstream: { url: \"http://localhost\" }\nlimits: { lingering_time: 0s, lingering_timeout: 250ms }").limits
        #expect(set.lingeringTime == .zero && set.lingeringTimeout == .milliseconds(250))
        let e = errors("upstream: { url: \"http://localhost\" }\nlimits:\n  lingering_timeout: 0s\n  lingering_time: soon\n")
        #expect(e.map(\.path).sorted() == ["limits.lingering_time", "limits.lingering_timeout"])
        #expect(e.allSatisfy { $0.line == 3 || $0.line == 4 })
    }

    @Test func clientHalfCloseAnswersByDefaultAndAcceptsAbort() throws {
        #expect(try parse("upstream: { url: \"http://localhost\" }").limits.clientHalfClose == .answer)
        let abort = try parse("upstream: { url: \"http://localhost\" }\nlimits: { client_half_close: abort }")
        #expect(abort.limits.clientHalfClose == .abort)
        let e = errors("upstream: { url: \"http://localhost\" }\nlimits:\n  client_half_close: drop\n")
        #expect(e.count == 1)
        #expect(e.first?.path == "limits.client_half_close" && e.first?.line == 3 && e.first?.message.contains("answer or abort") == true)
    }

    @Test func unknownKeysAreErrorsWithPathLineAndSuggestion() {
        let e = errors("""
        upstream:
          url: "http://127.0.0.1:3000"
          conect_timeout: 2s
        routes:
          - name: a
            match: { path: "/*" }
            tll: 5m
        """)
        #expect(e.count == 2)
        #expect(e[0].path == "upstream.conect_timeout" && e[0].line == 3 && e[0].message.contains("did you mean 'connect_timeout'"))
        #expect(e[1].path == "routes[0].tll" && e[1].line == 7)
    }

    @Test func everyBadValueIsReportedNotJustTheFirst() {
        let e = errors("""
        listen: "nowhere"
        upstream:
          url: "http://127.0.0.1:3000"
          connect_timeout: soon
          max_connections: -1
        cache:
          memory:
            max_bytes: lots
        logging: { level: loud, access: maybe }
        """)
        #expect(Set(e.map(\.path)) == ["listen", "upstream.connect_timeout", "upstream.max_connections", "cache.memory.max_bytes", "logging.level", "logging.access"])
        #expect(e.map { $0.line ?? 0 } == e.map { $0.line ?? 0 }.sorted())
    }

    @Test func unreachableRoutesAreErrors() {
        let e = errors("""
        upstream: { url: "http://127.0.0.1:3000" }
        routes:
          - name: everything
            match: { path: "/*" }
          - name: items
            match: { methods: [GET], path: "/api/items/{id}" }
          - name: api-prefix
            match: { path: "/api/*" }
          - name: after-api
            match: { methods: [GET], path: "/api/search" }
        """)
        #expect(e.filter { $0.message.contains("unreachable") }.map(\.path) == ["routes[1]", "routes[2]", "routes[3]"])
    }

    @Test func methodSubsetsDecideReachability() {
        let ok = errors("""
        upstream: { url: "http://127.0.0.1:3000" }
        routes:
          - name: reads
            match: { methods: [GET], path: "/*" }
          - name: writes
            match: { methods: [POST], path: "/*" }
        """)
        #expect(ok.isEmpty)
    }

    @Test func routeMistakes() {
        let e = errors("""
        upstream: { url: "https://127.0.0.1:3000" }
        routes:
          - name: a
            match: { methods: [GET, FETCH], path: "api/items" }
          - name: a
            match: { path: "/x/{id}/*/y" }
          - match: { path: "/z/{id}" }
            tags: ["item:{uid}"]
            ttl: 5 minutes
            override_origin: true
          - name: off
            match: { path: "/off" }
            cache: false
            ttl: 5m
        """)
        let paths = e.map(\.path)
        #expect(paths.contains("upstream.url"))
        #expect(paths.contains("routes[0].match.methods[1]"))
        #expect(paths.contains("routes[0].match.path"))
        #expect(paths.contains("routes[1].match.path"))
        #expect(paths.contains("routes[2].name"))
        #expect(paths.contains("routes[2].tags[0]"))
        #expect(paths.contains("routes[2].ttl"))
        #expect(paths.contains("routes[3].ttl"))
    }

    @Test func duplicateRouteNamesAreErrors() {
        let e = errors("""
        upstream: { url: "http://127.0.0.1:3000" }
        routes:
          - { name: a, match: { path: "/a" } }
          - { name: a, match: { path: "/b" } }
        """)
        #expect(e.count == 1 && e[0].path == "routes[1].name" && e[0].message.contains("duplicate"))
    }

    @Test func yamlSyntaxErrorsNameTheLine() {
        let e = errors("upstream:\n  url: [unclosed\nroutes: []\n")
        #expect(e.count == 1)
        #expect(e[0].line != nil)
        #expect(e[0].message.contains("not valid YAML"))
    }

    @Test func missingUpstreamIsAnError() {
        #expect(errors("routes: []").map(\.path) == ["upstream"])
    }
}

@Suite struct UnitsTests {
    @Test func durations() {
        #expect(DurationText.parse("500ms") == .milliseconds(500))
        #expect(DurationText.parse("2s") == .seconds(2))
        #expect(DurationText.parse("5m") == .seconds(300))
        #expect(DurationText.parse("1h") == .seconds(3600))
        #expect(DurationText.parse("1d") == .seconds(86400))
        #expect(DurationText.parse("5") == nil)
        #expect(DurationText.parse("1.5s") == nil)
        #expect(DurationText.parse("-1s") == nil)
        #expect(DurationText.format(.seconds(300)) == "5m")
        #expect(DurationText.format(.milliseconds(1500)) == "1500ms")
    }

    @Test func sizes() {
        #expect(SizeText.parse("512KiB") == 512 * 1024)
        #expect(SizeText.parse("256MiB") == 256 << 20)
        #expect(SizeText.parse("1GiB") == 1 << 30)
        #expect(SizeText.parse("100B") == 100)
        #expect(SizeText.parse("1MB") == 1_000_000)
        #expect(SizeText.parse("12") == nil)
        #expect(SizeText.parse("MiB") == nil)
        #expect(SizeText.format(8 << 20) == "8MiB")
    }
}

@Suite struct RouteMatchingTests {
    @Test func patterns() throws {
        let item = try PathPattern("/api/items/{id}")
        #expect(item.match("/api/items/42")?.first?.value == "42")
        #expect(item.match("/api/items/") == nil)
        #expect(item.match("/api/items/42/x") == nil)
        let rest = try PathPattern("/api/*")
        #expect(rest.matches("/api/"))
        #expect(rest.matches("/api/a/b"))
        #expect(!rest.matches("/api"))
        let all = try PathPattern("/*")
        #expect(all.matches("/"))
        #expect(all.matches("/anything/at/all"))
        let prefix = try PathPattern("/static/app-*")
        #expect(prefix.matches("/static/app-1.js"))
        #expect(!prefix.matches("/static/lib.js"))
        #expect(try PathPattern("/").matches("/"))
        #expect(!(try PathPattern("/").matches("/x")))
    }

    /// The path is matched as bytes and the values are handed back as parts of the path itself,
    /// wherever it starts in its string and whatever its characters.
    @Test func valuesArePartsOfThePathSubstring() throws {
        let target = "/shop/Café/items/é42?lang=fr"
        let path = target[..<(target.firstIndex(of: "?") ?? target.endIndex)].dropFirst(5)  // "/Café/items/é42"
        let pattern = try PathPattern("/{shop}/items/{id}")
        let values = try #require(pattern.match(path))
        #expect(values.map(\.name) == ["shop", "id"] && values.map { String($0.value) } == ["Café", "é42"])
        #expect(values[1].value.endIndex == path.endIndex)
        let cafPrefix = try PathPattern("/Caf*"), cafDirectory = try PathPattern("/Caf/*")
        #expect(!pattern.matches(path.dropLast(4)) && cafPrefix.matches(path) && !cafDirectory.matches(path))
    }

    @Test func badPatterns() {
        #expect(throws: PathPattern.ParseError.mustStartWithSlash) { try PathPattern("api") }
        #expect(throws: PathPattern.ParseError.wildcardNotLast) { try PathPattern("/a/*/b") }
        #expect(throws: PathPattern.ParseError.duplicateParameter("id")) { try PathPattern("/{id}/{id}") }
        #expect(throws: PathPattern.ParseError.badParameter("x{id}")) { try PathPattern("/x{id}") }
    }

    @Test func firstMatchingRouteWinsAndTagsAreFilled() throws {
        let snapshot = ConfigSnapshot(configuration: try parse(issueExample), version: 1, sourcePath: "test.yaml")
        #expect(snapshot.route(method: .GET, path: "/api/items/7")?.name == "items")
        #expect(snapshot.route(method: .PUT, path: "/api/items/7")?.name == "writes")
        #expect(snapshot.route(method: .GET, path: "/api/search")?.name == "search")
        #expect(snapshot.route(method: .GET, path: "/other")?.name == "default")
        #expect(snapshot.route(method: .GET, path: "/api/items/7")?.tags(forPath: "/api/items/7") == ["items", "item:7"])
    }

    @Test func changesBetweenConfigsAreDescribed() throws {
        let old = try parse(issueExample)
        var new = old
        new.routes.remove(at: 1)
        new.routes[0].ttl = .seconds(60)
        new.upstream.maxConnections = 8
        new.listen.port = 9090
        let changes = ConfigChanges(from: old, to: new)
        #expect(changes.removedRoutes == ["search"])
        #expect(changes.changedRoutes == ["items"])
        #expect(changes.changedSections == ["upstream"])
        #expect(changes.needsRestart == ["listen"])
        #expect(changes.description.contains("routes removed: search"))
    }
}
