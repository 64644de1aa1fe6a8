/// The `Host` field's grammar (RFC 9110 §7.2, RFC 3986 §3.2.2-3.2.3): `uri-host [ ":" port ]`,
/// a registered name of unreserved, percent-encoded and sub-delimiter characters, an IP literal in
/// brackets, or nothing. A value with anything else (a "/", "?", "#", "@", white space, controls,
/// non-ASCII) is answered 400: it names no host, and in a cache key it would blur where the path
/// begins.
public enum HostField {
    public static func isValid(_ value: String) -> Bool {
        for byte in value.utf8 where !allowed(byte) { return false }
        return true
    }

    private static func allowed(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        case UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"), UInt8(ascii: "%"),  // unreserved, pct-encoded
             UInt8(ascii: "!"), UInt8(ascii: "$"), UInt8(ascii: "&"), UInt8(ascii: "'"), UInt8(ascii: "("), UInt8(ascii: ")"),
             UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: ","), UInt8(ascii: ";"), UInt8(ascii: "="),  // sub-delims
             UInt8(ascii: ":"), UInt8(ascii: "["), UInt8(ascii: "]"):  // port, IP literal
            return true
        default:
            return false
        }
    }
}
