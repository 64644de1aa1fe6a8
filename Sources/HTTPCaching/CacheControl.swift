/// The directives of a `Cache-Control` field (or of a targeted field such as `CDN-Cache-Control`),
/// as far as a shared cache acts on them.
///
/// RFC 9111 §5.2: directives are case-insensitive tokens with an optional token or quoted-string
/// argument, separated by commas, possibly spread over several field lines. An invalid argument makes
/// that directive count as absent, except that a malformed `max-age`/`s-maxage` is treated as stale
/// (§4.2.1: "a cache SHOULD consider the response stale"), which we model as a lifetime of zero.
public struct CacheControl: Sendable, Equatable {
    public var maxAge: Int64?
    public var sMaxAge: Int64?
    public var noStore = false
    /// `no-cache` without field names: store, but revalidate before every use (§5.2.2.4).
    public var noCache = false
    /// `private`, qualified or not: a shared cache does not store the response (§5.2.2.7).
    public var isPrivate = false
    public var isPublic = false
    public var mustRevalidate = false
    public var proxyRevalidate = false
    public var immutable = false
    /// RFC 9111 §5.2.2.6 / §5.2.1.6: intermediaries must not transform the content (no gzip).
    public var noTransform = false
    /// RFC 5861 extensions.
    public var staleWhileRevalidate: Int64?
    public var staleIfError: Int64?
    /// True when at least one directive was recognised; a targeted field with nothing valid is ignored
    /// (RFC 9213 §2.1).
    public var hasDirectives = false

    public init() {}

    /// Parses every field line of the given values.
    public init<S: Sequence>(fieldValues: S) where S.Element == String {
        for value in fieldValues { parse(value) }
    }

    public init(_ value: String) { parse(value) }

    /// True when the directives give the response an explicit freshness lifetime.
    public var hasExplicitLifetime: Bool { sMaxAge != nil || maxAge != nil }

    private mutating func parse(_ value: String) {
        var rest = Substring(value)
        while !rest.isEmpty {
            let (directive, tail) = Self.nextDirective(rest)
            rest = tail
            guard let directive else { continue }
            apply(name: directive.name, argument: directive.argument)
        }
    }

    private mutating func apply(name: Substring, argument: Substring?) {
        switch name.lowercased() {
        case "max-age": maxAge = Self.deltaSeconds(argument); hasDirectives = true
        case "s-maxage": sMaxAge = Self.deltaSeconds(argument); hasDirectives = true
        case "no-store": noStore = true; hasDirectives = true
        // Qualified no-cache (`no-cache="Set-Cookie"`) lets a cache reuse the response without the named
        // fields; treating it like the unqualified form is the conservative reading (§5.2.2.4).
        case "no-cache": noCache = true; hasDirectives = true
        case "private": isPrivate = true; hasDirectives = true
        case "public": isPublic = true; hasDirectives = true
        case "must-revalidate": mustRevalidate = true; hasDirectives = true
        case "proxy-revalidate": proxyRevalidate = true; hasDirectives = true
        case "no-transform": noTransform = true; hasDirectives = true
        case "immutable": immutable = true; hasDirectives = true
        case "stale-while-revalidate":
            if let s = Self.validDeltaSeconds(argument) { staleWhileRevalidate = s; hasDirectives = true }
        case "stale-if-error":
            if let s = Self.validDeltaSeconds(argument) { staleIfError = s; hasDirectives = true }
        default: break
        }
    }

    /// §1.2.2: delta-seconds; a value that does not parse makes the response stale (lifetime 0).
    /// Values above 2^31 are capped there (§1.2.2).
    private static func deltaSeconds(_ argument: Substring?) -> Int64 {
        validDeltaSeconds(argument) ?? 0
    }

    private static func validDeltaSeconds(_ argument: Substring?) -> Int64? {
        guard let argument, !argument.isEmpty else { return nil }
        var total: Int64 = 0
        for byte in argument.utf8 {
            guard byte >= 0x30, byte <= 0x39 else { return nil }
            total = min(total * 10 + Int64(byte - 0x30), 2_147_483_648)
        }
        return total
    }

    private static func nextDirective(_ input: Substring) -> ((name: Substring, argument: Substring?)?, Substring) {
        var s = input.drop(while: { $0 == " " || $0 == "\t" || $0 == "," })
        guard !s.isEmpty else { return (nil, s) }
        let nameEnd = s.firstIndex(where: { $0 == "=" || $0 == "," || $0 == " " || $0 == "\t" }) ?? s.endIndex
        let name = s[s.startIndex..<nameEnd]
        s = s[nameEnd...].drop(while: { $0 == " " || $0 == "\t" })
        var argument: Substring? = nil
        if s.first == "=" {
            s = s.dropFirst().drop(while: { $0 == " " || $0 == "\t" })
            if s.first == "\"" {
                let body = s.dropFirst()
                if let close = body.firstIndex(of: "\"") {
                    argument = body[body.startIndex..<close]
                    s = body[body.index(after: close)...]
                } else {
                    argument = body
                    s = body[body.endIndex...]
                }
            } else {
                let end = s.firstIndex(where: { $0 == "," || $0 == " " || $0 == "\t" }) ?? s.endIndex
                argument = s[s.startIndex..<end]
                s = s[end...]
            }
        }
        // Skip anything up to the next comma (garbage after a directive).
        if let comma = s.firstIndex(of: ",") { s = s[comma...] } else { s = s[s.endIndex...] }
        return (name.isEmpty ? nil : (name, argument), s)
    }
}
