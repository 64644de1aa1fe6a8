import RawStructuredFieldValues

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
    /// `private` without field names: a shared cache does not store the response (§5.2.2.7).
    public var isPrivate = false
    /// The lowercased field names of a qualified `no-cache="..."` or `private="..."`: the response
    /// may be stored and reused without revalidation, but never with these fields (§5.2.2.4,
    /// §5.2.2.7).
    public var withheldFields: [String] = []
    public var isPublic = false
    public var mustRevalidate = false
    public var proxyRevalidate = false
    public var immutable = false
    /// RFC 9111 §5.2.2.3: store only if the cache implements the status code's caching rules; such
    /// a cache then ignores `no-store`.
    public var mustUnderstand = false
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
        var value = value
        value.withUTF8 { parse(bytes: $0) }
    }

    /// Walks the field value's bytes once; names and arguments are compared in place, so parsing
    /// allocates nothing.
    private mutating func parse(bytes b: UnsafeBufferPointer<UInt8>) {
        let n = b.count
        var i = 0
        while i < n {
            while i < n, b[i] == .space || b[i] == .tab || b[i] == .comma { i += 1 }
            guard i < n else { return }
            let nameStart = i
            while i < n, b[i] != .equals, b[i] != .comma, b[i] != .space, b[i] != .tab { i += 1 }
            let name = nameStart..<i
            while i < n, b[i] == .space || b[i] == .tab { i += 1 }
            var argument: Range<Int>? = nil
            if i < n, b[i] == .equals {
                i += 1
                while i < n, b[i] == .space || b[i] == .tab { i += 1 }
                if i < n, b[i] == .quote {
                    i += 1
                    let start = i
                    while i < n, b[i] != .quote { i += 1 }
                    argument = start..<i
                    if i < n { i += 1 }
                } else {
                    let start = i
                    while i < n, b[i] != .comma, b[i] != .space, b[i] != .tab { i += 1 }
                    argument = start..<i
                }
            }
            // Skip anything up to the next comma (garbage after a directive).
            while i < n, b[i] != .comma { i += 1 }
            apply(name: UnsafeBufferPointer(rebasing: b[name]), argument: argument.map { UnsafeBufferPointer(rebasing: b[$0]) })
        }
    }

    private mutating func apply(name: UnsafeBufferPointer<UInt8>, argument: UnsafeBufferPointer<UInt8>?) {
        func named(_ literal: StaticString) -> Bool { ASCII.equalsIgnoringCase(name, literal) }
        if named("max-age") { maxAge = Self.deltaSeconds(argument); hasDirectives = true }
        else if named("s-maxage") { sMaxAge = Self.deltaSeconds(argument); hasDirectives = true }
        else if named("no-store") { noStore = true; hasDirectives = true }
        // Qualified (`no-cache="Set-Cookie"`, `private="X-User"`): the response is stored and reused
        // without the named fields (§5.2.2.4, §5.2.2.7).
        else if named("no-cache") {
            let names = Self.fieldNames(argument)
            if names.isEmpty { noCache = true } else { withhold(names) }
            hasDirectives = true
        } else if named("private") {
            let names = Self.fieldNames(argument)
            if names.isEmpty { isPrivate = true } else { withhold(names) }
            hasDirectives = true
        }
        else if named("public") { isPublic = true; hasDirectives = true }
        else if named("must-revalidate") { mustRevalidate = true; hasDirectives = true }
        else if named("proxy-revalidate") { proxyRevalidate = true; hasDirectives = true }
        else if named("no-transform") { noTransform = true; hasDirectives = true }
        else if named("immutable") { immutable = true; hasDirectives = true }
        else if named("must-understand") { mustUnderstand = true; hasDirectives = true }
        else if named("stale-while-revalidate") {
            if let s = Self.validDeltaSeconds(argument) { staleWhileRevalidate = s; hasDirectives = true }
        } else if named("stale-if-error") {
            if let s = Self.validDeltaSeconds(argument) { staleIfError = s; hasDirectives = true }
        }
    }

    /// A targeted field (RFC 9213 §2.1: `CDN-Cache-Control`, or the route's own) as this cache reads
    /// it: an SF Dictionary (RFC 8941). Nil, and `Cache-Control` decides, when the field is absent or
    /// empty, does not parse, or gives a known directive a value of the wrong type (a delta-seconds
    /// that is not a non-negative Integer, a flag that is not Boolean true, a string for a directive
    /// that takes none): consumers SHOULD NOT coerce such values (§2.1). A field that parses but
    /// names no directive this cache knows still replaces `Cache-Control` (§3.1's `none`).
    public static func targeted(fieldValues: [String]) -> CacheControl? {
        let joined = fieldValues.joined(separator: ", ")
        guard !joined.utf8.allSatisfy({ $0 == .space || $0 == .tab }) else { return nil }
        var parser = StructuredFieldValueParser(Array(joined.utf8))
        guard let dictionary = try? parser.parseDictionaryFieldValue() else { return nil }
        var cc = CacheControl()
        cc.hasDirectives = true
        for (name, member) in dictionary {
            guard case .item(let item) = member else {
                if Self.knownDirectives.contains(name) { return nil }
                continue
            }
            guard cc.apply(name, item.rfc9651BareItem) else { return nil }
        }
        return cc
    }

    private static let knownDirectives: Set<String> = [
        "max-age", "s-maxage", "stale-while-revalidate", "stale-if-error", "no-store", "no-cache", "private", "public",
        "must-revalidate", "proxy-revalidate", "no-transform", "immutable", "must-understand",
    ]

    /// One Dictionary member; false when a known directive has a value of the wrong type.
    private mutating func apply(_ name: String, _ value: RFC9651BareItem) -> Bool {
        func seconds() -> Int64? {
            guard case .integer(let n) = value, n >= 0 else { return nil }
            return min(Int64(n), 2_147_483_648)
        }
        var flag: Bool {
            if case .bool(true) = value { return true }
            return false
        }
        switch name {
        case "max-age": guard let s = seconds() else { return false }; maxAge = s
        case "s-maxage": guard let s = seconds() else { return false }; sMaxAge = s
        case "stale-while-revalidate": guard let s = seconds() else { return false }; staleWhileRevalidate = s
        case "stale-if-error": guard let s = seconds() else { return false }; staleIfError = s
        case "no-store": guard flag else { return false }; noStore = true
        case "public": guard flag else { return false }; isPublic = true
        case "must-revalidate": guard flag else { return false }; mustRevalidate = true
        case "proxy-revalidate": guard flag else { return false }; proxyRevalidate = true
        case "no-transform": guard flag else { return false }; noTransform = true
        case "immutable": guard flag else { return false }; immutable = true
        case "must-understand": guard flag else { return false }; mustUnderstand = true
        // These two may name fields (an SF String): the response is then kept without them.
        case "no-cache", "private":
            var names: [String] = []
            if case .string(let list) = value { names = Self.fieldNames(list) } else if !flag { return false }
            if !names.isEmpty { withhold(names) } else if name == "no-cache" { noCache = true } else { isPrivate = true }
        default: break  // §5.2.3: unknown directives are ignored, whatever their value
        }
        return true
    }

    /// The field names of a qualified directive's argument; none for no argument or an empty one,
    /// which is the unqualified directive.
    private static func fieldNames(_ argument: UnsafeBufferPointer<UInt8>?) -> [String] {
        argument.map { fieldNames(String(decoding: $0, as: UTF8.self)) } ?? []
    }

    private mutating func withhold(_ names: [String]) {
        withheldFields += names.filter { !withheldFields.contains($0) }
    }

    static func fieldNames(_ list: String) -> [String] {
        list.split(separator: ",").map { $0.trimmingSpaces().lowercased() }.filter { !$0.isEmpty }
    }

    /// §1.2.2: delta-seconds; a value that does not parse makes the response stale (lifetime 0).
    /// Values above 2^31 are capped there (§1.2.2).
    private static func deltaSeconds(_ argument: UnsafeBufferPointer<UInt8>?) -> Int64 {
        validDeltaSeconds(argument) ?? 0
    }

    private static func validDeltaSeconds(_ argument: UnsafeBufferPointer<UInt8>?) -> Int64? {
        guard let argument, !argument.isEmpty else { return nil }
        var total: Int64 = 0
        for byte in argument {
            guard byte >= 0x30, byte <= 0x39 else { return nil }
            total = min(total * 10 + Int64(byte - 0x30), 2_147_483_648)
        }
        return total
    }
}
