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

    /// The same over the value's bytes, without allocating. The grammar of RFC 9110 §5.6.7 exactly:
    /// two-digit days and times, a four-digit year in IMF-fixdate, single spaces, the comma after
    /// the day name, no dashes outside rfc850-date. Day, month and zone names are matched without
    /// regard to case (a recipient may; an optimal cache does).
    ///   IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`  (29 bytes)
    ///   rfc850-date: `Sunday, 06-Nov-94 08:49:37 GMT`
    ///   asctime:     `Sun Nov  6 08:49:37 1994`       (24 bytes)
    public static func parse(bytes b: UnsafeBufferPointer<UInt8>) -> Int64? {
        if b.count == 29, b[3] == .comma { return imfFixdate(b) }
        if b.count == 24, b[3] == .space { return asctime(b) }
        return rfc850(b)
    }

    /// `day-name "," SP day SP month SP year SP time-of-day SP GMT`
    private static func imfFixdate(_ b: UnsafeBufferPointer<UInt8>) -> Int64? {
        guard dayName(b, 0..<3) != nil, b[4] == .space, b[7] == .space, b[11] == .space, b[16] == .space, b[25] == .space,
              let day = digits(b, 5..<7), let month = monthIndex(b, 8..<11), let year = digits(b, 12..<16),
              isGMT(b, 26..<29) else { return nil }
        return assemble(year: year, month: month, day: day, b, at: 17)
    }

    /// `day-name SP month SP ( 2DIGIT / ( SP DIGIT ) ) SP time-of-day SP year`
    private static func asctime(_ b: UnsafeBufferPointer<UInt8>) -> Int64? {
        guard dayName(b, 0..<3) != nil, b[7] == .space, b[10] == .space, b[19] == .space,
              let month = monthIndex(b, 4..<7), let year = digits(b, 20..<24) else { return nil }
        let day = b[8] == .space ? digits(b, 9..<10) : digits(b, 8..<10)
        guard let day else { return nil }
        return assemble(year: year, month: month, day: day, b, at: 11)
    }

    /// `day-name-l "," SP day "-" month "-" 2DIGIT SP time-of-day SP GMT`. RFC 9110 §5.6.7: a
    /// two-digit year is taken in 1970-2069 (a year more than 50 years ahead is read as the past).
    private static func rfc850(_ b: UnsafeBufferPointer<UInt8>) -> Int64? {
        guard let comma = b.firstIndex(of: .comma), comma >= 6, b.count == comma + 24,
              longDayName(b, 0..<comma), b[comma + 1] == .space, b[comma + 4] == .dash, b[comma + 8] == .dash,
              b[comma + 11] == .space, b[comma + 20] == .space,
              let day = digits(b, (comma + 2)..<(comma + 4)), let month = monthIndex(b, (comma + 5)..<(comma + 8)),
              let yy = digits(b, (comma + 9)..<(comma + 11)), isGMT(b, (comma + 21)..<(comma + 24)) else { return nil }
        return assemble(year: yy + (yy < 70 ? 2000 : 1900), month: month, day: day, b, at: comma + 12)
    }

    private static let shortDays = dayNames.map { Array($0.lowercased().utf8) }
    private static let longDays = ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"].map { Array($0.utf8) }
    private static let months = monthNames.map { Array($0.lowercased().utf8) }

    /// The position of the bytes at `r` in `names` (lowercase), matched without regard to case.
    private static func index(of b: UnsafeBufferPointer<UInt8>, _ r: Range<Int>, in names: [[UInt8]]) -> Int? {
        let part = slice(b, r)
        return names.firstIndex { name in name.withUnsafeBufferPointer { ASCII.equalsIgnoringCase(part, $0) } }
    }

    private static func dayName(_ b: UnsafeBufferPointer<UInt8>, _ r: Range<Int>) -> Int? {
        index(of: b, r, in: shortDays)
    }

    private static func longDayName(_ b: UnsafeBufferPointer<UInt8>, _ r: Range<Int>) -> Bool {
        index(of: b, r, in: longDays) != nil
    }

    private static func monthIndex(_ b: UnsafeBufferPointer<UInt8>, _ r: Range<Int>) -> Int64? {
        index(of: b, r, in: months).map { Int64($0 + 1) }
    }

    private static func isGMT(_ b: UnsafeBufferPointer<UInt8>, _ r: Range<Int>) -> Bool {
        ASCII.equalsIgnoringCase(slice(b, r), "gmt")
    }

    /// Exactly `r.count` ASCII digits.
    private static func digits(_ b: UnsafeBufferPointer<UInt8>, _ r: Range<Int>) -> Int64? {
        ASCII.decimal(slice(b, r))
    }

    private static func slice(_ b: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> UnsafeBufferPointer<UInt8> {
        UnsafeBufferPointer(rebasing: b[range])
    }

    /// `hh:mm:ss` at `at`, two digits each.
    private static func assemble(year: Int64, month: Int64, day: Int64, _ b: UnsafeBufferPointer<UInt8>, at t: Int) -> Int64? {
        guard b[t + 2] == .colon, b[t + 5] == .colon,
              let h = digits(b, t..<(t + 2)), let mi = digits(b, (t + 3)..<(t + 5)), let s = digits(b, (t + 6)..<(t + 8)),
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
