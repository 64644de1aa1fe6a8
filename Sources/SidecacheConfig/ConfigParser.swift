import HTTPCaching
import RedisClient
import Resilience
import Yams

/// Reads a config file's text into a validated `SidecacheConfiguration`, or every error in it.
public enum ConfigParser {
    public static let knownMethods: Set<String> = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"]

    public static func parse(yaml text: String, file: String) throws(ConfigErrors) -> SidecacheConfiguration {
        let root: Node
        do {
            guard let node = try Yams.compose(yaml: text) else {
                throw ConfigErrors(file: file, errors: [ConfigError(path: "", line: 1, message: "the file is empty")])
            }
            root = node
        } catch let error as ConfigErrors {
            throw error
        } catch let error as YamlError {
            throw ConfigErrors(file: file, errors: [Self.describe(error)])
        } catch {
            throw ConfigErrors(file: file, errors: [ConfigError(path: "", line: nil, message: "not valid YAML: \(error)")])
        }
        var reader = ConfigReader()
        let config = read(root, &reader)
        if let config, reader.errors.isEmpty { return config }
        let sorted = reader.errors.enumerated().sorted { a, b in
            (a.element.line ?? 0, a.offset) < (b.element.line ?? 0, b.offset)
        }.map(\.element)
        throw ConfigErrors(file: file, errors: sorted.isEmpty
            ? [ConfigError(path: "", line: nil, message: "invalid configuration")] : sorted)
    }

    private static func describe(_ error: YamlError) -> ConfigError {
        switch error {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
             .composer(let context, let problem, let mark, _):
            let ctx = context.map { " \($0.text)" } ?? ""
            return ConfigError(path: "", line: mark.line, message: "not valid YAML: \(problem)\(ctx)")
        case .duplicatedKeysInMapping(let duplicates, let context):
            return ConfigError(path: "", line: context.mark.line, message: "duplicate keys: \(duplicates.joined(separator: ", "))")
        default:
            return ConfigError(path: "", line: nil, message: "not valid YAML: \(error)")
        }
    }

    private static func read(_ root: Node, _ r: inout ConfigReader) -> SidecacheConfiguration? {
        guard let top = r.mapping(root, at: "", allowed: ["listen", "upstream", "limits", "cache", "logging", "routes", "admin", "compression", "trusted_proxies", "warming", "event_loops"]) else { return nil }

        var listen = SidecacheConfiguration.ListenAddress(host: "127.0.0.1", port: 8080)
        if let text = r.string(top["listen"], at: "listen") {
            if let parsed = SidecacheConfiguration.ListenAddress.parse(text) { listen = parsed }
            else { r.fail("listen", top["listen"], "expected host:port, e.g. \"127.0.0.1:8080\" or \":8080\"") }
        }

        let upstream = readUpstream(top["upstream"], &r)
        let limits = readLimits(top["limits"], &r)
        let cache = readCache(top["cache"], &r)
        let logging = readLogging(top["logging"], &r)
        let warming = readWarming(top["warming"], &r)
        let routes = readRoutes(top["routes"], redisConfigured: cache.redis != nil, warming: top["warming"] != nil, &r)
        let trusted = readTrustedProxies(top["trusted_proxies"], &r)
        let admin = readAdmin(top["admin"], &r)
        let compression = readCompression(top["compression"], at: "compression", default: .init(), &r)
        guard let upstream else { return nil }
        var config = SidecacheConfiguration(listen: listen, upstream: upstream, limits: limits, cache: cache, logging: logging, routes: routes)
        config.admin = admin
        config.trustedProxies = trusted
        config.warming = warming
        if let node = top["event_loops"] {
            if case .scalar(let text) = node, text.string == "auto" { config.eventLoops = nil }
            else if let n = r.positiveInt(node, at: "event_loops", max: 256) { config.eventLoops = n }
        }
        if let compression { config.gzip = compression }
        if let admin, admin.listen == listen, listen.port != 0 {
            r.fail("admin.listen", top["admin"], "must differ from listen (\(listen))")
        }
        return config
    }

