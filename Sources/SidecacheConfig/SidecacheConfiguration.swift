import HTTPCaching
import RedisClient
import Resilience

/// The validated content of a config file, before compilation. Encodable so the admin port can show
/// the active configuration.
public struct SidecacheConfiguration: Sendable, Equatable, Encodable {
    public var listen: ListenAddress
    public var upstream: Upstream
    public var limits: Limits
    public var cache: Cache
    public var logging: Logging
    public var routes: [Route]
    /// The admin port; nil when the file has no `admin` section.
    public var admin: Admin? = nil
    /// gzip for routes that do not say otherwise; nil when `compression: { gzip: false }`.
    public var gzip: Gzip? = Gzip()
    /// `trusted_proxies`: peers whose `X-Forwarded-For` names the client for `key: client_ip`.
    public var trustedProxies: [CIDRBlock] = []
    /// `warming`: the budget of background fetches; nil (no section) for none at all.
    public var warming: Warming? = nil
    /// `event_loops`: threads serving connections (nginx's `worker_processes`); nil for one per
    /// core. Read at start: a reload does not change it.
    public var eventLoops: Int? = nil

    enum CodingKeys: String, CodingKey {
        case listen, upstream, limits, cache, logging, routes, admin, gzip, trustedProxies = "trusted_proxies", warming
        case eventLoops = "event_loops"
    }

    /// `warming`: what every background fetch (refresh-ahead) shares.
    public struct Warming: Sendable, Equatable, Encodable {
        /// Background fetches started per second at most.
        public var maxRequestsPerSecond: Double = 50
        /// Background fetches under way at once at most.
        public var maxConcurrent = 8
        /// Keys whose request rate is tracked, over all routes.
        public var maxTrackedKeys = 100_000
        /// Where the hot set is kept across restarts (written every few seconds and at shutdown).
        public var stateFile: String? = nil
        /// `/readyz` says `warming` while the warm start runs, at most this long.
        public var startTimeout = CacheDuration.seconds(30)
        /// Paths warmed at start (`on_start.urls`), and a file of more, one per line (`on_start.file`).
        public var onStartURLs: [String] = []
        public var onStartFile: String? = nil

        public init() {}

        enum CodingKeys: String, CodingKey {
            case maxRequestsPerSecond = "max_rps", maxConcurrent = "max_concurrent", maxTrackedKeys = "max_tracked_keys", stateFile = "state_file"
            case startTimeout = "start_timeout", onStart = "on_start"
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(maxRequestsPerSecond, forKey: .maxRequestsPerSecond)
            try c.encode(maxConcurrent, forKey: .maxConcurrent)
            try c.encode(maxTrackedKeys, forKey: .maxTrackedKeys)
            try c.encodeIfPresent(stateFile, forKey: .stateFile)
            try c.encode(DurationText.format(startTimeout), forKey: .startTimeout)
            if !onStartURLs.isEmpty || onStartFile != nil {
                try c.encode(["urls": onStartURLs.joined(separator: " "), "file": onStartFile ?? ""], forKey: .onStart)
            }
        }
    }

    /// A route's `warm`: when its keys count as hot, and what is done for hot keys.
    public struct Warm: Sendable, Equatable, Encodable {
        /// Requests per second from which a key is hot.
        public var minRate: Double = 0.1
        /// Refetch a hot entry when less than this part of its freshness lifetime is left (0.1
        /// for 10%); nil for no refresh-ahead.
        public var refreshAhead: Double? = nil
        /// Refetch hot entries a purge removed or marked (default: where refresh_ahead is set).
        public var rewarmAfterPurge = false
        /// URLs fetched after a request on the route when the cache has no fresh entry for them,
        /// their `{name}` filled from the request's path.
        public var prefetch: [TagTemplate] = []
        /// Fetch what the origin's responses announce with `Link: <...>; rel=prefetch` (or
        /// `preload`), same-origin only.
        public var prefetchLinks = false
        /// The learned successor model: off, shadow (score only) or on (fetch).
        public var predict = Predict.off
        /// What makes requests one session's, for the successor model.
        public var session = Session.clientIP
        /// A successor this likely (or more) is fetched.
        public var minConfidence = 0.5

