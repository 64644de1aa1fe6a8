import NIOHTTP1

/// What a request head must satisfy before it is routed, checked without a socket: exactly one
/// `Host` on HTTP/1.1 (RFC 9112 §3.2), a `Host` that names a host (`HostField`), and a head no
/// larger than the configured limit. Each rejection closes the connection after its answer.
public enum RequestHeadRules {
    public enum Rejection: Equatable, Sendable {
        case hostCount
        case malformedHost
        case tooLarge

        public var status: HTTPResponseStatus {
            switch self {
            case .hostCount, .malformedHost: .badRequest
            case .tooLarge: HTTPResponseStatus(statusCode: 431)
            }
        }

        public var message: String {
            switch self {
            case .hostCount: "exactly one Host header is required"
            case .malformedHost: "the Host header is not a host name, address or port"
            case .tooLarge: "request header fields too large"
            }
        }
    }

    /// The first rule `head` breaks, or nil.
    public static func check(_ head: HTTPRequestHead, maxHeaderBytes: Int) -> Rejection? {
        let (hostCount, host) = hostFields(head.headers)
        if head.version.major == 1, head.version.minor >= 1, hostCount != 1 { return .hostCount }
        if let host, !HostField.isValid(host) { return .malformedHost }
        if headerBytes(head) > maxHeaderBytes { return .tooLarge }
        return nil
    }

    /// The `Host` syntax alone: for a head that came through the strict wire parser, which has
    /// already refused a wrong number of `Host` fields and a head over the size limit.
    public static func checkHost(_ head: HTTPRequestHead) -> Rejection? {
        guard let host = head.headers.first(name: "host") else { return nil }
        return HostField.isValid(host) ? nil : .malformedHost
    }

    /// Counts the Host fields and finds the first, without building an array (this runs for every request).
    static func hostFields(_ headers: HTTPHeaders) -> (count: Int, first: String?) {
        var count = 0
        var first: String?
        for (name, value) in headers where ASCII.equalsIgnoringCase(name, "host") {
            count += 1
            if first == nil { first = value }
        }
        return (count, first)
    }

    /// The head's size as it was sent, near enough: the target, each field with its separators, and
    /// the request line's method and version.
    public static func headerBytes(_ head: HTTPRequestHead) -> Int {
        var total = head.uri.utf8.count + 16
        for (name, value) in head.headers { total += name.utf8.count + value.utf8.count + 4 }
        return total
    }
}
