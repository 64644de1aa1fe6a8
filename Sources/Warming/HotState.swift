import Foundation

/// The hot set as `warming.state_file` keeps it across restarts: for each hot key, the recipe to
/// ask for it again (route, target, the request fields the key and its `Vary` depend on; never
/// credentials) and its request rate, hottest first. One JSON object per line after a header line,
/// so a file cut short by a crash is still recognised as damaged rather than read in part.
/// Pure: bytes in, values out.
public struct HotState: Sendable, Equatable {
    public struct Entry: Sendable, Equatable, Codable {
        public var route: String
        /// Path and query, as the client sent them.
        public var target: String
        /// Header fields (name, value) sent with a refetch.
        public var fields: [[String]]
        /// Requests per second when the file was written.
        public var rate: Double

        public init(route: String, target: String, fields: [[String]], rate: Double) {
            self.route = route
            self.target = target
            self.fields = fields
            self.rate = rate
        }

        /// A rate that is a number, a target that is a path, fields that are name-value pairs.
        var isWellFormed: Bool { rate.isFinite && target.hasPrefix("/") && fields.allSatisfy { $0.count == 2 } }
    }

    public struct Damaged: Error, CustomStringConvertible {
        public let description: String
    }

    static let header = "sidecache-hot-keys 1"

    public var entries: [Entry]

    public init(entries: [Entry]) {
        self.entries = entries
    }

    /// Never written, whatever a route's key varies on.
    public static let privateFields: Set<String> = ["authorization", "cookie", "proxy-authorization"]

    public func encoded() -> Data {
        var text = Self.header + "\n"
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        for var entry in entries {
            entry.fields.removeAll { $0.count != 2 || Self.privateFields.contains($0[0].lowercased()) }
            if let line = try? encoder.encode(entry) { text += String(decoding: line, as: UTF8.self) + "\n" }
        }
        text += "end \(entries.count)\n"
        return Data(text.utf8)
    }

    /// The entries of a whole file; anything else (another format, a line that is not an entry, a
    /// file without its end line or with another count) is damaged.
    public static func decode(_ data: Data) throws(Damaged) -> HotState {
        let lines = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: true)
        guard lines.first == Substring(header) else { throw Damaged(description: "not a sidecache hot-keys file (no \"\(header)\" first line)") }
        guard let last = lines.last, last.hasPrefix("end "), let count = Int(last.dropFirst(4)) else {
            throw Damaged(description: "cut short: no end line")
        }
        let body = lines.dropFirst().dropLast()
        guard body.count == count else { throw Damaged(description: "cut short: \(body.count) entries where the end line says \(count)") }
        let decoder = JSONDecoder()
        var entries: [Entry] = []
        for (i, line) in body.enumerated() {
            guard let entry = try? decoder.decode(Entry.self, from: Data(line.utf8)), entry.isWellFormed else {
                throw Damaged(description: "line \(i + 2) is not a hot key entry")
            }
            entries.append(entry)
        }
        return HotState(entries: entries)
    }
}

/// The hot set as the instances sharing a Redis keep it together (`<key_prefix>hot`, a sorted
/// set): one member per key, its recipe as JSON (route, target, the fields sorted, never a rate or
/// a credential), so every instance writes the same member for the same key; and a score from
/// which any instance reads the key's rate at any later time:
///
///     score = ln(rate) + t / tau        rate(t') = exp(score - t' / tau)
///
/// with `t` the wall-clock seconds of the write. Scores written at different times then stay
/// ordered by each key's rate now, so `ZADD GT` keeps the highest rate any instance saw, and the
/// set can be trimmed by score and rank without rewriting it. Pure: values in, values out.
public enum SharedHotness {
    /// The shared rates' time constant, seconds: a key nobody asks for any more reads a tenth of
    /// its rate after 23 minutes. Longer than the hot set's own (20 s), so that a restart, or an
    /// instance started some minutes later, still finds yesterday's hour of traffic hot.
    public static let tau: Double = 600
    /// Members whose rate has decayed below this (requests per second) are dropped at each write.
    public static let floorRate: Double = 0.001

    private struct Recipe: Codable {
        var route: String
        var target: String
        var fields: [[String]]
    }

    public static func score(rate: Double, at seconds: Double) -> Double {
        log(max(rate, floorRate)) + seconds / tau
    }

    public static func rate(score: Double, at seconds: Double) -> Double {
        exp(score - seconds / tau)
    }

    /// The score below which a member is dropped at `seconds`.
    public static func floorScore(at seconds: Double) -> Double {
        score(rate: floorRate, at: seconds)
    }

    /// The member of an entry: its recipe as sorted-key JSON, the field names lowercased (they are
    /// case-insensitive) and sorted with their values, without the private ones.
    public static func member(_ entry: HotState.Entry) -> String {
        var fields = entry.fields.filter { $0.count == 2 }.map { [$0[0].lowercased(), $0[1]] }.filter { !HotState.privateFields.contains($0[0]) }
        fields.sort { ($0[0], $0[1]) < ($1[0], $1[1]) }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = (try? encoder.encode(Recipe(route: entry.route, target: entry.target, fields: fields))) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }

    /// The entry a member and its score stand for at `seconds`, or nil for a member that is not a
    /// recipe (written by something else) or a score that is not a number.
    public static func entry(member: String, score: Double, at seconds: Double) -> HotState.Entry? {
        guard score.isFinite, let recipe = try? JSONDecoder().decode(Recipe.self, from: Data(member.utf8)) else { return nil }
        let entry = HotState.Entry(route: recipe.route, target: recipe.target, fields: recipe.fields, rate: rate(score: score, at: seconds))
        return entry.isWellFormed ? entry : nil
    }
}