    private static func readUpstream(_ node: Node?, _ r: inout ConfigReader) -> SidecacheConfiguration.Upstream? {
        guard let node else {
            r.fail("upstream", nil, "missing: sidecache needs to know where the API is (upstream.url)")
            return nil
        }
        guard let m = r.mapping(node, at: "upstream", allowed: [
            "url", "connect_timeout", "response_timeout", "max_connections", "keepalive_timeout", "circuit_breaker", "retries",
        ]) else { return nil }
        var result: SidecacheConfiguration.Upstream? = nil
        if let url = r.string(m["url"], at: "upstream.url") {
            switch UpstreamURL.parse(url) {
            case .success(let host, let port):
                result = .init(url: url, host: host, port: port, connectTimeout: .seconds(2), responseTimeout: .seconds(30),
                               maxConnections: 64, keepaliveTimeout: .seconds(60))
            case .failure(let message):
                r.fail("upstream.url", m["url"], message)
            }
        } else if m["url"] == nil {
            r.fail("upstream.url", node, "missing: the upstream's URL, e.g. \"http://127.0.0.1:3000\"")
        }
        let connect = r.duration(m["connect_timeout"], at: "upstream.connect_timeout", allowZero: false)
        let response = r.duration(m["response_timeout"], at: "upstream.response_timeout", allowZero: false)
        let maxConnections = r.positiveInt(m["max_connections"], at: "upstream.max_connections", max: 100_000)
        let keepalive = r.duration(m["keepalive_timeout"], at: "upstream.keepalive_timeout", allowZero: false)
        let breaker = readCircuitBreaker(m["circuit_breaker"], &r)
        let retries = readRetries(m["retries"], &r)
        guard var u = result else { return nil }
        u.circuitBreaker = breaker
        u.retries = retries
        if let connect { u.connectTimeout = connect }
        if let response { u.responseTimeout = response }
        if let maxConnections { u.maxConnections = maxConnections }
        if let keepalive { u.keepaliveTimeout = keepalive }
        return u
    }

    private static func readLimits(_ node: Node?, _ r: inout ConfigReader) -> SidecacheConfiguration.Limits {
        var l = SidecacheConfiguration.Limits(maxHeaderBytes: 16 * 1024, maxConnections: 10_000, headerReadTimeout: .seconds(10),
                                              idleTimeout: .seconds(60), drainTimeout: .seconds(10))
        guard let node, let m = r.mapping(node, at: "limits", allowed: ["max_header_bytes", "max_connections", "header_read_timeout", "idle_timeout", "drain_timeout", "client_half_close", "lingering_time", "lingering_timeout"]) else { return l }
        if let v = r.size(m["max_header_bytes"], at: "limits.max_header_bytes") {
            if v < 1024 || v > 1 << 20 { r.fail("limits.max_header_bytes", m["max_header_bytes"], "must be between 1KiB and 1MiB") }
            else { l.maxHeaderBytes = v }
        }
        if let v = r.positiveInt(m["max_connections"], at: "limits.max_connections", max: 1_000_000) { l.maxConnections = v }
        if let v = r.duration(m["header_read_timeout"], at: "limits.header_read_timeout", allowZero: false) { l.headerReadTimeout = v }
        if let v = r.duration(m["idle_timeout"], at: "limits.idle_timeout", allowZero: false) { l.idleTimeout = v }
        if let v = r.duration(m["drain_timeout"], at: "limits.drain_timeout") { l.drainTimeout = v }
        if let v = r.duration(m["lingering_time"], at: "limits.lingering_time") { l.lingeringTime = v }
        if let v = r.duration(m["lingering_timeout"], at: "limits.lingering_timeout", allowZero: false) { l.lingeringTimeout = v }
        if let text = r.string(m["client_half_close"], at: "limits.client_half_close") {
            if let v = SidecacheConfiguration.Limits.ClientHalfClose(rawValue: text) { l.clientHalfClose = v }
            else { r.fail("limits.client_half_close", m["client_half_close"], "expected answer or abort") }
        }
        return l
    }

    private static func readCache(_ node: Node?, _ r: inout ConfigReader) -> SidecacheConfiguration.Cache {
        var c = SidecacheConfiguration.Cache(memory: .default)
        guard let node, let m = r.mapping(node, at: "cache", allowed: ["memory", "redis", "key_host"]) else { return c }
        c.redis = readRedis(m["redis"], &r)
        if let text = r.string(m["key_host"], at: "cache.key_host") {
            if let v = CacheKeyPolicy.HostPart(rawValue: text) { c.keyHost = v }
            else { r.fail("cache.key_host", m["key_host"], "expected request (the Host is part of the key) or none (one site: it is not)") }
        }
        guard let memNode = m["memory"], let mem = r.mapping(memNode, at: "cache.memory", allowed: ["max_bytes", "max_object_bytes", "policy"]) else { return c }
        if let v = r.size(mem["max_bytes"], at: "cache.memory.max_bytes") { c.memory.maxBytes = v }
        if let v = r.size(mem["max_object_bytes"], at: "cache.memory.max_object_bytes") { c.memory.maxObjectBytes = v }
        if let text = r.string(mem["policy"], at: "cache.memory.policy") {
            if let policy = EvictionPolicy(rawValue: text) { c.memory.policy = policy }
            else { r.fail("cache.memory.policy", mem["policy"], "expected s3fifo (keeps what is asked for again; the default) or lru") }
        }
        if c.memory.maxObjectBytes > c.memory.maxBytes {
            r.fail("cache.memory.max_object_bytes", mem["max_object_bytes"] ?? memNode, "must not exceed cache.memory.max_bytes (\(SizeText.format(c.memory.maxBytes)))")
        }
        return c
    }

