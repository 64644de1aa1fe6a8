/// A route's path pattern: literal segments, `{name}` for exactly one non-empty segment, and an
/// optional trailing `*` that matches any rest of the path (possibly empty), e.g. `/api/items/{id}`,
/// `/api/*`, `/static/app-*`.
public struct PathPattern: Sendable, Equatable, CustomStringConvertible {
    public enum Segment: Sendable, Equatable {
        case literal(String)
        case parameter(String)
        /// Last segment only: the rest of the path must start with this prefix.
        case rest(prefix: String)
    }

    public let source: String
    public let segments: [Segment]

    public var description: String { source }

    public var parameterNames: [String] {
        segments.compactMap { if case .parameter(let n) = $0 { n } else { nil } }
    }

    public enum ParseError: Error, Equatable, CustomStringConvertible {
        case mustStartWithSlash
        case wildcardNotLast
        case badParameter(String)
        case duplicateParameter(String)

        public var description: String {
            switch self {
            case .mustStartWithSlash: "a path pattern must start with '/'"
            case .wildcardNotLast: "'*' may only end the pattern"
            case .badParameter(let s): "'\(s)': a parameter must be a whole segment like {id} (letters, digits, '_')"
            case .duplicateParameter(let n): "parameter {\(n)} appears twice"
            }
        }
    }

    public init(_ source: String) throws(ParseError) {
        guard source.hasPrefix("/") else { throw .mustStartWithSlash }
        self.source = source
        let parts = source.dropFirst().split(separator: "/", omittingEmptySubsequences: false)
        var segments: [Segment] = []
        var names = Set<String>()
        for (i, part) in parts.enumerated() {
            if let star = part.firstIndex(of: "*") {
                guard i == parts.count - 1, star == part.index(before: part.endIndex) else { throw .wildcardNotLast }
                let prefix = part[..<star]
                if prefix.contains("{") || prefix.contains("}") { throw .badParameter(String(part)) }
                segments.append(.rest(prefix: String(prefix)))
            } else if part.contains("{") || part.contains("}") {
                guard part.hasPrefix("{"), part.hasSuffix("}"), part.count > 2 else { throw .badParameter(String(part)) }
                let name = String(part.dropFirst().dropLast())
                guard name.allSatisfy({ $0 == "_" || ($0.isASCII && ($0.isLetter || $0.isNumber)) }) else { throw .badParameter(String(part)) }
                guard names.insert(name).inserted else { throw .duplicateParameter(name) }
                segments.append(.parameter(name))
            } else {
                segments.append(.literal(String(part)))
            }
        }
        self.segments = segments
    }

    /// Matches a request path (without query); returns the parameter values, or nil when it does not
    /// match.
    public func match(_ path: Substring) -> [(name: String, value: Substring)]? {
        var captures: [(name: String, value: Substring)] = []
        return matches(path, captures: &captures) ? captures : nil
    }

    /// Matches without collecting parameters (the hot path only needs the route).
    public func matches(_ path: Substring) -> Bool {
        var ignored: [(name: String, value: Substring)]? = nil
        return matchCore(path, captures: &ignored)
    }

    private func matches(_ path: Substring, captures: inout [(name: String, value: Substring)]) -> Bool {
        var c: [(name: String, value: Substring)]? = []
        guard matchCore(path, captures: &c) else { return false }
        captures = c ?? []
        return true
    }

    private func matchCore(_ path: Substring, captures: inout [(name: String, value: Substring)]?) -> Bool {
        // Over the path's bytes: walking a Substring's UTF-8 indices cost more than the match.
        var spans: [(name: String, start: Int, end: Int)]? = captures == nil ? nil : []
        let matched = path.utf8.withContiguousStorageIfAvailable { matchBytes($0, captures: &spans) }
            ?? Array(path.utf8).withUnsafeBufferPointer { matchBytes($0, captures: &spans) }
        guard matched else { return false }
        if let spans {
            let utf8 = path.utf8
            captures = spans.map { span in
                let start = utf8.index(utf8.startIndex, offsetBy: span.start)
                return (span.name, path[start..<utf8.index(start, offsetBy: span.end - span.start)])
            }
        }
        return true
    }

    private func matchBytes(_ p: UnsafeBufferPointer<UInt8>, captures: inout [(name: String, start: Int, end: Int)]?) -> Bool {
        guard p.first == UInt8(ascii: "/") else { return false }
        var i = 1
        for (k, segment) in segments.enumerated() {
            switch segment {
            case .rest(let prefix):
                return Self.bytes(p, from: i, to: min(p.count, i + prefix.utf8.count), equal: prefix)
            case .literal, .parameter:
                var end = i
                while end < p.count, p[end] != UInt8(ascii: "/") { end += 1 }
                if case .literal(let literal) = segment {
                    guard Self.bytes(p, from: i, to: end, equal: literal) else { return false }
                } else if case .parameter(let name) = segment {
                    guard end > i else { return false }
                    captures?.append((name, i, end))
                }
                if k == segments.count - 1 { return end == p.count }
                guard end != p.count else { return false }
                i = end + 1
            }
        }
        return segments.isEmpty && i == p.count
    }

    private static func bytes(_ p: UnsafeBufferPointer<UInt8>, from start: Int, to end: Int, equal text: String) -> Bool {
        guard end - start == text.utf8.count else { return false }
        var k = start
        for byte in text.utf8 {
            guard p[k] == byte else { return false }
            k += 1
        }
        return true
    }

    /// True when every path this pattern's `other` matches is also matched by this one; used to find
    /// routes that can never be reached.
    public func covers(_ other: PathPattern) -> Bool {
        var i = 0
        while i < segments.count {
            let mine = segments[i]
            if case .rest(let prefix) = mine {
                guard i < other.segments.count else { return false }
                switch other.segments[i] {
                case .literal(let l):
                    // The other's remaining path starts with this literal, then "/" or nothing.
                    if l.hasPrefix(prefix) { return true }
                    return false
                case .parameter: return prefix.isEmpty
                case .rest(let otherPrefix): return otherPrefix.hasPrefix(prefix)
                }
            }
            guard i < other.segments.count else { return false }
            switch (mine, other.segments[i]) {
            case (.literal(let a), .literal(let b)) where a == b: break
            case (.parameter, .literal(let b)) where !b.isEmpty: break
            case (.parameter, .parameter): break
            default: return false
            }
            i += 1
        }
        return other.segments.count == segments.count
    }
}
