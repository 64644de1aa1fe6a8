/// A `Range: bytes=` request answered from a stored complete representation (RFC 9110 §14).
///
/// One satisfiable range is answered 206 with that slice. Several satisfiable ranges are answered
/// with the whole representation (200): a server may ignore `Range` (§14.2), and one 200 costs a
/// client less than a `multipart/byteranges` body it must parse. A range set of which nothing is
/// satisfiable is answered 416. A `Range` that does not parse, or of another unit, is ignored
/// (§14.2), as is one whose `If-Range` names another version of the representation (§13.1.5).
public enum RangeRequest {
    public enum Answer: Equatable, Sendable {
        /// 200 with the whole representation.
        case whole
        /// 206 with these bytes of it (offsets, both ends included).
        case partial(ClosedRange<Int>)
        /// 416 Range Not Satisfiable.
        case unsatisfiable
    }

    /// The answer to `range` (the `Range` field) for a representation of `length` bytes with the
    /// validators `etag` and `lastModified`, given the request's `If-Range`.
    public static func answer(range: String, ifRange: String?, length: Int, etag: String?, lastModified: String?) -> Answer {
        if let ifRange, !ifRangeMatches(ifRange, etag: etag, lastModified: lastModified) { return .whole }
        guard let specs = parse(range) else { return .whole }
        let satisfiable = specs.compactMap { $0.resolved(length: length) }
        switch satisfiable.count {
        case 0: return .unsatisfiable
        case 1: return .partial(satisfiable[0])
        default: return .whole
        }
    }

    /// `Content-Range` of a 206 (§14.4).
    public static func contentRange(_ bytes: ClosedRange<Int>, length: Int) -> String {
        "bytes \(bytes.lowerBound)-\(bytes.upperBound)/\(length)"
    }

    /// `Content-Range` of a 416: the representation's length (§15.5.17).
    public static func unsatisfiedRange(length: Int) -> String { "bytes */\(length)" }

    /// One range-spec (§14.1.2).
    enum Spec: Equatable {
        /// `first-last` (last nil for `first-`).
        case from(Int, through: Int?)
        /// `-n`: the last n bytes.
        case suffix(Int)

        /// The bytes it selects of a representation of `length` bytes, or nil when it selects none.
        func resolved(length: Int) -> ClosedRange<Int>? {
            switch self {
            case .from(let first, let last):
                guard first < length else { return nil }
                return first...min(last ?? (length - 1), length - 1)
            case .suffix(let count):
                guard count > 0, length > 0 else { return nil }
                return max(0, length - count)...(length - 1)
            }
        }
    }

    /// `bytes=` then a comma-separated list of range-specs with optional whitespace; nil for any
    /// other unit or any spec that does not parse (a last-pos before its first-pos included).
    static func parse(_ field: String) -> [Spec]? {
        guard let equals = field.firstIndex(of: "=") else { return nil }
        let unit = field[..<equals].trimmingSpaces()
        guard unit.lowercased() == "bytes" else { return nil }
        var specs: [Spec] = []
        for element in field[field.index(after: equals)...].split(separator: ",", omittingEmptySubsequences: false) {
            let spec = element.trimmingSpaces()
            if spec.isEmpty { continue }  // empty list elements are allowed (RFC 9110 §5.6.1)
            guard let dash = spec.firstIndex(of: "-") else { return nil }
            let firstText = spec[..<dash]
            let lastText = spec[spec.index(after: dash)...]
            if firstText.isEmpty {
                guard let count = digits(lastText) else { return nil }
                specs.append(.suffix(count))
            } else {
                guard let first = digits(firstText) else { return nil }
                if lastText.isEmpty {
                    specs.append(.from(first, through: nil))
                } else {
                    guard let last = digits(lastText), last >= first else { return nil }
                    specs.append(.from(first, through: last))
                }
            }
        }
        return specs.isEmpty ? nil : specs
    }

    /// 1*DIGIT that fits an Int; anything else (signs, spaces, overflow) is nil.
    private static func digits(_ text: Substring) -> Int? {
        guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { return nil }
        return Int(text)
    }

    /// §13.1.5: an entity-tag matches only by strong comparison (a weak tag never does); a date
    /// only when it is exactly the representation's `Last-Modified`.
    static func ifRangeMatches(_ ifRange: String, etag: String?, lastModified: String?) -> Bool {
        let value = ifRange.trimmingSpaces()
        if value.hasPrefix("\"") || value.hasPrefix("W/") {
            guard let etag, !value.hasPrefix("W/"), !etag.hasPrefix("W/") else { return false }
            return value == etag
        }
        guard let lastModified, let given = HTTPDate.parse(value), let stored = HTTPDate.parse(lastModified) else { return false }
        return given == stored
    }
}
