import HTTPCaching

/// Durations as written in the config file: an integer with a unit, e.g. `500ms`, `2s`, `5m`, `1h`, `1d`.
public enum DurationText {
    public static func parse(_ text: String) -> CacheDuration? {
        let units: [(String, Int64)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000)]
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            let number = text.dropLast(suffix.count)
            // "5ms" also ends in "s": the longer suffix is tried first, and digits-only guards the rest.
            guard !number.isEmpty, number.allSatisfy(\.isASCIIDigit), let value = Int64(number),
                  value <= Int64.max / scale else { continue }
            return .milliseconds(value * scale)
        }
        return nil
    }

    /// The shortest exact spelling, for logs and `/config`.
    public static func format(_ d: CacheDuration) -> String {
        let ms = d.milliseconds
        if ms == 0 { return "0s" }
        for (suffix, scale) in [("d", Int64(86_400_000)), ("h", 3_600_000), ("m", 60_000), ("s", 1000)] where ms % scale == 0 {
            return "\(ms / scale)\(suffix)"
        }
        return "\(ms)ms"
    }
}

/// Sizes as written in the config file: `512KiB`, `256MiB`, `1GiB`, `100B`, or `1KB`/`1MB`/`1GB`
/// (decimal).
public enum SizeText {
    public static func parse(_ text: String) -> Int? {
        let units: [(String, Int)] = [
            ("KiB", 1024), ("MiB", 1 << 20), ("GiB", 1 << 30), ("KB", 1000), ("MB", 1_000_000), ("GB", 1_000_000_000), ("B", 1),
        ]
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            let number = text.dropLast(suffix.count)
            guard !number.isEmpty, number.allSatisfy(\.isASCIIDigit), let value = Int(number), value <= Int.max / scale else { return nil }
            return value * scale
        }
        return nil
    }

    public static func format(_ bytes: Int) -> String {
        for (suffix, scale) in [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1024)] where bytes >= scale && bytes % scale == 0 {
            return "\(bytes / scale)\(suffix)"
        }
        return "\(bytes)B"
    }

    /// Bytes in the largest unit that leaves at least 1, with one decimal (`535.3MiB`), for reports
    /// where an exact size would be unreadable.
    public static func approximate(_ bytes: Int) -> String {
        for (suffix, scale) in [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1024)] where bytes >= scale {
            let tenths = (bytes * 10 + scale / 2) / scale
            return "\(tenths / 10).\(tenths % 10)\(suffix)"
        }
        return "\(bytes)B"
    }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}

/// A rate written as `N/s`, `N/m` or `N/h` (N a decimal number above 0), or a bare number per second.
public enum RateText {
    public static func perSecond(_ text: String) -> Double? {
        let parts = text.split(separator: "/", maxSplits: 1).map { String($0.filter { $0 != " " }) }
        guard let first = parts.first, let n = Double(first), n > 0, n.isFinite else { return nil }
        guard parts.count == 2 else { return n }
        switch parts[1] {
        case "s": return n
        case "m": return n / 60
        case "h": return n / 3600
        default: return nil
        }
    }

}
