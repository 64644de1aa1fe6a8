import NIOHTTP1

/// Connection-specific header fields that a proxy must not forward (RFC 9110 §7.6.1).
public enum HopByHopHeaders {
    /// Always hop-by-hop, whether or not `Connection` names them.
    public static let names: Set<String> = [
        "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
        "proxy-authenticate", "proxy-authorization",
    ]

    /// Removes the standard hop-by-hop fields and every field named in `Connection`.
    public static func strip(_ headers: inout HTTPHeaders) {
        var named: [String] = []
        for value in headers[canonicalForm: "connection"] {
            let token = value.trimmingSpaces().lowercased()
            if !token.isEmpty, token != "close", token != "keep-alive" { named.append(token) }
        }
        var needsStrip = !named.isEmpty
        if !needsStrip {
            for (name, _) in headers where names.contains(name.lowercased()) { needsStrip = true; break }
        }
        guard needsStrip else { return }
        for name in names { headers.remove(name: name) }
        for name in named { headers.remove(name: name) }
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
