import HTTPCaching
import NIOHTTP1

/// What one access log line records about a finished request.
struct AccessRecord {
    var requestID: RequestID
    var method: HTTPMethod
    var path: Substring
    var route: String?
    var status: UInt
    var outcome: CacheOutcome
    var upstreamMicroseconds: Int64?
    var totalMicroseconds: Int64
    var bytes: Int
    var client: String
    /// Why a background fetch was made (`refresh`, `rewarm`, ...); nil for a client's request.
    var purpose: String? = nil
}

/// One JSON line per request, written off the event loop by the shared `LogSink`. Each connection
/// encodes into its own reused byte buffer: no String growth or Unicode bookkeeping per field.
final class AccessLog: Sendable {
    private let sink: LogSink

    init(sink: LogSink) { self.sink = sink }

    /// `scratch` is the connection's buffer, moved into the line and back, never copied.
    func write(_ r: AccessRecord, time: CacheInstant, timestamps: inout TimestampCache, scratch: inout [UInt8]) {
        Self.encode(r, time: time, timestamps: &timestamps, into: &scratch)
        sink.write(bytes: scratch)
    }

    /// The line's JSON, its fixed parts (names, punctuation, `"type":"access"`) appended as a few
    /// constant runs rather than a byte at a time.
    static func encode(_ r: AccessRecord, time: CacheInstant, timestamps: inout TimestampCache, into scratch: inout [UInt8]) {
        var line = JSONBytes(reusing: &scratch)
        line.raw("\"time\":\"")
        line.timestamp(time, using: &timestamps)
        line.raw("\",\"type\":\"access\",\"request_id\":\"")
        line.requestID(r.requestID)
        line.raw("\"")
        line.raw(",\"client\":")
        line.string(r.client)
        line.raw(",\"method\":")
        line.string(r.method.rawValue)
        line.raw(",\"path\":")
        line.string(r.path)
        line.raw(",\"route\":")
        line.string(r.route ?? "-")
        line.raw(",\"status\":")
        line.decimal(Int64(r.status))
        line.raw(",\"cache\":")
        line.string(r.outcome.rawValue)
        if let up = r.upstreamMicroseconds {
            line.raw(",\"upstream_ms\":")
            line.milliseconds(fromMicroseconds: up)
        }
        line.raw(",\"total_ms\":")
        line.milliseconds(fromMicroseconds: r.totalMicroseconds)
        line.raw(",\"bytes\":")
        line.decimal(Int64(r.bytes))
        if let purpose = r.purpose {
            line.raw(",\"purpose\":")
            line.string(purpose)
        }
        scratch = line.finish()
    }
}

/// A JSON object on one line, encoded straight into bytes: the format of every log line sidecache
/// writes (access lines and swift-log events alike).
struct JSONBytes {
    private var bytes: [UInt8]
    private var first = true

    init(_ storage: [UInt8]) {
        bytes = storage
        bytes.append(UInt8(ascii: "{"))
    }

    /// Takes `storage`'s buffer (emptied, capacity kept) so appending needs no copy: a buffer
    /// still referenced by the caller would be copied on the first append.
    init(reusing storage: inout [UInt8]) {
        bytes = []
        swap(&bytes, &storage)
        bytes.removeAll(keepingCapacity: true)
        bytes.append(UInt8(ascii: "{"))
    }

    private mutating func key(_ k: StaticString) {
        if first { first = false } else { bytes.append(UInt8(ascii: ",")) }
        bytes.append(UInt8(ascii: "\""))
        raw(k)
        bytes.append(UInt8(ascii: "\""))
        bytes.append(UInt8(ascii: ":"))
    }

