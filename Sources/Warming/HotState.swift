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
            guard let entry = try? decoder.decode(Entry.self, from: Data(line.utf8)), entry.rate.isFinite, entry.target.hasPrefix("/"),
                  entry.fields.allSatisfy({ $0.count == 2 }) else {
                throw Damaged(description: "line \(i + 2) is not a hot key entry")
            }
            entries.append(entry)
        }
        return HotState(entries: entries)
    }
}
