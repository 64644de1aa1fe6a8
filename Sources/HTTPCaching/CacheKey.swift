import NIOHTTP1

/// The primary cache key of a request (RFC 9111 §2): host, path and the parts of the query and
/// request headers the route says matter. Vary is handled below the key, per stored variant.
public struct CacheKey: Hashable, Sendable, CustomStringConvertible {
    /// The full key, unique per host + path + selected query + selected headers.
    public let value: String
    /// The path alone: every variant of one URL shares it, so invalidation by URL can find them all.
    public let path: String

    public init(value: String, path: String) {
        self.value = value
        self.path = path
    }

    public var description: String { value }
}

/// How a route turns a request into a `CacheKey`.
public struct CacheKeyPolicy: Sendable, Equatable {
    public enum Query: Sendable, Equatable {
        /// Every query parameter, sorted so that `?a=1&b=2` and `?b=2&a=1` share an entry.
        case all
        /// The query is ignored.
        case none
        /// Only the listed parameters, sorted; the others are dropped.
        case only(Set<String>)
    }

    /// What of the request's authority goes into the key.
    public enum HostPart: String, Sendable, Equatable, CaseIterable {
        /// The `Host` as the client sent it (lowercased): right when the upstream serves several
        /// virtual hosts, or when every instance is reached under one name.
        case request
        /// None: one upstream, one site. Clients reaching sidecache as `localhost:8080`, by
        /// address, or through two balancers share one entry per resource (and so do instances
        /// sharing Redis), as nginx's default key (`$proxy_host`, the upstream's) does in effect.
        case none
    }

    public var query: Query
    /// Lowercased request header names whose values become part of the key.
    public var headers: [String]
    public var host: HostPart

    public init(query: Query = .all, headers: [String] = [], host: HostPart = .request) {
        self.query = query
        self.headers = headers.map { $0.lowercased() }
        self.host = host
    }

    /// Splits a request target into its path and query (without the `?`).
    public static func split(uri: String) -> (path: Substring, query: Substring?) {
        // Byte scan: '?' and '#' are ASCII, so UTF-8 indices are valid String indices.
        let bytes = uri.utf8
        var query: String.Index? = nil
        var end = bytes.endIndex
        var i = bytes.startIndex
        while i < bytes.endIndex {
            let b = bytes[i]
            if b == UInt8(ascii: "#") { end = i; break }
            if b == UInt8(ascii: "?"), query == nil { query = i }
            i = bytes.index(after: i)
        }
        guard let q = query, q < end else { return (uri[uri.startIndex..<end], nil) }
        return (uri[uri.startIndex..<q], uri[bytes.index(after: q)..<end])
    }

    public func key(host: String, uri: String, headers requestHeaders: HTTPHeaders) -> CacheKey {
        let (path, query) = Self.split(uri: uri)
        return key(host: host, path: path, query: query, headers: requestHeaders)
    }

    /// The key from a target already split into path and query (the request path splits it once).
    public func key(host: String, path: Substring, query: Substring?, headers requestHeaders: HTTPHeaders) -> CacheKey {
        var key: String
        switch self.host {
        case .request: key = host.utf8.contains(where: { $0 >= 0x41 && $0 <= 0x5A }) ? host.lowercased() : host
        case .none: key = ""
        }
        key += path
        if let normalized = normalize(query: query), !normalized.isEmpty {
            key += "?"
            key += normalized
        }
        for name in headers {
            key += "\u{0}"
            key += name
            key += "="
            key += requestHeaders[canonicalForm: name].joined(separator: ",")
        }
        return CacheKey(value: key, path: String(path))
    }

    private func normalize(query: Substring?) -> String? {
        guard let query, !query.isEmpty else { return nil }
        switch self.query {
        case .none:
            return nil
        case .all:
            let pairs = query.split(separator: "&", omittingEmptySubsequences: true)
            if pairs.count == 1 { return String(pairs[0]) }
            return pairs.sorted(by: Self.pairOrder).joined(separator: "&")
        case .only(let names):
            let kept = query.split(separator: "&", omittingEmptySubsequences: true).filter { pair in
                let name = pair.firstIndex(of: "=").map { pair[..<$0] } ?? pair
                return names.contains(String(name))
            }
            return kept.sorted(by: Self.pairOrder).joined(separator: "&")
        }
    }

    /// Sorts by name first so that values keep their relative order only through the stable sort of
    /// equal names; `a=2&a=1` stays distinct from `a=1&a=2` only if the origin cares, which we cannot
    /// know, so we order them fully.
    private static func pairOrder(_ a: Substring, _ b: Substring) -> Bool {
        let an = a.firstIndex(of: "=").map { a[..<$0] } ?? a
        let bn = b.firstIndex(of: "=").map { b[..<$0] } ?? b
        if an != bn { return an < bn }
        return a < b
    }
}
