import Foundation

/// One request of a log, as far as a cache simulation needs it.
public struct LoggedRequest: Sendable, Equatable {
    /// The request target (path and query) or, for an id trace, the object's id.
    public var target: String
    /// Bytes of the response body.
    public var bytes: Int

    public init(target: String, bytes: Int) {
        self.target = target
        self.bytes = bytes
    }
}

/// Reads the lines of an access log (or a research trace) into requests a cache could have served:
/// GETs answered 200 with a byte count. Other lines are counted as skipped.
public enum AccessLogFormat: String, Sendable, CaseIterable {
    /// `ip - user [time] "GET /path HTTP/1.1" 200 1234 "referer" "agent"` (Apache/nginx combined).
    case combined
    /// The same without referer and agent.
    case common
    /// sidecache's own JSON access log (`"method"`, `"path"`, `"status"`, `"bytes"`).
    case jsonl
    /// `time id size` per line (the AdaptSize trace).
    case trace
    /// Big-endian 32-bit object ids, no sizes (cache2k's traces): every object costs `--object-size`.
    case ids

    /// The request of one text line, or nil when it is not a GET answered 200 with a size.
    public func request(fromLine line: Substring) -> LoggedRequest? {
        switch self {
        case .combined, .common: Self.commonLine(line)
        case .jsonl: Self.jsonLine(line)
        case .trace: Self.traceLine(line)
        case .ids: nil
        }
    }

    /// `... "GET /path HTTP/1.1" 200 1234 ...`: the quoted request line, then status and size.
    static func commonLine(_ line: Substring) -> LoggedRequest? {
        guard let open = line.firstIndex(of: "\"") else { return nil }
        let afterOpen = line.index(after: open)
        guard let close = line[afterOpen...].firstIndex(of: "\"") else { return nil }
        let requestLine = line[afterOpen..<close].split(separator: " ", omittingEmptySubsequences: true)
        guard requestLine.count >= 2, requestLine[0] == "GET" else { return nil }
        let rest = line[line.index(after: close)...].split(separator: " ", maxSplits: 2, omittingEmptySubsequences: true)
        guard rest.count >= 2, rest[0] == "200", let bytes = Int(rest[1]) else { return nil }
        return LoggedRequest(target: String(requestLine[1]), bytes: bytes)
    }

    static func jsonLine(_ line: Substring) -> LoggedRequest? {
        guard line.contains("\"path\""),
              let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
              object["method"] as? String == "GET", object["status"] as? Int == 200,
              let path = object["path"] as? String, let bytes = object["bytes"] as? Int else { return nil }
        return LoggedRequest(target: path, bytes: bytes)
    }

    static func traceLine(_ line: Substring) -> LoggedRequest? {
        let fields = line.split(separator: " ", omittingEmptySubsequences: true)
        guard fields.count >= 3, let bytes = Int(fields[2]) else { return nil }
        return LoggedRequest(target: String(fields[1]), bytes: bytes)
    }

    /// Every request of a file in this format; `objectSize` is the size of each object of an id trace.
    public func requests(in data: Data, objectSize: Int) -> (requests: [LoggedRequest], skipped: Int) {
        var requests: [LoggedRequest] = []
        var skipped = 0
        if self == .ids {
            requests.reserveCapacity(data.count / 4)
            data.withUnsafeBytes { raw in
                var i = 0
                while i + 4 <= raw.count {
                    let id = UInt32(raw[i]) << 24 | UInt32(raw[i + 1]) << 16 | UInt32(raw[i + 2]) << 8 | UInt32(raw[i + 3])
                    requests.append(LoggedRequest(target: String(id), bytes: objectSize))
                    i += 4
                }
                skipped = raw.count - i > 0 ? 1 : 0
            }
            return (requests, skipped)
        }
        let text = String(decoding: data, as: UTF8.self)
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            if let request = request(fromLine: line) { requests.append(request) } else { skipped += 1 }
        }
        return (requests, skipped)
    }
}
