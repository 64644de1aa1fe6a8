/// HTTP-date (RFC 9110 §5.6.7): IMF-fixdate is generated; IMF-fixdate, RFC 850 and asctime forms are
/// accepted. Written by hand because Foundation's formatters are slow and locale-sensitive.
public enum HTTPDate {
    private static let dayNames = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    private static let monthNames = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    /// Formats seconds since the epoch as IMF-fixdate, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
    public static func format(secondsSinceEpoch t: Int64) -> String {
        let days = t >= 0 ? t / 86400 : (t - 86399) / 86400
        let secs = t - days * 86400
        let (y, m, d) = civil(fromDays: days)
        let weekday = Int(((days % 7) + 11) % 7)  // 1970-01-01 was a Thursday
        func two(_ v: Int64) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(dayNames[weekday]), \(two(d)) \(monthNames[Int(m - 1)]) \(y) \(two(secs / 3600)):\(two(secs / 60 % 60)):\(two(secs % 60)) GMT"
    }

    /// Calendar fields of a UTC instant: (year, month 1-12, day, hour, minute, second).
    public static func utcComponents(secondsSinceEpoch t: Int64) -> (year: Int64, month: Int64, day: Int64, hour: Int64, minute: Int64, second: Int64) {
        let days = t >= 0 ? t / 86400 : (t - 86399) / 86400
        let secs = t - days * 86400
        let (y, m, d) = civil(fromDays: days)
        return (y, m, d, secs / 3600, secs / 60 % 60, secs % 60)
    }

    /// Parses any of the three HTTP-date forms; nil when the value is not a date (RFC 9111 §5.3: an
    /// invalid `Expires` means "already expired", which callers decide).
    public static func parse(_ value: String) -> Int64? {
        var value = value
        return value.withUTF8 { parse(bytes: $0) }
    }

    /// The same over the value's bytes, without allocating: tokens are separated by spaces, commas
    /// and dashes.
    ///   IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT` -> Sun | 06 | Nov | 1994 | 08:49:37 | GMT
    ///   RFC 850:     `Sunday, 06-Nov-94 08:49:37 GMT` -> Sunday | 06 | Nov | 94 | 08:49:37 | GMT
    ///   asctime:     `Sun Nov  6 08:49:37 1994` -> Sun | Nov | 6 | 08:49:37 | 1994
    public static func parse(bytes b: UnsafeBufferPointer<UInt8>) -> Int64? {
        var tokens = Tokens(b)
        guard tokens.next() != nil, let t1 = tokens.next(), let t2 = tokens.next(), let t3 = tokens.next(),
              let t4 = tokens.next() else { return nil }
        if let t5 = tokens.next() {
            guard tokens.next() == nil, slice(b, t5).elementsEqual("GMT".utf8),
                  let day = ASCII.decimal(slice(b, t1)), let month = monthIndex(slice(b, t2)),
                  var year = ASCII.decimal(slice(b, t3)) else { return nil }
            if t3.count == 2 { year += year < 70 ? 2000 : 1900 }
            return assemble(year: year, month: month, day: day, time: slice(b, t4))
        }
        guard let month = monthIndex(slice(b, t1)), let day = ASCII.decimal(slice(b, t2)),
              let year = ASCII.decimal(slice(b, t4)) else { return nil }
        return assemble(year: year, month: month, day: day, time: slice(b, t3))
    }

    private struct Tokens {
        let bytes: UnsafeBufferPointer<UInt8>
        var index = 0
        init(_ bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

        mutating func next() -> Range<Int>? {
            while index < bytes.count, Self.isSeparator(bytes[index]) { index += 1 }
            guard index < bytes.count else { return nil }
            let start = index
            while index < bytes.count, !Self.isSeparator(bytes[index]) { index += 1 }
            return start..<index
        }

        static func isSeparator(_ byte: UInt8) -> Bool { byte == .space || byte == .comma || byte == .dash }
    }

    private static func slice(_ b: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> UnsafeBufferPointer<UInt8> {
        UnsafeBufferPointer(rebasing: b[range])
    }

    private static func monthIndex(_ name: UnsafeBufferPointer<UInt8>) -> Int64? {
        guard name.count == 3 else { return nil }
        for (i, month) in monthNames.enumerated() {
            let m = month.utf8
            if m.elementsEqual(name) { return Int64(i + 1) }
        }
        return nil
    }

    /// `hh:mm:ss`.
    private static func assemble(year: Int64, month: Int64, day: Int64, time: UnsafeBufferPointer<UInt8>) -> Int64? {
        guard let c1 = time.firstIndex(of: .colon),
              let c2 = time[(c1 + 1)...].firstIndex(of: .colon),
              let h = ASCII.decimal(UnsafeBufferPointer(rebasing: time[..<c1])),
              let mi = ASCII.decimal(UnsafeBufferPointer(rebasing: time[(c1 + 1)..<c2])),
              let s = ASCII.decimal(UnsafeBufferPointer(rebasing: time[(c2 + 1)...])),
              (1...31).contains(day), (0...23).contains(h), (0...59).contains(mi), (0...60).contains(s)
        else { return nil }
        return days(fromCivil: year, month, day) * 86400 + h * 3600 + mi * 60 + s
    }

    // Howard Hinnant's days_from_civil / civil_from_days.
    private static func days(fromCivil y0: Int64, _ m: Int64, _ d: Int64) -> Int64 {
        let y = m <= 2 ? y0 - 1 : y0
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146097 + doe - 719468
    }

    private static func civil(fromDays z0: Int64) -> (Int64, Int64, Int64) {
        let z = z0 + 719468
        let era = (z >= 0 ? z : z - 146096) / 146097
        let doe = z - era * 146097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365
        let y = yoe + era * 400
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (m <= 2 ? y + 1 : y, m, d)
    }
}
