import HTTPCaching
import NIOHTTP1

/// A route ready for the request path: its pattern, and the cache and key policies it implies. A
/// class: every request holds its route, and copying a struct of this many references cost a
/// retain and a release of each of them per request.
public final class CompiledRoute: Sendable {
    public let name: String
    public let methods: [HTTPMethod]?
    public let pattern: PathPattern
    public let cacheEnabled: Bool
    public let policy: CachePolicy
    public let keyPolicy: CacheKeyPolicy
    public let tags: [TagTemplate]
    public let invalidates: SidecacheConfiguration.Invalidates
    /// gzip for this route (its own setting, else the global one); nil when off.
    public let gzip: SidecacheConfiguration.Gzip?
    /// Position in the file: indexes per-route state the runtime keeps beside the snapshot.
    public let index: Int
    public let rateLimit: SidecacheConfiguration.RateLimit?
    public let retryUnsafeIdempotent: Bool
    /// Hotness and refresh-ahead; nil when the route has no `warm`.
    public let warm: SidecacheConfiguration.Warm?

    init(_ route: SidecacheConfiguration.Route, index: Int, gzip global: SidecacheConfiguration.Gzip?, keyHost: CacheKeyPolicy.HostPart) {
        self.index = index
        rateLimit = route.rateLimit
        retryUnsafeIdempotent = route.retryUnsafeIdempotent
        warm = route.warm
        name = route.name
        methods = route.methods.map { $0.map { HTTPMethod(rawValue: $0) } }
        pattern = route.path
        cacheEnabled = route.cache
        policy = CachePolicy(
            defaultTTL: route.ttl, overrideOrigin: route.overrideOrigin,
            staleWhileRevalidate: route.staleWhileRevalidate, staleIfError: route.staleIfError,
            targetedField: route.targetedCacheControl, honorClientNoCache: route.honorClientNoCache,
            heuristic: route.heuristic, heuristicMax: route.heuristicMax
        )
        keyPolicy = CacheKeyPolicy(query: route.keyQuery, headers: route.keyHeaders, host: keyHost)
        tags = route.tags
        invalidates = route.invalidates
        gzip = route.gzip ?? global
    }

    public func matches(method: HTTPMethod, path: Substring) -> Bool {
        if let methods, !methods.contains(method) { return false }
        return pattern.matches(path)
    }

    /// What a successful write to `path` purges: the route's `invalidates` filled from the path.
    public func invalidations(forPath path: Substring) -> (tags: [String], patterns: [String]) {
        guard !invalidates.isEmpty else { return ([], []) }
        let parameters = pattern.match(path) ?? []
        return (invalidates.tags.map { $0.render(parameters) }, invalidates.patterns.map { $0.renderGlob(parameters) })
    }

    /// The route's tag templates filled from the request path.
    public func tags(forPath path: Substring) -> [String] {
        guard !tags.isEmpty else { return [] }
        let parameters = pattern.match(path) ?? []
        return tags.map { $0.render(parameters) }
    }
}

/// One loaded, validated and compiled configuration. Immutable: a reload builds a new snapshot and
/// swaps it in, so a request keeps the snapshot it started with.
public final class ConfigSnapshot: Sendable {
    public let configuration: SidecacheConfiguration
    public let routes: [CompiledRoute]
    /// Increases with every successful load in one process.
    public let version: Int
    public let sourcePath: String

    public init(configuration: SidecacheConfiguration, version: Int, sourcePath: String) {
        self.configuration = configuration
        self.routes = configuration.routes.enumerated().map { CompiledRoute($1, index: $0, gzip: configuration.gzip, keyHost: configuration.cache.keyHost) }
        self.version = version
        self.sourcePath = sourcePath
    }

    /// First match wins, in file order. Nil when no route matches (the request is forwarded uncached).
    public func route(method: HTTPMethod, path: Substring) -> CompiledRoute? {
        for route in routes where route.matches(method: method, path: path) { return route }
        return nil
    }

    /// One line for `sidecache check` and the startup log.
    public var summary: String {
        let c = configuration
        return "\(routes.count) route\(routes.count == 1 ? "" : "s") (\(routes.map(\.name).joined(separator: ", "))), listen \(c.listen), upstream \(c.upstream.url), memory cache \(SizeText.format(c.cache.memory.maxBytes))"
    }
}

/// Reads, validates and compiles a config file.
public enum ConfigLoader {
    public static func load(path: String, version: Int) throws(ConfigErrors) -> ConfigSnapshot {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigErrors(file: path, errors: [ConfigError(path: "", line: nil, message: "cannot read the file: \(error.localizedDescription)")])
        }
        let configuration = try ConfigParser.parse(yaml: text, file: path)
        return ConfigSnapshot(configuration: configuration, version: version, sourcePath: path)
    }
}

/// What a reload changed, for the one log line it writes.
public struct ConfigChanges: Sendable, Equatable, CustomStringConvertible {
    public var addedRoutes: [String] = []
    public var removedRoutes: [String] = []
    public var changedRoutes: [String] = []
    /// Top-level sections whose values differ (`upstream`, `limits`, ...).
    public var changedSections: [String] = []
    /// Settings that only take effect after a restart (the listen address).
    public var needsRestart: [String] = []

    public init(from old: SidecacheConfiguration, to new: SidecacheConfiguration) {
        let oldByName = Dictionary(old.routes.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let newByName = Dictionary(new.routes.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        addedRoutes = new.routes.map(\.name).filter { oldByName[$0] == nil }
        removedRoutes = old.routes.map(\.name).filter { newByName[$0] == nil }
        changedRoutes = new.routes.compactMap { r in oldByName[r.name].flatMap { $0 == r ? nil : r.name } }
        if old.routes.map(\.name) != new.routes.map(\.name), addedRoutes.isEmpty, removedRoutes.isEmpty {
            changedSections.append("route order")
        }
        if old.upstream != new.upstream { changedSections.append("upstream") }
        if old.limits != new.limits { changedSections.append("limits") }
        if old.cache != new.cache { changedSections.append("cache") }
        if old.logging != new.logging { changedSections.append("logging") }
        if old.trustedProxies != new.trustedProxies { changedSections.append("trusted_proxies") }
        if old.listen != new.listen { needsRestart.append("listen") }
        if old.admin != new.admin { needsRestart.append("admin") }
    }

    public var isEmpty: Bool {
        addedRoutes.isEmpty && removedRoutes.isEmpty && changedRoutes.isEmpty && changedSections.isEmpty && needsRestart.isEmpty
    }

    public var description: String {
        if isEmpty { return "no changes" }
        var parts: [String] = []
        if !addedRoutes.isEmpty { parts.append("routes added: \(addedRoutes.joined(separator: ", "))") }
        if !removedRoutes.isEmpty { parts.append("routes removed: \(removedRoutes.joined(separator: ", "))") }
        if !changedRoutes.isEmpty { parts.append("routes changed: \(changedRoutes.joined(separator: ", "))") }
        if !changedSections.isEmpty { parts.append("changed: \(changedSections.joined(separator: ", "))") }
        if !needsRestart.isEmpty { parts.append("needs a restart to apply: \(needsRestart.joined(separator: ", "))") }
        return parts.joined(separator: "; ")
    }
}
