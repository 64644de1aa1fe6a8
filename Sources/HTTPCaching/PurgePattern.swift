#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A purge by pattern on the URL path: a shell glob (`*` any run of characters, `/` included; `?`
/// one character; `[a-z]` a class) or a regular expression (Swift `Regex` syntax, matched anywhere
/// in the path unless anchored with `^` and `$`).
public struct PurgePattern: Sendable, Equatable {
    public enum Kind: String, Sendable {
        case glob
        case regex
    }

    public let kind: Kind
    public let source: String

    public struct Invalid: Error, CustomStringConvertible {
        public let description: String
    }

    public init(glob: String) throws(Invalid) {
        guard !glob.isEmpty else { throw Invalid(description: "the pattern is empty") }
        guard !glob.utf8.contains(0) else { throw Invalid(description: "the pattern contains a NUL byte") }
        kind = .glob
        source = glob
    }

    public init(regex: String) throws(Invalid) {
        guard !regex.isEmpty else { throw Invalid(description: "the regex is empty") }
        do {
            _ = try Regex(regex)
        } catch {
            throw Invalid(description: "the regex does not compile: \(error)")
        }
        kind = .regex
        source = regex
    }

    /// A predicate for one purge. A regex is compiled here, once per purge, on the thread that runs it.
    public func matcher() -> (String) -> Bool {
        switch kind {
        case .glob:
            let pattern = source
            return { path in fnmatch(pattern, path, 0) == 0 }
        case .regex:
            guard let regex = try? Regex(source) else { return { _ in false } }
            return { path in (try? regex.firstMatch(in: path)) != nil }
        }
    }
}
