import HTTPCaching
import Yams

/// Walks a composed YAML tree, reading typed values and collecting every mistake with its YAML path
/// and line. Codable's decoders stop at the first error and lose line numbers, which is not what an
/// operator fixing a file needs.
struct ConfigReader {
    private(set) var errors: [ConfigError] = []

    mutating func fail(_ path: String, _ node: Node?, _ message: String) {
        errors.append(ConfigError(path: path, line: node?.mark?.line, message: message))
    }

    /// The pairs of a mapping, reporting keys that are not in `allowed` and duplicates.
    mutating func mapping(_ node: Node, at path: String, allowed: [String]) -> [String: Node]? {
        guard case .mapping(let m) = node else {
            fail(path, node, "expected a mapping (key: value lines)")
            return nil
        }
        var out: [String: Node] = [:]
        for (keyNode, value) in m {
            guard let key = keyNode.scalar?.string else {
                fail(path, keyNode, "keys must be plain strings")
                continue
            }
            let childPath = path.isEmpty ? key : "\(path).\(key)"
            guard allowed.contains(key) else {
                let hint = Self.closest(to: key, in: allowed).map { " (did you mean '\($0)'?)" } ?? ""
                fail(childPath, keyNode, "unknown key '\(key)'\(hint); allowed here: \(allowed.joined(separator: ", "))")
                continue
            }
            if out[key] != nil {
                fail(childPath, keyNode, "duplicate key '\(key)'")
                continue
            }
            out[key] = value
        }
        return out
    }

    mutating func string(_ node: Node?, at path: String) -> String? {
        guard let node else { return nil }
        guard case .scalar(let s) = node, !isNull(node) else {
            fail(path, node, "expected a string")
            return nil
        }
        return s.string
    }

    mutating func bool(_ node: Node?, at path: String) -> Bool? {
        guard let node else { return nil }
        guard case .scalar(let s) = node, ["true", "false"].contains(s.string.lowercased()) else {
            fail(path, node, "expected true or false")
            return nil
        }
        return s.string.lowercased() == "true"
    }

    mutating func positiveInt(_ node: Node?, at path: String, max: Int = Int.max) -> Int? {
        guard let node else { return nil }
        guard case .scalar(let s) = node, let v = Int(s.string), v > 0, v <= max else {
            fail(path, node, "expected a whole number between 1 and \(max)")
            return nil
        }
        return v
    }

    /// A whole number in `range` (zero allowed when the range starts at 0).
    mutating func int(_ node: Node?, at path: String, in range: ClosedRange<Int>) -> Int? {
        guard let node else { return nil }
        guard case .scalar(let s) = node, let v = Int(s.string), range.contains(v) else {
            fail(path, node, "expected a whole number between \(range.lowerBound) and \(range.upperBound)")
            return nil
        }
        return v
    }

    /// A share written `50%` (or a bare `50`), 1 to 100.
    mutating func percent(_ node: Node?, at path: String) -> Int? {
        guard let node else { return nil }
        guard case .scalar(let s) = node else {
            fail(path, node, "expected a percentage such as 50%")
            return nil
        }
        let text = s.string.hasSuffix("%") ? String(s.string.dropLast()) : s.string
        guard let v = Int(text), (1...100).contains(v) else {
            fail(path, node, "expected a percentage between 1% and 100%")
            return nil
        }
        return v
    }

    mutating func duration(_ node: Node?, at path: String, allowZero: Bool = true) -> CacheDurationValue? {
        guard let node else { return nil }
        guard case .scalar(let s) = node, let d = DurationText.parse(s.string), allowZero || d.milliseconds > 0 else {
            fail(path, node, "expected a duration such as 500ms, 2s, 5m, 1h\(allowZero ? "" : " (greater than zero)")")
            return nil
        }
        return d
    }

    mutating func size(_ node: Node?, at path: String) -> Int? {
        guard let node else { return nil }
        guard case .scalar(let s) = node, let v = SizeText.parse(s.string), v > 0 else {
            fail(path, node, "expected a size such as 512KiB, 256MiB, 1GiB")
            return nil
        }
        return v
    }

    mutating func stringList(_ node: Node?, at path: String) -> [String]? {
        guard let node else { return nil }
        guard case .sequence(let seq) = node else {
            fail(path, node, "expected a list, e.g. [a, b]")
            return nil
        }
        var out: [String] = []
        for (i, item) in seq.enumerated() {
            if let s = string(item, at: "\(path)[\(i)]") { out.append(s) }
        }
        return out
    }

    func isNull(_ node: Node) -> Bool {
        guard case .scalar(let s) = node else { return false }
        return s.style == .plain && ["", "~", "null", "Null", "NULL"].contains(s.string)
    }

    private static func closest(to key: String, in allowed: [String]) -> String? {
        let scored = allowed.map { ($0, editDistance(key, $0)) }.min { $0.1 < $1.1 }
        guard let (best, distance) = scored, distance <= max(2, key.count / 3) else { return nil }
        return best
    }

    private static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        var previous = Array(0...b.count)
        for i in 1...max(1, a.count) where !a.isEmpty {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in 1...max(1, b.count) where !b.isEmpty {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
}

typealias CacheDurationValue = HTTPCaching.CacheDuration