    /// Bytes appended as they are: JSON the caller wrote (names, punctuation, known values).
    mutating func raw(_ text: StaticString) {
        text.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    /// A field whose name is only known at run time (swift-log metadata keys), escaped like a value.
    mutating func field<S: StringProtocol>(named name: String, _ value: S) {
        if first { first = false } else { bytes.append(UInt8(ascii: ",")) }
        appendString(name)
        bytes.append(UInt8(ascii: ":"))
        appendString(value)
    }

    mutating func field<S: StringProtocol>(_ k: StaticString, _ value: S) {
        key(k)
        appendString(value)
    }

    /// A quoted, escaped string value.
    mutating func string<S: StringProtocol>(_ value: S) {
        appendString(value)
    }

    /// Runs of bytes that need no escaping are appended at once (a whole field, nearly always).
    private mutating func appendString<S: StringProtocol>(_ value: S) {
        bytes.append(UInt8(ascii: "\""))
        let appended: Void? = value.utf8.withContiguousStorageIfAvailable { raw in
            var start = 0
            for i in 0..<raw.count where Self.needsEscape(raw[i]) {
                bytes.append(contentsOf: UnsafeBufferPointer(rebasing: raw[start..<i]))
                appendEscaped(raw[i])
                start = i + 1
            }
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: raw[start...]))
        }
        if appended == nil {
            for b in value.utf8 {
                if Self.needsEscape(b) { appendEscaped(b) } else { bytes.append(b) }
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }

    private static func needsEscape(_ b: UInt8) -> Bool {
        b < 0x20 || b == UInt8(ascii: "\"") || b == UInt8(ascii: "\\")
    }

    private mutating func appendEscaped(_ b: UInt8) {
        if b >= 0x20 {
            bytes.append(UInt8(ascii: "\\"))
            bytes.append(b)
        } else {
            bytes.append(contentsOf: Array("\\u00".utf8))
            bytes.append(Self.hex[Int(b >> 4)])
            bytes.append(Self.hex[Int(b & 0xF)])
        }
    }

    /// A request id's characters, unquoted (it needs no escaping).
    mutating func requestID(_ id: RequestID) {
        id.append(to: &bytes)
    }

    /// The timestamp's characters, unquoted.
    mutating func timestamp(_ time: CacheInstant, using timestamps: inout TimestampCache) {
        timestamps.append(time, to: &bytes)
    }

    mutating func decimal(_ value: Int64) {
        appendDecimal(value)
    }

    /// Milliseconds with three decimals from a count of microseconds.
    mutating func milliseconds(fromMicroseconds value: Int64) {
        let v = max(0, value)
        appendDecimal(v / 1000)
        bytes.append(UInt8(ascii: "."))
        let frac = v % 1000
        bytes.append(UInt8(ascii: "0") + UInt8(frac / 100))
        bytes.append(UInt8(ascii: "0") + UInt8(frac / 10 % 10))
        bytes.append(UInt8(ascii: "0") + UInt8(frac % 10))
    }

    private mutating func appendDecimal(_ value: Int64) {
        if value < 0 {
            bytes.append(UInt8(ascii: "-"))
            appendDecimal(value == .min ? .max : -value)
            return
        }
        if value >= 10 { appendDecimal(value / 10) }
        bytes.append(UInt8(ascii: "0") + UInt8(value % 10))
    }

    mutating func finish() -> [UInt8] {
        bytes.append(UInt8(ascii: "}"))
        return bytes
    }

    private static let hex: [UInt8] = Array("0123456789abcdef".utf8)
}

/// RFC 3339 timestamps for log lines, formatting the date and time once per second.
struct TimestampCache {
    private var second: Int64 = .min
    /// "2026-11-22T12:00:00." for the current second.
    private var prefix: [UInt8] = []

    mutating func append(_ t: CacheInstant, to bytes: inout [UInt8]) {
        let s = t.seconds
        if s != second {
            second = s
            let full = ISOTime.format(CacheInstant(seconds: s))  // "...T12:00:00.000Z"
            prefix = Array(full.utf8.dropLast(4))
        }
        let ms = Int(min(999, max(0, t.milliseconds - s * 1000)))
        bytes.append(contentsOf: prefix)
        bytes.append(UInt8(ascii: "0") + UInt8(ms / 100))
        bytes.append(UInt8(ascii: "0") + UInt8(ms / 10 % 10))
        bytes.append(UInt8(ascii: "0") + UInt8(ms % 10))
        bytes.append(UInt8(ascii: "Z"))
    }
}