    private static func readRedis(_ node: Node?, _ r: inout ConfigReader) -> SidecacheConfiguration.Redis? {
        guard let node, !r.isNull(node) else { return nil }
        guard let m = r.mapping(node, at: "cache.redis", allowed: ["url", "key_prefix", "pool_size", "timeout", "max_object_bytes"]) else { return nil }
        var url: RedisURL?
        if let text = r.string(m["url"], at: "cache.redis.url") {
            do throws(RedisURL.ParseError) {
                url = try RedisURL(parsing: text)
            } catch {
                r.fail("cache.redis.url", m["url"], error.description)
            }
        } else if m["url"] == nil {
            r.fail("cache.redis.url", node, "missing: where Redis is, e.g. \"redis://127.0.0.1:6379/0\"")
        }
        let prefix = r.string(m["key_prefix"], at: "cache.redis.key_prefix")
        if let prefix, prefix.contains(where: { $0 == " " || $0 == "*" || $0 == "?" || $0 == "[" }) {
            r.fail("cache.redis.key_prefix", m["key_prefix"], "must not contain spaces or glob characters (* ? [)")
        }
        let poolSize = r.positiveInt(m["pool_size"], at: "cache.redis.pool_size", max: 64)
        let timeout = r.duration(m["timeout"], at: "cache.redis.timeout", allowZero: false)
        let maxObject = r.size(m["max_object_bytes"], at: "cache.redis.max_object_bytes")
        if let maxObject, maxObject > 512 << 20 {
            r.fail("cache.redis.max_object_bytes", m["max_object_bytes"], "must not exceed 512MiB (Redis's largest value)")
        }
        guard let url else { return nil }
        var redis = SidecacheConfiguration.Redis(url: url)
        if let prefix { redis.keyPrefix = prefix }
        if let poolSize { redis.poolSize = poolSize }
        if let timeout { redis.timeout = timeout }
        if let maxObject { redis.maxObjectBytes = maxObject }
        return redis
    }

    private static func readAdmin(_ node: Node?, _ r: inout ConfigReader) -> SidecacheConfiguration.Admin? {
        guard let node, !r.isNull(node) else { return nil }
        guard let m = r.mapping(node, at: "admin", allowed: ["listen", "token_file"]) else { return nil }
        var admin = SidecacheConfiguration.Admin(listen: .init(host: "127.0.0.1", port: 9901))
        if let text = r.string(m["listen"], at: "admin.listen") {
            if let parsed = SidecacheConfiguration.ListenAddress.parse(text) { admin.listen = parsed }
            else { r.fail("admin.listen", m["listen"], "expected host:port, e.g. \"127.0.0.1:9901\"") }
        }
        if let file = r.string(m["token_file"], at: "admin.token_file") {
            if file.hasPrefix("/") { admin.tokenFile = file }
            else { r.fail("admin.token_file", m["token_file"], "must be an absolute path") }
        }
        return admin
    }

    /// `compression: { gzip: { min_bytes, level, types } }` or `compression: { gzip: false }`.
    /// Nil when the node is absent (the caller's default applies); `.some(nil)` for gzip off.
    private static func readCompression(_ node: Node?, at path: String, default base: SidecacheConfiguration.Gzip,
                                        _ r: inout ConfigReader) -> SidecacheConfiguration.Gzip?? {
        guard let node else { return nil }
        guard let m = r.mapping(node, at: path, allowed: ["gzip"]) else { return nil }
        guard let g = m["gzip"] else { return .some(base) }
        if case .scalar = g {
            guard let on = r.bool(g, at: "\(path).gzip") else { return nil }
            return on ? .some(base) : .some(nil)
        }
        guard let gm = r.mapping(g, at: "\(path).gzip", allowed: ["min_bytes", "level", "types"]) else { return nil }
        var gzip = base
        if let minBytes = r.size(gm["min_bytes"], at: "\(path).gzip.min_bytes") { gzip.minBytes = minBytes }
        if let level = r.positiveInt(gm["level"], at: "\(path).gzip.level", max: 9) { gzip.level = level }
        if let types = r.stringList(gm["types"], at: "\(path).gzip.types") {
            for (i, t) in types.enumerated() where !t.contains("/") || t.contains(" ") {
                r.fail("\(path).gzip.types[\(i)]", gm["types"], "'\(t)' is not a media type such as application/json or text/*")
            }
            if types.isEmpty { r.fail("\(path).gzip.types", gm["types"], "an empty list compresses nothing; use gzip: false") }
            gzip.types = types.map { $0.lowercased() }
        }
        return .some(gzip)
    }

