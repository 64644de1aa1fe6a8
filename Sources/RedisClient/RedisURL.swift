/// Where Redis is and how to log in: `redis://[user:password@]host[:port][/db]` or
/// `unix:///path/to/redis.sock[?db=N]` (user and password as query items there too).
public struct RedisURL: Sendable, Equatable, CustomStringConvertible {
    public enum Address: Sendable, Equatable {
        case tcp(host: String, port: Int)
        case unix(path: String)
    }

    public var address: Address
    public var user: String?
    public var password: String?
    public var database: Int

    public init(address: Address, user: String? = nil, password: String? = nil, database: Int = 0) {
        self.address = address
        self.user = user
        self.password = password
        self.database = database
    }

    public struct ParseError: Error, Sendable, Equatable, CustomStringConvertible {
        public let description: String
    }

    public init(parsing text: String) throws(ParseError) {
        if text.hasPrefix("unix://") {
            try self.init(unix: String(text.dropFirst("unix://".count)))
        } else if text.hasPrefix("redis://") {
            try self.init(tcp: String(text.dropFirst("redis://".count)))
        } else {
            throw ParseError(description: "expected redis://[user:password@]host:port/db or unix:///path")
        }
    }

    private init(tcp rest: String) throws(ParseError) {
        var authority = Substring(rest)
        var database = 0
        if let slash = rest.firstIndex(of: "/") {
            authority = rest[..<slash]
            let db = rest[rest.index(after: slash)...]
            if !db.isEmpty {
                guard let n = Int(db), n >= 0 else { throw ParseError(description: "database must be a number, got \"\(db)\"") }
                database = n
            }
        }
        var user: String?
        var password: String?
        if let at = authority.lastIndex(of: "@") {
            let credentials = authority[..<at]
            authority = authority[authority.index(after: at)...]
            if let colon = credentials.firstIndex(of: ":") {
                let u = credentials[..<colon]
                user = u.isEmpty ? nil : try Self.percentDecoded(u)
                password = try Self.percentDecoded(credentials[credentials.index(after: colon)...])
            } else {
                // `redis://secret@host` is the old password-only form.
                password = try Self.percentDecoded(credentials)
            }
        }
        var host = authority
        var port = 6379
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { throw ParseError(description: "unterminated IPv6 address") }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if after.hasPrefix(":") { port = try Self.port(after.dropFirst()) } else if !after.isEmpty {
                throw ParseError(description: "unexpected \"\(after)\" after the address")
            }
        } else if let colon = authority.lastIndex(of: ":") {
            host = authority[..<colon]
            port = try Self.port(authority[authority.index(after: colon)...])
        }
        guard !host.isEmpty else { throw ParseError(description: "missing host") }
        self.init(address: .tcp(host: String(host), port: port), user: user, password: password, database: database)
    }

    private init(unix rest: String) throws(ParseError) {
        var path = Substring(rest)
        var database = 0
        var user: String?
        var password: String?
        if let q = rest.firstIndex(of: "?") {
            path = rest[..<q]
            for item in rest[rest.index(after: q)...].split(separator: "&") {
                let pair = item.split(separator: "=", maxSplits: 1)
                let name = pair[0]
                let value = pair.count > 1 ? try Self.percentDecoded(pair[1]) : ""
                switch name {
                case "db":
                    guard let n = Int(value), n >= 0 else { throw ParseError(description: "db must be a number, got \"\(value)\"") }
                    database = n
                case "user": user = value
                case "password": password = value
                default: throw ParseError(description: "unknown parameter \"\(name)\" (expected db, user or password)")
                }
            }
        }
        guard path.hasPrefix("/") else { throw ParseError(description: "a unix socket path must be absolute: unix:///path") }
        self.init(address: .unix(path: String(path)), user: user, password: password, database: database)
    }

    private static func port(_ text: Substring) throws(ParseError) -> Int {
        guard let n = Int(text), (1...65535).contains(n) else { throw ParseError(description: "port must be 1-65535, got \"\(text)\"") }
        return n
    }

    private static func percentDecoded(_ text: Substring) throws(ParseError) -> String {
        guard text.contains("%") else { return String(text) }
        var bytes: [UInt8] = []
        var i = text.utf8.startIndex
        let utf8 = text.utf8
        while i < utf8.endIndex {
            let c = utf8[i]
            if c == UInt8(ascii: "%") {
                let h = utf8.index(after: i)
                guard h < utf8.endIndex, utf8.index(after: h) < utf8.endIndex,
                      let value = UInt8(String(decoding: utf8[h...utf8.index(after: h)], as: UTF8.self), radix: 16) else {
                    throw ParseError(description: "bad percent-encoding in credentials")
                }
                bytes.append(value)
                i = utf8.index(h, offsetBy: 2)
            } else {
                bytes.append(c)
                i = utf8.index(after: i)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The URL without its password, for logs and `/config`.
    public var description: String {
        let credentials = password == nil ? (user.map { "\($0)@" } ?? "") : "\(user ?? ""):***@"
        switch address {
        case .tcp(let host, let port):
            let h = host.contains(":") ? "[\(host)]" : host
            return "redis://\(credentials)\(h):\(port)/\(database)"
        case .unix(let path):
            return "unix://\(path)?db=\(database)" + (user.map { "&user=\($0)" } ?? "") + (password == nil ? "" : "&password=***")
        }
    }
}
