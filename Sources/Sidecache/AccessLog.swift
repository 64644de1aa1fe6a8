import HTTPCaching
import NIOHTTP1

/// What one access log line records about a finished request.
struct AccessRecord {
    var requestID: String
    var method: HTTPMethod
    var path: Substring
    var route: String?
    var status: UInt
    var outcome: CacheOutcome
    var upstreamMicroseconds: Int64?
    var totalMicroseconds: Int64
    var bytes: Int
    var client: String
}

/// One JSON line per request, written off the event loop by the shared `LogSink`.
final class AccessLog: Sendable {
    private let sink: LogSink

    init(sink: LogSink) { self.sink = sink }

    func write(_ r: AccessRecord, time: String) {
        var line = JSONLine()
        line.add("time", time)
        line.add("type", "access")
        line.add("request_id", r.requestID)
        line.add("client", r.client)
        line.add("method", r.method.rawValue)
        line.add("path", String(r.path))
        line.add("route", r.route ?? "-")
        line.add("status", Int(r.status))
        line.add("cache", r.outcome.rawValue)
        if let up = r.upstreamMicroseconds { line.add("upstream_ms", microseconds: up) }
        line.add("total_ms", microseconds: r.totalMicroseconds)
        line.add("bytes", r.bytes)
        sink.write(line.finish())
    }
}

/// RFC 3339 timestamps for log lines, formatting the date and time once per second.
struct TimestampCache {
    private var second: Int64 = .min
    private var prefix = ""

    mutating func format(_ t: CacheInstant) -> String {
        let s = t.seconds
        if s != second {
            second = s
            let full = ISOTime.format(CacheInstant(seconds: s))  // "...T12:00:00.000Z"
            prefix = String(full.dropLast(4))
        }
        let ms = t.milliseconds - s * 1000
        return prefix + (ms < 10 ? "00" : (ms < 100 ? "0" : "")) + String(ms) + "Z"
    }
}
