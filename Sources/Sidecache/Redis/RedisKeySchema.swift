import HTTPCaching

/// The names sidecache gives its Redis keys, all under the configured `key_prefix` so that
/// instances of one deployment share them and other deployments on the same Redis do not:
///
/// - `<prefix>e:<cache key>`: a hash of one URL's variants (field: the Vary values, value: the
///   encoded entry);
/// - `<prefix>p:<path>`: the set of entry keys for a URL path (purge by URL, by pattern);
/// - `<prefix>t:<tag>`: the set of entry keys carrying a tag (purge by tag);
/// - `<prefix>rl:<route>:<client key>`: a shared rate limit's state;
/// - `<prefix>lease:<cache key>`: which instance refreshes a hot entry ahead of its expiry;
/// - `<prefix>hot`: the hot set the instances share, a sorted set of recipes (`SharedHotness`).
///
/// With the lifetime of what is stored and the variant field, this is all the layout there is.
struct RedisKeySchema: Sendable, Equatable {
    let prefix: String

    func entry(_ key: CacheKey) -> String { prefix + "e:" + key.value }
    func path(_ path: String) -> String { prefix + "p:" + path }
    func tag(_ tag: String) -> String { prefix + "t:" + tag }
    func rateLimit(route: String, key: String) -> String { prefix + "rl:" + route + ":" + key }
    func lease(_ key: CacheKey) -> String { prefix + "lease:" + key.value }
    var hot: String { prefix + "hot" }

    /// What every entry key, and every path set key, begins with.
    var entryPrefix: String { prefix + "e:" }
    var pathPrefix: String { prefix + "p:" }
    /// A SCAN pattern for everything of this deployment's, and for its entries alone.
    var everything: String { prefix + "*" }
    var allEntries: String { prefix + "e:*" }

    /// The variant field: the request's values of the Vary fields, `name=value` lines ("" when the
    /// response varies on nothing).
    static func variantField(names: [String], values: [String]) -> String {
        zip(names, values).map { "\($0)=\($1)" }.joined(separator: "\n")
    }

    /// How long Redis keeps an entry: the freshness left plus the longer stale window (after that it
    /// can serve nothing), and at least a second.
    static func ttlMilliseconds(_ entry: CachedResponse, now: CacheInstant) -> Int64 {
        let remaining = entry.terms.freshnessLifetime - entry.age(at: now)
        let windows = max(entry.terms.staleWhileRevalidate, entry.terms.staleIfError)
        return max(1000, (remaining + windows).milliseconds)
    }
}