    private static func readLogging(_ node: Node?, _ r: inout ConfigReader) -> SidecacheConfiguration.Logging {
        var l = SidecacheConfiguration.Logging(level: "info", access: true)
        guard let node, let m = r.mapping(node, at: "logging", allowed: ["level", "access"]) else { return l }
        let levels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]
        if let level = r.string(m["level"], at: "logging.level") {
            if levels.contains(level) { l.level = level }
            else { r.fail("logging.level", m["level"], "expected one of \(levels.joined(separator: ", "))") }
        }
        if let access = r.bool(m["access"], at: "logging.access") { l.access = access }
        return l
    }

    private static let routeKeys = [
        "name", "match", "cache", "ttl", "override_origin", "stale_while_revalidate", "stale_if_error", "key", "tags",
        "honor_client_no_cache", "targeted_cache_control", "invalidates", "compression", "rate_limit", "retry_unsafe_idempotent",
        "heuristic", "heuristic_max", "warm",
    ]

    private static func readRoutes(_ node: Node?, redisConfigured: Bool, warming: Bool, _ r: inout ConfigReader) -> [SidecacheConfiguration.Route] {
        guard let node else { return [] }
        guard case .sequence(let seq) = node else {
            r.fail("routes", node, "expected a list of routes")
            return []
        }
        var routes: [SidecacheConfiguration.Route] = []
        var seen: [String: Int] = [:]
        for (i, item) in seq.enumerated() {
            let path = "routes[\(i)]"
            guard let route = readRoute(item, at: path, redisConfigured: redisConfigured, warming: warming, &r) else { continue }
            if let first = seen[route.name] {
                r.fail("\(path).name", item, "duplicate route name '\(route.name)' (also routes[\(first)])")
            } else {
                seen[route.name] = i
            }
            // A route after one that matches everything it would match can never be used.
            if let earlier = routes.firstIndex(where: { Self.shadows($0, route) }) {
                r.fail(path, item, "route '\(route.name)' is unreachable: route '\(routes[earlier].name)' before it matches every request it would")
            }
            routes.append(route)
        }
        return routes
    }

    static func shadows(_ a: SidecacheConfiguration.Route, _ b: SidecacheConfiguration.Route) -> Bool {
        let methodsCovered: Bool
        switch (a.methods, b.methods) {
        case (nil, _): methodsCovered = true
        case (.some, nil): methodsCovered = false
        case (.some(let am), .some(let bm)): methodsCovered = Set(bm).isSubset(of: Set(am))
        }
        return methodsCovered && a.path.covers(b.path)
    }

    private static func readRoute(_ node: Node, at path: String, redisConfigured: Bool, warming: Bool, _ r: inout ConfigReader) -> SidecacheConfiguration.Route? {
        guard let m = r.mapping(node, at: path, allowed: routeKeys) else { return nil }
        let name = r.string(m["name"], at: "\(path).name")
        if m["name"] == nil { r.fail("\(path).name", node, "missing: every route needs a name (used in logs and metrics)") }
        if let name, name.isEmpty || name.contains(where: { $0 == " " || $0 == "\"" }) {
            r.fail("\(path).name", m["name"], "a route name must be non-empty, without spaces or quotes")
        }

        var methods: [String]? = nil
        var pattern: PathPattern? = nil
        if let matchNode = m["match"], let match = r.mapping(matchNode, at: "\(path).match", allowed: ["methods", "path"]) {
            if let list = r.stringList(match["methods"], at: "\(path).match.methods") {
                for (j, method) in list.enumerated() where !knownMethods.contains(method) {
                    r.fail("\(path).match.methods[\(j)]", match["methods"], "unknown method '\(method)'; expected one of \(knownMethods.sorted().joined(separator: ", "))")
                }
                if list.isEmpty { r.fail("\(path).match.methods", match["methods"], "an empty list matches nothing; leave it out to match every method") }
                methods = list
            }
            if let p = r.string(match["path"], at: "\(path).match.path") {
                do { pattern = try PathPattern(p) }
                catch { r.fail("\(path).match.path", match["path"], "\(error)") }
            } else if match["path"] == nil {
                r.fail("\(path).match.path", matchNode, "missing: a path pattern such as \"/api/items/{id}\" or \"/*\"")
            }
        } else if m["match"] == nil {
            r.fail("\(path).match", node, "missing: what the route matches, e.g. match: { path: \"/api/*\" }")
        }

        let cache = r.bool(m["cache"], at: "\(path).cache") ?? true
        let ttl = r.duration(m["ttl"], at: "\(path).ttl")
        let overrideOrigin = r.bool(m["override_origin"], at: "\(path).override_origin") ?? false
        if overrideOrigin, ttl == nil, m["ttl"] == nil { r.fail("\(path).override_origin", m["override_origin"], "needs a ttl to override the origin with") }
        let swr = r.duration(m["stale_while_revalidate"], at: "\(path).stale_while_revalidate") ?? .zero
        let sie = r.duration(m["stale_if_error"], at: "\(path).stale_if_error") ?? .zero
        let honor = r.bool(m["honor_client_no_cache"], at: "\(path).honor_client_no_cache") ?? false
        var targeted = "CDN-Cache-Control"
        if let t = r.string(m["targeted_cache_control"], at: "\(path).targeted_cache_control") {
            if t.isEmpty || !t.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }) {
                r.fail("\(path).targeted_cache_control", m["targeted_cache_control"], "expected a header field name such as CDN-Cache-Control")
            } else { targeted = t }
        }

        var query = CacheKeyPolicy.Query.all
        var keyHeaders: [String] = []
        if let keyNode = m["key"], let key = r.mapping(keyNode, at: "\(path).key", allowed: ["query", "headers"]) {
            if let q = key["query"] {
                if case .sequence = q {
                    if let names = r.stringList(q, at: "\(path).key.query") { query = .only(Set(names)) }
                } else if let word = r.string(q, at: "\(path).key.query") {
                    switch word {
                    case "all": query = .all
                    case "none": query = .none
                    default: r.fail("\(path).key.query", q, "expected all, none, or a list of parameter names")
                    }
                }
            }
            if let headers = r.stringList(key["headers"], at: "\(path).key.headers") {
                for (j, h) in headers.enumerated() where h.isEmpty || !h.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) {
                    r.fail("\(path).key.headers[\(j)]", key["headers"], "'\(h)' is not a header field name")
                }
                keyHeaders = headers.map { $0.lowercased() }
            }
        }

        let tags = readTemplates(m["tags"], at: "\(path).tags", kind: .tag, pattern: pattern, &r)
        let compression = readCompression(m["compression"], at: "\(path).compression", default: .init(), &r)
        var invalidates = SidecacheConfiguration.Invalidates()
        if let node = m["invalidates"], let inv = r.mapping(node, at: "\(path).invalidates", allowed: ["tags", "patterns"]) {
            invalidates.tags = readTemplates(inv["tags"], at: "\(path).invalidates.tags", kind: .tag, pattern: pattern, &r)
            invalidates.patterns = readTemplates(inv["patterns"], at: "\(path).invalidates.patterns", kind: .pathGlob, pattern: pattern, &r)
            if invalidates.isEmpty { r.fail("\(path).invalidates", node, "names nothing: give tags, patterns or both") }
        }
        let rateLimit = readRateLimit(m["rate_limit"], at: "\(path).rate_limit", redisConfigured: redisConfigured, &r)
        let retryUnsafe = r.bool(m["retry_unsafe_idempotent"], at: "\(path).retry_unsafe_idempotent") ?? false
        let heuristic = r.bool(m["heuristic"], at: "\(path).heuristic") ?? (ttl == nil)
        let heuristicMax = r.duration(m["heuristic_max"], at: "\(path).heuristic_max", allowZero: false) ?? .seconds(86_400)
        let warm = readWarm(m["warm"], at: "\(path).warm", warming: warming, pattern: pattern, &r)
        if !cache {
            for key in ["ttl", "stale_while_revalidate", "stale_if_error", "key", "tags", "override_origin", "heuristic", "heuristic_max", "warm"] where m[key] != nil {
                r.fail("\(path).\(key)", m[key], "has no effect on a route with cache: false")
            }
        }

        guard let name, let pattern else { return nil }
        return SidecacheConfiguration.Route(
            name: name, methods: methods, path: pattern, cache: cache, ttl: ttl, overrideOrigin: overrideOrigin,
            staleWhileRevalidate: swr, staleIfError: sie, keyQuery: query, keyHeaders: keyHeaders, tags: tags,
            honorClientNoCache: honor, targetedCacheControl: targeted, invalidates: invalidates, gzip: compression,
            rateLimit: rateLimit, retryUnsafeIdempotent: retryUnsafe, heuristic: heuristic, heuristicMax: heuristicMax, warm: warm
        )
    }

    /// The top-level `warming: { max_rps, max_concurrent, max_tracked_keys, state_file, start_timeout }` (every key optional).
    private static func readWarming(_ node: Node?, _ r: inout ConfigReader) -> SidecacheConfiguration.Warming? {
        guard let node else { return nil }
        var w = SidecacheConfiguration.Warming()
        if r.isNull(node) { return w }
        guard let m = r.mapping(node, at: "warming", allowed: ["max_rps", "max_concurrent", "max_tracked_keys", "state_file", "start_timeout", "on_start"]) else { return nil }
        if let node = m["on_start"], let start = r.mapping(node, at: "warming.on_start", allowed: ["urls", "file"]) {
            if let urls = r.stringList(start["urls"], at: "warming.on_start.urls") {
                for (i, url) in urls.enumerated() where !url.hasPrefix("/") || url.hasPrefix("//") || url.contains(" ") {
                    r.fail("warming.on_start.urls[\(i)]", start["urls"], "'\(url)' is not a path on this origin (\"/api/items/1\")")
                }
                w.onStartURLs = urls
            }
            if let file = r.string(start["file"], at: "warming.on_start.file") {
                if file.isEmpty { r.fail("warming.on_start.file", start["file"], "expected a file path") } else { w.onStartFile = file }
            }
        }
        if let v = r.duration(m["start_timeout"], at: "warming.start_timeout") { w.startTimeout = v }
        if let path = r.string(m["state_file"], at: "warming.state_file") {
            if path.isEmpty || path.contains("\0") {
                r.fail("warming.state_file", m["state_file"], "expected a file path")
            } else {
                w.stateFile = path
            }
        }
        if let v = m["max_rps"] {
            if case .scalar(let s) = v, let rps = Double(s.string), rps > 0, rps <= 100_000 { w.maxRequestsPerSecond = rps }
            else { r.fail("warming.max_rps", v, "expected background requests per second, more than 0 and at most 100000 (e.g. 50)") }
        }
        if let v = r.positiveInt(m["max_concurrent"], at: "warming.max_concurrent", max: 10_000) { w.maxConcurrent = v }
        if let v = r.positiveInt(m["max_tracked_keys"], at: "warming.max_tracked_keys", max: 100_000_000) { w.maxTrackedKeys = v }
        return w
    }

    /// A route's `warm: { min_rate, refresh_ahead, rewarm_after_purge, prefetch, prefetch_links }`.
    private static func readWarm(_ node: Node?, at path: String, warming: Bool, pattern: PathPattern?,
                                 _ r: inout ConfigReader) -> SidecacheConfiguration.Warm? {
        guard let node, !r.isNull(node) else { return nil }
        guard let m = r.mapping(node, at: path, allowed: ["min_rate", "refresh_ahead", "rewarm_after_purge", "prefetch", "prefetch_links", "predict", "session", "min_confidence"]) else { return nil }
        if !warming { r.fail(path, node, "needs a top-level warming section (its budget: max_rps, max_concurrent), even an empty one") }
        var w = SidecacheConfiguration.Warm()
        if let v = m["min_rate"] {
            if case .scalar(let s) = v, let rate = RateText.perSecond(s.string) { w.minRate = rate }
            else { r.fail("\(path).min_rate", v, "expected requests per time such as 0.2/s, 12/m or 600/h") }
        }
        if let v = r.percent(m["refresh_ahead"], at: "\(path).refresh_ahead") {
            if v > 90 { r.fail("\(path).refresh_ahead", m["refresh_ahead"], "at most 90%: a refresh is for the end of an entry's lifetime") }
            else { w.refreshAhead = Double(v) / 100 }
        }
        w.rewarmAfterPurge = r.bool(m["rewarm_after_purge"], at: "\(path).rewarm_after_purge") ?? (w.refreshAhead != nil)
        w.prefetch = readTemplates(m["prefetch"], at: "\(path).prefetch", kind: .url, pattern: pattern, &r)
        w.prefetchLinks = r.bool(m["prefetch_links"], at: "\(path).prefetch_links") ?? false
        if let v = m["predict"] {
            // YAML reads a bare on/off as a boolean.
            if case .scalar(let s) = v, let mode = SidecacheConfiguration.Warm.Predict(rawValue: s.string.lowercased())
                ?? (["true", "yes"].contains(s.string.lowercased()) ? .on : ["false", "no"].contains(s.string.lowercased()) ? .off : nil) {
                w.predict = mode
            } else {
                r.fail("\(path).predict", v, "expected on, shadow or off")
            }
        }
        if let text = r.string(m["session"], at: "\(path).session") {
            let token: (String) -> Bool = { !$0.isEmpty && $0.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == ".") } }
            if text == "client_ip" {
                w.session = .clientIP
            } else if text.hasPrefix("header:"), case let name = String(text.dropFirst(7)), token(name) {
                w.session = .header(name.lowercased())
            } else if text.hasPrefix("cookie:"), case let name = String(text.dropFirst(7)), token(name) {
                w.session = .cookie(name)
            } else {
                r.fail("\(path).session", m["session"], "expected client_ip, header:<Name> or cookie:<name>")
            }
        }
        if let v = m["min_confidence"] {
            if case .scalar(let s) = v, let c = Double(s.string), c > 0, c <= 1 { w.minConfidence = c }
            else { r.fail("\(path).min_confidence", v, "expected a probability above 0 and at most 1, e.g. 0.5") }
        }
        return w
    }

    /// `rate_limit: { requests, per, burst, key, scope, mode }` on a route.
    private static func readRateLimit(_ node: Node?, at path: String, redisConfigured: Bool,
                                      _ r: inout ConfigReader) -> SidecacheConfiguration.RateLimit? {
        guard let node, !r.isNull(node) else { return nil }
        guard let m = r.mapping(node, at: path, allowed: ["requests", "per", "burst", "key", "scope", "mode"]) else { return nil }
        let requests = r.positiveInt(m["requests"], at: "\(path).requests", max: 1_000_000_000)
        if m["requests"] == nil { r.fail("\(path).requests", node, "missing: how many requests are allowed per `per`") }
        var per = r.duration(m["per"], at: "\(path).per", allowZero: false)
        if m["per"] == nil { per = .seconds(1) }
        if let p = per, p.milliseconds > 86_400_000 { r.fail("\(path).per", m["per"], "must not exceed 1d") }
        let burst = r.int(m["burst"], at: "\(path).burst", in: 0...1_000_000_000)
        var key = SidecacheConfiguration.RateLimit.Key.clientIP
        if let text = r.string(m["key"], at: "\(path).key") {
            if text == "client_ip" { key = .clientIP }
            else if text == "route" { key = .route }
            else if text.hasPrefix("header:"), case let name = String(text.dropFirst("header:".count)), !name.isEmpty,
                    name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) {
                key = .header(name.lowercased())
            } else {
                r.fail("\(path).key", m["key"], "expected client_ip, route, or header:<Name> (e.g. header:X-Api-Key)")
            }
        }
        var scope = SidecacheConfiguration.RateLimit.Scope.local
        if let text = r.string(m["scope"], at: "\(path).scope") {
            if let s = SidecacheConfiguration.RateLimit.Scope(rawValue: text) { scope = s }
            else { r.fail("\(path).scope", m["scope"], "expected local or redis") }
            if scope == .redis, !redisConfigured {
                r.fail("\(path).scope", m["scope"], "scope: redis needs cache.redis (the limit is shared through it)")
            }
        }
        var shadow = false
        if let text = r.string(m["mode"], at: "\(path).mode") {
            switch text {
            case "enforce": shadow = false
            case "shadow": shadow = true
            default: r.fail("\(path).mode", m["mode"], "expected enforce or shadow")
            }
        }
        guard let requests, let per else { return nil }
        if per.milliseconds * 1_000_000 / Int64(requests) < 1 {
            r.fail("\(path).requests", m["requests"], "more than one request per nanosecond cannot be limited; lower requests or raise per")
        } else if scope == .redis, per.milliseconds * 1000 / Int64(requests) < 1 {
            // The shared script counts microseconds (Redis's TIME), its numbers being doubles.
            r.fail("\(path).requests", m["requests"], "scope: redis limits at most one request per microsecond (1000000 per second) per key")
        }
        var limit = SidecacheConfiguration.RateLimit(requests: requests, per: per)
        if let burst { limit.burst = burst }
        limit.key = key
        limit.scope = scope
        limit.shadow = shadow
        return limit
    }

    /// `upstream.circuit_breaker`: a mapping (every key optional), `true` for the defaults, `false` for none.
    private static func readCircuitBreaker(_ node: Node?, _ r: inout ConfigReader) -> SidecacheConfiguration.CircuitBreakerConfig? {
        let path = "upstream.circuit_breaker"
        guard let node, !r.isNull(node) else { return nil }
        if case .scalar = node { return r.bool(node, at: path) == true ? .init() : nil }
        guard let m = r.mapping(node, at: path, allowed: [
            "window", "min_requests", "failure_rate", "consecutive_failures", "open_for", "half_open_probes", "failure_statuses",
        ]) else { return nil }
        var b = SidecacheConfiguration.CircuitBreakerConfig()
        if let v = r.duration(m["window"], at: "\(path).window", allowZero: false) { b.window = v }
        if let v = r.positiveInt(m["min_requests"], at: "\(path).min_requests", max: 1_000_000) { b.minRequests = v }
        if let v = r.percent(m["failure_rate"], at: "\(path).failure_rate") { b.failureRatePercent = v }
        if let v = r.positiveInt(m["consecutive_failures"], at: "\(path).consecutive_failures", max: 1_000_000) { b.consecutiveFailures = v }
        if let v = r.duration(m["open_for"], at: "\(path).open_for", allowZero: false) { b.openFor = v }
        if let v = r.positiveInt(m["half_open_probes"], at: "\(path).half_open_probes", max: 1000) { b.halfOpenProbes = v }
        if let list = m["failure_statuses"] {
            if case .sequence(let items) = list {
                var statuses: [UInt] = []
                for (i, item) in items.enumerated() {
                    if let v = r.int(item, at: "\(path).failure_statuses[\(i)]", in: 500...599) { statuses.append(UInt(v)) }
                }
                b.failureStatuses = statuses
            } else {
                r.fail("\(path).failure_statuses", list, "expected a list of 5xx statuses, e.g. [502, 503, 504]")
            }
        }
        return b
    }

    /// `upstream.retries: { attempts, base, max, budget }`.
    private static func readRetries(_ node: Node?, _ r: inout ConfigReader) -> SidecacheConfiguration.Retries? {
        let path = "upstream.retries"
        guard let node, !r.isNull(node) else { return nil }
        guard let m = r.mapping(node, at: path, allowed: ["attempts", "base", "max", "budget"]) else { return nil }
        var retries = SidecacheConfiguration.Retries()
        if let v = r.int(m["attempts"], at: "\(path).attempts", in: 0...10) { retries.attempts = v }
        if let v = r.duration(m["base"], at: "\(path).base") { retries.base = v }
        if let v = r.duration(m["max"], at: "\(path).max") { retries.max = v }
        if let v = r.percent(m["budget"], at: "\(path).budget") { retries.budgetPercent = v }
        if retries.max < retries.base { r.fail("\(path).max", m["max"] ?? node, "must not be less than base (\(DurationText.format(retries.base)))") }
        return retries
    }

    /// `trusted_proxies`: CIDR blocks (or single addresses) of the proxies in front of sidecache.
    private static func readTrustedProxies(_ node: Node?, _ r: inout ConfigReader) -> [CIDRBlock] {
        guard let node else { return [] }
        guard case .sequence(let items) = node else {
            r.fail("trusted_proxies", node, "expected a list, e.g. [10.0.0.0/8, 192.168.1.7]")
            return []
        }
        var blocks: [CIDRBlock] = []
        for (i, item) in items.enumerated() {
            guard let text = r.string(item, at: "trusted_proxies[\(i)]") else { continue }
            if let block = CIDRBlock(text) { blocks.append(block) }
            else { r.fail("trusted_proxies[\(i)]", item, "'\(text)' is not an address or CIDR block such as 10.0.0.0/8 or fd00::/8") }
        }
        return blocks
    }

    private enum TemplateKind { case tag, pathGlob, url }

    /// A list of tag or path-glob templates whose `{name}` placeholders are parameters of the route's path.
    private static func readTemplates(_ node: Node?, at path: String, kind: TemplateKind, pattern: PathPattern?,
                                      _ r: inout ConfigReader) -> [TagTemplate] {
        guard let list = r.stringList(node, at: path) else { return [] }
        var templates: [TagTemplate] = []
        for (j, text) in list.enumerated() {
            let valid: Bool
            switch kind {
            case .tag: valid = !text.isEmpty && !text.contains(" ")
            case .pathGlob: valid = (text.hasPrefix("/") || text.hasPrefix("*")) && !text.contains(" ")
            case .url: valid = text.hasPrefix("/") && !text.hasPrefix("//") && !text.contains(where: { $0 == " " || $0 == "*" || $0 == "#" })
            }
            guard valid, let t = TagTemplate(text) else {
                let expected = switch kind {
                case .tag: "a tag template (no spaces; placeholders like {id})"
                case .pathGlob: "a path glob starting with / (e.g. \"/api/search*\", placeholders like {id})"
                case .url: "a path on this origin, with an optional query (e.g. \"/api/items/{id}/reviews\")"
                }
                r.fail("\(path)[\(j)]", node, "'\(text)' is not \(expected)")
                continue
            }
            if let pattern {
                for p in t.parameterNames where !pattern.parameterNames.contains(p) {
                    r.fail("\(path)[\(j)]", node, "{\(p)} is not a parameter of the path \(pattern.source)")
                }
            }
            templates.append(t)
        }
        return templates
    }
}

