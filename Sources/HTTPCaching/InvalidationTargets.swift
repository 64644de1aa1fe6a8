import NIOHTTP1

/// RFC 9111 §4.4: a successful unsafe request invalidates the stored responses for its target URI
/// and for the URIs in `Location` and `Content-Location`, the latter only when they share the
/// target's origin (so a response cannot be used to purge another site's entries).
public enum InvalidationTargets {
    /// True for the status codes after which invalidation applies ("a non-error status code").
    public static func applies(method: HTTPMethod, status: UInt) -> Bool {
        switch method {
        case .GET, .HEAD, .OPTIONS, .TRACE: return false
        default: return status >= 200 && status < 400
        }
    }

    /// The paths to invalidate: the request's, then those named by the response.
    public static func paths(requestPath: Substring, host: String?, responseHeaders: HTTPHeaders) -> [String] {
        var out = [String(requestPath)]
        for field in ["location", "content-location"] {
            guard let value = responseHeaders.first(name: field)?.trimmingSpaces(), !value.isEmpty else { continue }
            if let path = sameOriginPath(value, host: host), !out.contains(path) { out.append(path) }
        }
        return out
    }

    private static func sameOriginPath(_ reference: String, host: String?) -> String? {
        guard let target = RequestTarget(reference, reference: true) else { return nil }
        if let authority = target.authority {
            guard let host, authority.lowercased() == host.lowercased() else { return nil }
        }
        return String(target.path)
    }
}
