import HTTPCaching
import NIOHTTP1

/// What one access log line records about a finished request.
struct AccessRecord {
    var requestID: String
    var method: HTTPMethod
    var uri: String
    var route: String?
    var status: UInt
    var outcome: CacheOutcome
    var upstreamMilliseconds: Double?
    var totalMilliseconds: Double
    var bytes: Int
    var client: String
}

/// One JSON line per request, written off the event loop by the shared `LogSink`.
final class AccessLog: Sendable {
    private let sink: LogSink

    init(sink: LogSink) { self.sink = sink }

    func write(_ r: AccessRecord, at time: CacheInstant) {
        var line = JSONLine()
        line.add("time", ISOTime.format(time))
        line.add("type", "access")
        line.add("request_id", r.requestID)
        line.add("client", r.client)
        line.add("method", r.method.rawValue)
        let (path, _) = CacheKeyPolicy.split(uri: r.uri)
        line.add("path", String(path))
        line.add("route", r.route ?? "-")
        line.add("status", Int(r.status))
        line.add("cache", r.outcome.rawValue)
        if let up = r.upstreamMilliseconds { line.add("upstream_ms", milliseconds: up) }
        line.add("total_ms", milliseconds: r.totalMilliseconds)
        line.add("bytes", r.bytes)
        sink.write(line.finish())
    }
}