/// The parts of an upstream URL sidecache understands now: plain http to a host and port.
enum UpstreamURL {
    enum Result { case success(host: String, port: Int), failure(String) }

    static func parse(_ url: String) -> Result {
        let lower = url.lowercased()
        if lower.hasPrefix("https://") { return .failure("https upstreams are not supported yet; use http://") }
        guard lower.hasPrefix("http://") else { return .failure("expected an http:// URL, e.g. \"http://127.0.0.1:3000\"") }
        var rest = url.dropFirst("http://".count)
        if let slash = rest.firstIndex(of: "/") {
            guard rest[slash...] == "/" else { return .failure("a path prefix in the upstream URL is not supported; give scheme, host and port only") }
            rest = rest[..<slash]
        }
        guard !rest.isEmpty else { return .failure("the URL has no host") }
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { return .failure("unterminated IPv6 address") }
            let host = String(rest[rest.index(after: rest.startIndex)..<close])
            let after = rest[rest.index(after: close)...]
            if after.isEmpty { return .success(host: host, port: 80) }
            guard after.hasPrefix(":"), let port = Int(after.dropFirst()), (1...65535).contains(port) else { return .failure("bad port") }
            return .success(host: host, port: port)
        }
        if let colon = rest.lastIndex(of: ":") {
            guard let port = Int(rest[rest.index(after: colon)...]), (1...65535).contains(port) else { return .failure("bad port in the upstream URL") }
            let host = String(rest[..<colon])
            guard !host.isEmpty else { return .failure("the URL has no host") }
            return .success(host: host, port: port)
        }
        return .success(host: String(rest), port: 80)
    }
}
