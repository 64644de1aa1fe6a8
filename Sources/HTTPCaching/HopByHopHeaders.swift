import NIOHTTP1

/// Connection-specific header fields that a proxy must not forward (RFC 9110 §7.6.1).
public enum HopByHopHeaders {
    /// Removes the standard hop-by-hop fields and every field named in `Connection`. One pass finds
    /// what is there (usually only `Connection: keep-alive`); only those names are removed.
    public static func strip(_ headers: inout HTTPHeaders) {
        var present: [String] = []
        var named: [String] = []
        for (name, value) in headers {
            guard isAlwaysHopByHop(name) else { continue }
            present.append(name)
            if ASCII.equalsIgnoringCase(name, "connection") { connectionOptions(value, into: &named) }
        }
        for name in present { headers.remove(name: name) }
        for name in named { headers.remove(name: name) }
    }

    /// The field names a `Connection` value lists, other than `close` and `keep-alive`.
    public static func connectionOptions(_ value: String, into named: inout [String]) {
        ASCII.forEachListMember(value) { token in
            if !ASCII.equalsIgnoringCase(token, "close"), !ASCII.equalsIgnoringCase(token, "keep-alive") {
                named.append(String(decoding: token, as: UTF8.self))
            }
        }
    }

    /// Always hop-by-hop, whether or not `Connection` names them: connection, keep-alive,
    /// proxy-connection, te, trailer, transfer-encoding, upgrade, proxy-authenticate,
    /// proxy-authorization. Compared as bytes, without lower-casing a copy of every name.
    public static func isAlwaysHopByHop(_ name: String) -> Bool {
        switch name.utf8.count {
        case 2: ASCII.equalsIgnoringCase(name, "te")
        case 7: ASCII.equalsIgnoringCase(name, "trailer") || ASCII.equalsIgnoringCase(name, "upgrade")
        case 10: ASCII.equalsIgnoringCase(name, "connection") || ASCII.equalsIgnoringCase(name, "keep-alive")
        case 16: ASCII.equalsIgnoringCase(name, "proxy-connection")
        case 17: ASCII.equalsIgnoringCase(name, "transfer-encoding")
        case 18: ASCII.equalsIgnoringCase(name, "proxy-authenticate")
        case 19: ASCII.equalsIgnoringCase(name, "proxy-authorization")
        default: false
        }
    }
}

extension StringProtocol {
    /// The value with leading and trailing spaces and tabs removed (OWS, RFC 9110 §5.6.3).
    public func trimmingSpaces() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" { s.removeLast() }
        return String(s)
    }
}