        public enum Predict: String, Sendable, Equatable, Encodable {
            case off, shadow, on
        }

        public enum Session: Sendable, Equatable, Encodable {
            case clientIP
            case header(String)
            case cookie(String)

            public var description: String {
                switch self {
                case .clientIP: "client_ip"
                case .header(let name): "header:\(name)"
                case .cookie(let name): "cookie:\(name)"
                }
            }

            public func encode(to encoder: any Encoder) throws {
                var c = encoder.singleValueContainer()
                try c.encode(description)
            }
        }

        public init() {}

        enum CodingKeys: String, CodingKey {
            case minRate = "min_rate_per_second", refreshAhead = "refresh_ahead", rewarmAfterPurge = "rewarm_after_purge", prefetch
            case prefetchLinks = "prefetch_links", predict, session, minConfidence = "min_confidence"
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(minRate, forKey: .minRate)
            try c.encodeIfPresent(refreshAhead, forKey: .refreshAhead)
            try c.encode(rewarmAfterPurge, forKey: .rewarmAfterPurge)
            if !prefetch.isEmpty { try c.encode(prefetch.map(\.source), forKey: .prefetch) }
            try c.encode(prefetchLinks, forKey: .prefetchLinks)
            try c.encode(predict, forKey: .predict)
            if predict != .off {
                try c.encode(session, forKey: .session)
                try c.encode(minConfidence, forKey: .minConfidence)
            }
        }
    }

    /// `compression.gzip`: what is compressed, and how hard.
    public struct Gzip: Sendable, Equatable, Encodable {
        public var minBytes = 1024
        public var level = 6
        public var types = ["application/json", "text/*", "application/javascript", "image/svg+xml"]

        public init() {}

        enum CodingKeys: String, CodingKey {
            case minBytes = "min_bytes", level, types
        }
    }

    public struct ListenAddress: Sendable, Equatable, Encodable, CustomStringConvertible {
        public var host: String
        public var port: Int

        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }

        public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

