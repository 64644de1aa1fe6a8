/// The one parser of URI references sidecache meets: a request target (RFC 9112 §3.2), a purge's
/// `url`, a response's `Location` or `Content-Location`. Origin-form (`/path?query`) or absolute
/// `http(s)://authority/path?query`; absolute-form is reduced to its authority and the rest in
/// origin-form, so `http://h`, `http://h?q` and `http://h/p` give `/`, `/?q` and `/p`.
public struct RequestTarget: Equatable, Sendable {
    /// The authority of an absolute-form reference (`host[:port]`, as written); nil for origin-form.
    public let authority: Substring?
    /// The path and query (and a fragment, if one was written), starting with "/".
    public let originForm: Substring

    /// Nil for anything else: a relative path, another scheme, or (for a `reference`, which may be
    /// relative, RFC 3986 §4.2) a network-path reference `//host/p`. A request target's
    /// absolute-path may begin with "//" (RFC 9112 §3.2.1): there it is a path.
    public init?(_ text: Substring, reference: Bool = false) {
        if text.first == "/" {
            if reference && text.hasPrefix("//") { return nil }
            authority = nil
            originForm = text
            return
        }
        let lower = text.prefix(8).lowercased()
        let schemeLength = lower.hasPrefix("http://") ? 7 : (lower.hasPrefix("https://") ? 8 : 0)
        guard schemeLength > 0 else { return nil }
        let afterScheme = text.dropFirst(schemeLength)
        let end = afterScheme.firstIndex { $0 == "/" || $0 == "?" || $0 == "#" } ?? afterScheme.endIndex
        authority = afterScheme[..<end]
        let rest = afterScheme[end...]
        originForm = rest.first == "/" ? rest : Substring("/" + rest)
    }

    public init?(_ text: String, reference: Bool = false) { self.init(Substring(text), reference: reference) }

    /// The path alone, query and fragment dropped (what purges and invalidations match on).
    public var path: Substring { CacheKeyPolicy.split(uri: String(originForm)).path }
}
