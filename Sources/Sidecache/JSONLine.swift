/// Builds one JSON object on one line, the format of every log line sidecache writes.
struct JSONLine {
    private(set) var text = "{"
    private var first = true

    init() { text.reserveCapacity(256) }

    mutating func add(_ key: String, _ value: String) {
        separator()
        text += "\""
        text += key
        text += "\":\""
        Self.escape(value, into: &text)
        text += "\""
    }

    mutating func finish() -> String {
        text += "}"
        return text
    }

    private mutating func separator() {
        if first { first = false } else { text += "," }
    }

    static func escape(_ s: String, into out: inout String) {
        var needs = false
        for u in s.utf8 where u < 0x20 || u == 0x22 || u == 0x5C { needs = true; break }
        guard needs else { out += s; return }
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
    }
}
