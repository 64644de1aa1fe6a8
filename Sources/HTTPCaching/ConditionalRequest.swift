import NIOHTTP1

/// Evaluates a client's `If-None-Match` / `If-Modified-Since` against a stored response
/// (RFC 9110 §13.2.2 order; RFC 9111 §4.3.2).
public enum ConditionalRequest {
    /// True when the client already has the representation and should get 304 Not Modified.
    /// `stored` is the stored response's `Date` (else when it was received), in seconds since the
    /// epoch: RFC 9111 §4.3.2 has a cache compare `If-Modified-Since` with it when the response has
    /// no `Last-Modified`.
    public static func isNotModified(request: HTTPHeaders, etag: String?, lastModified: String?, stored: Int64? = nil) -> Bool {
        let inm = request[canonicalForm: "if-none-match"]
        if !inm.isEmpty {
            // §13.1.2: weak comparison for If-None-Match.
            guard let etag else { return false }
            let stored = opaque(etag)
            for value in inm {
                for candidate in value.split(separator: ",") {
                    let c = candidate.trimmingSpaces()
                    if c == "*" || opaque(c) == stored { return true }
                }
            }
            return false
        }
        // §13.1.3: If-Modified-Since is ignored when If-None-Match is present.
        guard let ims = request.first(name: "if-modified-since"), let since = HTTPDate.parse(ims),
              let modified = lastModified.map(HTTPDate.parse) ?? stored
        else { return false }
        return modified <= since
    }

    /// True when the request carries any precondition or range, which a cache fill must not forward
    /// (the fill needs a full 200 it can store; the cache answers the condition itself).
    public static let clientOnlyFields = ["if-none-match", "if-modified-since", "if-match", "if-unmodified-since", "if-range", "range"]

    /// The entity-tag without its weakness prefix: weak comparison compares only the opaque part.
    private static func opaque<S: StringProtocol>(_ tag: S) -> Substring {
        let t = Substring(tag)
        return t.hasPrefix("W/") ? t.dropFirst(2) : t
    }

    /// Header fields that a 304 must carry when the 200 would have (RFC 9110 §15.4.5).
    public static let fieldsKeptIn304: Set<String> = ["cache-control", "content-location", "date", "etag", "expires", "vary", "last-modified", "cdn-cache-control", "surrogate-control"]
}

extension ConditionalRequest {
    /// The client asks for an answer validated by the origin: `Cache-Control: no-cache`,
    /// `max-age=0` or `no-store`, or `Pragma: no-cache` (RFC 9111 §5.2.1, §5.4).
    public static func clientAsksRevalidation(_ headers: HTTPHeaders) -> Bool {
        let cc = CacheControl(fieldValues: headers["cache-control"])
        if cc.noCache || cc.maxAge == 0 || cc.noStore { return true }
        return headers[canonicalForm: "pragma"].contains { $0.lowercased().contains("no-cache") }
    }
}