        /// `host:port`, `[v6]:port` or `:port` (all interfaces).
        public static func parse(_ text: String) -> ListenAddress? {
            var host: Substring
            var portText: Substring
            if text.hasPrefix("[") {
                guard let close = text.firstIndex(of: "]") else { return nil }
                host = text[text.index(after: text.startIndex)..<close]
                let after = text[text.index(after: close)...]
                guard after.hasPrefix(":") else { return nil }
                portText = after.dropFirst()
            } else {
                guard let colon = text.lastIndex(of: ":") else { return nil }
                host = text[..<colon]
                portText = text[text.index(after: colon)...]
                if host.contains(":") { return nil }
            }
            if host.isEmpty { host = "0.0.0.0" }
            guard let port = Int(portText), (0...65535).contains(port) else { return nil }
            return ListenAddress(host: String(host), port: port)
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.singleValueContainer()
            try c.encode(description)
        }
    }

    public struct Upstream: Sendable, Equatable, Encodable {
        public var url: String
        public var host: String
        public var port: Int
        public var connectTimeout: CacheDuration
        public var responseTimeout: CacheDuration
        public var maxConnections: Int
        /// Idle keep-alive connections to the upstream are closed after this long.
        public var keepaliveTimeout: CacheDuration
        /// Nil: no breaker (every request goes to the upstream).
        public var circuitBreaker: CircuitBreakerConfig? = nil
        /// Nil: no retries beyond the one for a keep-alive connection the upstream had closed.
        public var retries: Retries? = nil

        enum CodingKeys: String, CodingKey {
            case url, connectTimeout = "connect_timeout", responseTimeout = "response_timeout"
            case maxConnections = "max_connections", keepaliveTimeout = "keepalive_timeout"
            case circuitBreaker = "circuit_breaker", retries
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(url, forKey: .url)
            try c.encode(DurationText.format(connectTimeout), forKey: .connectTimeout)
            try c.encode(DurationText.format(responseTimeout), forKey: .responseTimeout)
            try c.encode(maxConnections, forKey: .maxConnections)
            try c.encode(DurationText.format(keepaliveTimeout), forKey: .keepaliveTimeout)
            try c.encodeIfPresent(circuitBreaker, forKey: .circuitBreaker)
            try c.encodeIfPresent(retries, forKey: .retries)
        }
    }

    public struct Limits: Sendable, Equatable, Encodable {
        public var maxHeaderBytes: Int
        public var maxConnections: Int
        public var headerReadTimeout: CacheDuration
        public var idleTimeout: CacheDuration
        /// How long SIGTERM waits for in-flight requests before closing what is left.
        public var drainTimeout: CacheDuration
        /// What a client's half-close (it shut its sending side) does to the requests it already sent.
        public var clientHalfClose = ClientHalfClose.answer
        /// A connection sidecache ends after a response (an error, `Connection: close`, a drain) is
        /// closed in stages (RFC 9112 §9.6): its sending side first, then what the client still sends
        /// is read and dropped for at most this long (0 closes at once) ...
        public var lingeringTime = CacheDuration.seconds(5)
        /// ... or until the client is silent this long, or sends 1 MiB, or closes; then it closes.
        /// Closing with unread bytes would make the kernel reset the connection, and the reset can
        /// destroy the answer before the client reads it. nginx's `lingering_close` is the model.
        public var lingeringTimeout = CacheDuration.seconds(1)

        /// A half-close says the client will send nothing more, not that it stopped listening.
        public enum ClientHalfClose: String, Sendable, Equatable, Encodable, CaseIterable {
            /// Every request already received is answered, then the connection closes (as Envoy).
            case answer
            /// A request being forwarded uncached is abandoned and its upstream connection closed (as
            /// nginx's `proxy_ignore_client_abort off`); hits and cache fills are still answered.
            case abort
        }

        enum CodingKeys: String, CodingKey {
            case maxHeaderBytes = "max_header_bytes", maxConnections = "max_connections"
            case headerReadTimeout = "header_read_timeout", idleTimeout = "idle_timeout", drainTimeout = "drain_timeout"
            case clientHalfClose = "client_half_close"
            case lingeringTime = "lingering_time", lingeringTimeout = "lingering_timeout"
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(SizeText.format(maxHeaderBytes), forKey: .maxHeaderBytes)
            try c.encode(maxConnections, forKey: .maxConnections)
            try c.encode(DurationText.format(headerReadTimeout), forKey: .headerReadTimeout)
            try c.encode(DurationText.format(idleTimeout), forKey: .idleTimeout)
            try c.encode(DurationText.format(drainTimeout), forKey: .drainTimeout)
            try c.encode(clientHalfClose, forKey: .clientHalfClose)
            try c.encode(DurationText.format(lingeringTime), forKey: .lingeringTime)
            try c.encode(DurationText.format(lingeringTimeout), forKey: .lingeringTimeout)
        }
    }

    public struct Cache: Sendable, Equatable, Encodable {
        public var memory: MemoryStore.Limits
        /// The shared second tier; nil runs on memory alone.
        public var redis: Redis?
        /// `key_host`: whether the request's Host is part of every cache key.
        public var keyHost: CacheKeyPolicy.HostPart

        public init(memory: MemoryStore.Limits, redis: Redis? = nil, keyHost: CacheKeyPolicy.HostPart = .request) {
            self.memory = memory
            self.redis = redis
            self.keyHost = keyHost
        }

        enum CodingKeys: String, CodingKey { case memory, redis, keyHost = "key_host" }
        enum MemoryKeys: String, CodingKey { case maxBytes = "max_bytes", maxObjectBytes = "max_object_bytes" }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            var m = c.nestedContainer(keyedBy: MemoryKeys.self, forKey: .memory)
            try m.encode(SizeText.format(memory.maxBytes), forKey: .maxBytes)
            try m.encode(SizeText.format(memory.maxObjectBytes), forKey: .maxObjectBytes)
            try c.encodeIfPresent(redis, forKey: .redis)
            try c.encode(keyHost.rawValue, forKey: .keyHost)
        }
    }

    /// `cache.redis`: the L2 tier shared by every instance, and their invalidation channel.
    public struct Redis: Sendable, Equatable, Encodable {
        public var url: RedisURL
        /// Every key sidecache writes starts with this, and the channel is `<key_prefix>invalidate`.
        public var keyPrefix: String
        /// Pooled command connections (plus one for pub/sub).
        public var poolSize: Int
        /// How long a command may take before it counts as failed (and the request goes on without it).
        public var timeout: CacheDuration
        /// Entries with larger bodies stay in L1 only.
        public var maxObjectBytes: Int

        public init(url: RedisURL, keyPrefix: String = "sidecache:", poolSize: Int = 4, timeout: CacheDuration = .milliseconds(50),
                    maxObjectBytes: Int = 8 << 20) {
            self.url = url
            self.keyPrefix = keyPrefix
            self.poolSize = poolSize
            self.timeout = timeout
            self.maxObjectBytes = maxObjectBytes
        }

        public var invalidationChannel: String { keyPrefix + "invalidate" }

        enum CodingKeys: String, CodingKey {
            case url, keyPrefix = "key_prefix", poolSize = "pool_size", timeout, maxObjectBytes = "max_object_bytes"
        }

        /// The URL is written without its password.
        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(url.description, forKey: .url)
            try c.encode(keyPrefix, forKey: .keyPrefix)
            try c.encode(poolSize, forKey: .poolSize)
            try c.encode(DurationText.format(timeout), forKey: .timeout)
            try c.encode(SizeText.format(maxObjectBytes), forKey: .maxObjectBytes)
        }
    }

    /// `admin`: the operators' HTTP port (purge, reload, config, health).
    public struct Admin: Sendable, Equatable, Encodable {
        public var listen: ListenAddress
        /// A file holding the bearer token (`SIDECACHE_ADMIN_TOKEN` wins over it).
        public var tokenFile: String?

        public init(listen: ListenAddress, tokenFile: String? = nil) {
            self.listen = listen
            self.tokenFile = tokenFile
        }

        enum CodingKeys: String, CodingKey { case listen, tokenFile = "token_file" }

        /// True for 127.0.0.0/8, ::1 and localhost: only then may the port run without a token.
        public var isLoopback: Bool {
            let host = listen.host.lowercased()
            return host == "localhost" || host == "::1" || host.hasPrefix("127.")
        }
    }

    public struct Logging: Sendable, Equatable, Encodable {
        public var level: String
        public var access: Bool
    }

    public struct Route: Sendable, Equatable, Encodable {
        public var name: String
        /// Uppercase method names; nil means every method.
        public var methods: [String]?
        public var path: PathPattern
        public var cache: Bool
        public var ttl: CacheDuration?
        public var overrideOrigin: Bool
        public var staleWhileRevalidate: CacheDuration
        public var staleIfError: CacheDuration
        public var keyQuery: CacheKeyPolicy.Query
        public var keyHeaders: [String]
        public var tags: [TagTemplate]
        public var honorClientNoCache: Bool
        public var targetedCacheControl: String
        /// What a successful write through this route purges.
        public var invalidates: Invalidates
        /// The route's own `compression`: nil to use the global one, `.some(nil)` for gzip off.
        public var gzip: Gzip??
        public var rateLimit: RateLimit? = nil
        /// PUT and DELETE may be retried too (they are idempotent by definition, RFC 9110 §9.2.2,
        /// but only the API's authors know whether theirs really are).
        public var retryUnsafeIdempotent = false
        /// RFC 9111 §4.2.2 heuristic freshness from `Last-Modified` (default: on without a `ttl`).
        public var heuristic = true
        public var heuristicMax = CacheDuration.seconds(86_400)
        /// `warm`: hotness and refresh-ahead; nil for none.
        public var warm: Warm? = nil

        enum CodingKeys: String, CodingKey {
            case heuristic, heuristicMax = "heuristic_max", warm
            case name, methods, path, cache, ttl, overrideOrigin = "override_origin"
            case staleWhileRevalidate = "stale_while_revalidate", staleIfError = "stale_if_error"
            case key, tags, honorClientNoCache = "honor_client_no_cache", targetedCacheControl = "targeted_cache_control"
            case invalidates, gzip, rateLimit = "rate_limit", retryUnsafeIdempotent = "retry_unsafe_idempotent"
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(name, forKey: .name)
            try c.encodeIfPresent(methods, forKey: .methods)
            try c.encode(path.source, forKey: .path)
            try c.encode(cache, forKey: .cache)
            try c.encodeIfPresent(ttl.map(DurationText.format), forKey: .ttl)
            try c.encode(overrideOrigin, forKey: .overrideOrigin)
            try c.encode(DurationText.format(staleWhileRevalidate), forKey: .staleWhileRevalidate)
            try c.encode(DurationText.format(staleIfError), forKey: .staleIfError)
            let query: String
            switch keyQuery {
            case .all: query = "all"
            case .none: query = "none"
            case .only(let names): query = names.sorted().joined(separator: ",")
            }
            try c.encode(["query": query, "headers": keyHeaders.joined(separator: ",")], forKey: .key)
            try c.encode(tags.map(\.source), forKey: .tags)
            try c.encode(honorClientNoCache, forKey: .honorClientNoCache)
            try c.encode(targetedCacheControl, forKey: .targetedCacheControl)
            if let gzip { try c.encode(gzip, forKey: .gzip) }
            try c.encodeIfPresent(rateLimit, forKey: .rateLimit)
            if retryUnsafeIdempotent { try c.encode(true, forKey: .retryUnsafeIdempotent) }
            try c.encode(heuristic, forKey: .heuristic)
            try c.encode(DurationText.format(heuristicMax), forKey: .heuristicMax)
            try c.encodeIfPresent(warm, forKey: .warm)
            if !invalidates.isEmpty {
                try c.encode(["tags": invalidates.tags.map(\.source), "patterns": invalidates.patterns.map(\.source)], forKey: .invalidates)
            }
        }
    }

    /// A route's `invalidates`: tags and path globs purged when a write through it gets a 2xx.
    public struct Invalidates: Sendable, Equatable {
        public var tags: [TagTemplate] = []
        public var patterns: [TagTemplate] = []

        public init(tags: [TagTemplate] = [], patterns: [TagTemplate] = []) {
            self.tags = tags
            self.patterns = patterns
        }

        public var isEmpty: Bool { tags.isEmpty && patterns.isEmpty }
    }
}

