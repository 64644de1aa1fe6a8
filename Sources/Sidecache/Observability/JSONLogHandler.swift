import HTTPCaching
import NIOConcurrencyHelpers
import Logging

/// A swift-log handler that writes one JSON object per line through a `LogSink`.
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    private let label: String
    private let sink: LogSink
    private let levelOverride: LogLevelBox?

    /// `levelBox`, when given, lets a config reload change the level of every logger at once.
    public init(label: String, sink: LogSink, level: Logger.Level = .info, levelBox: LogLevelBox? = nil) {
        self.label = label
        self.sink = sink
        self.logLevel = level
        self.levelOverride = levelBox
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        if let box = levelOverride, event.level < box.level { return }
        var line = JSONBytes([])
        line.field("time", ISOTime.format(CacheInstant.now()))
        line.field("level", event.level.rawValue)
        line.field("logger", label)
        line.field("msg", event.message.description)
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra, uniquingKeysWith: { _, new in new }) }
        for (key, value) in merged.sorted(by: { $0.key < $1.key }) {
            line.field(named: key, "\(value)")
        }
        sink.write(bytes: line.finish())
    }
}

/// The current minimum log level, shared by every logger and changed by reloads.
public final class LogLevelBox: Sendable {
    private let box: NIOLockedValueBox<Logger.Level>
    public init(_ level: Logger.Level) { box = NIOLockedValueBox(level) }
    public var level: Logger.Level {
        get { box.withLockedValue { $0 } }
        set { box.withLockedValue { $0 = newValue } }
    }
}

/// RFC 3339 timestamps with milliseconds, UTC.
enum ISOTime {
    static func format(_ t: CacheInstant) -> String {
        let c = HTTPDate.utcComponents(secondsSinceEpoch: t.seconds)
        let ms = t.milliseconds - t.seconds * 1000
        func pad(_ v: Int64, _ width: Int) -> String {
            let s = String(v)
            return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
        }
        return "\(pad(c.year, 4))-\(pad(c.month, 2))-\(pad(c.day, 2))T\(pad(c.hour, 2)):\(pad(c.minute, 2)):\(pad(c.second, 2)).\(pad(ms, 3))Z"
    }
}