/// A tag with `{name}` placeholders filled from the route's path parameters, e.g. `item:{id}`.
public struct TagTemplate: Sendable, Equatable {
    public enum Piece: Sendable, Equatable {
        case text(String)
        case parameter(String)
    }

    public let source: String
    public let pieces: [Piece]

    public init?(_ source: String) {
        self.source = source
        var pieces: [Piece] = []
        var rest = Substring(source)
        while let open = rest.firstIndex(of: "{") {
            if open > rest.startIndex { pieces.append(.text(String(rest[..<open]))) }
            guard let close = rest[open...].firstIndex(of: "}") else { return nil }
            let name = rest[rest.index(after: open)..<close]
            guard !name.isEmpty else { return nil }
            pieces.append(.parameter(String(name)))
            rest = rest[rest.index(after: close)...]
        }
        if rest.contains("}") { return nil }
        if !rest.isEmpty { pieces.append(.text(String(rest))) }
        self.pieces = pieces
    }

    public var parameterNames: [String] {
        pieces.compactMap { if case .parameter(let n) = $0 { n } else { nil } }
    }

    public func render(_ parameters: [(name: String, value: Substring)]) -> String {
        render(parameters) { String($0) }
    }

    /// For a path glob: a parameter value is matched literally, its `*`, `?`, `[` and `\` escaped.
    public func renderGlob(_ parameters: [(name: String, value: Substring)]) -> String {
        render(parameters) { value in
            var out = ""
            for c in value {
                if c == "*" || c == "?" || c == "[" || c == "]" || c == "\\" { out.append("\\") }
                out.append(c)
            }
            return out
        }
    }

    private func render(_ parameters: [(name: String, value: Substring)], value: (Substring) -> String) -> String {
        var out = ""
        for piece in pieces {
            switch piece {
            case .text(let t): out += t
            case .parameter(let n): out += parameters.first(where: { $0.name == n }).map { value($0.value) } ?? ""
            }
        }
        return out
    }
}
