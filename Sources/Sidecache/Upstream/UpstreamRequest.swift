import HTTPCaching
import NIOHTTP1

/// How a client's request is rewritten for the upstream (RFC 9110 §7.6).
enum UpstreamRequest {
    static let via = "1.1 sidecache"

    /// The head sent upstream: hop-by-hop fields removed, forwarding fields added, framing kept.
    /// For a cache fill the method becomes GET and the client's preconditions are dropped: the cache
    /// needs a full response it can store, and answers the client's conditions itself.
    static func head(for request: ActiveRequest, clientAddress: String, forFill: Bool, validating: CachedResponse? = nil) -> HTTPRequestHead {
        let client = request.head
        var headers = client.headers
        let chunked = headers[canonicalForm: "transfer-encoding"].contains { $0.lowercased() == "chunked" }
        let isUpgrade = !forFill && isWebSocketUpgrade(client)
        let upgradeValue = headers.first(name: "upgrade")
        HopByHopHeaders.strip(&headers)
        headers.remove(name: "expect")
        if forFill {
            for name in ConditionalRequest.clientOnlyFields { headers.remove(name: name) }
            // A fill sends no body (a GET's content is not part of what the cache stores).
            headers.remove(name: "content-length")
            if let etag = validating?.etag { headers.add(name: "If-None-Match", value: etag) }
            if let lm = validating?.lastModified { headers.add(name: "If-Modified-Since", value: lm) }
            // With gzip on, sidecache does the negotiating: it asks for the one coding it can
            // serve to everyone (decoding it for clients without gzip), or for identity.
            if request.route?.gzip != nil {
                headers.replaceOrAdd(name: "Accept-Encoding", value: ContentCoding.acceptsGzip(client.headers) ? "gzip" : "identity")
            }
        } else if chunked {
            headers.add(name: "Transfer-Encoding", value: "chunked")
        } else if !headers.contains(name: "content-length"), client.method.hasRequestBody {
            headers.add(name: "Content-Length", value: "0")
        }
        if isUpgrade, let upgradeValue {
            headers.add(name: "Connection", value: "Upgrade")
            headers.add(name: "Upgrade", value: upgradeValue)
        }
        if let existing = headers.first(name: "x-forwarded-for") {
            headers.replaceOrAdd(name: "X-Forwarded-For", value: existing + ", " + clientAddress)
        } else {
            headers.add(name: "X-Forwarded-For", value: clientAddress)
        }
        if !headers.contains(name: "x-forwarded-proto") { headers.add(name: "X-Forwarded-Proto", value: "http") }
        if !headers.contains(name: "x-forwarded-host"), let host = client.headers.first(name: "host") {
            headers.add(name: "X-Forwarded-Host", value: host)
        }
        headers.add(name: "Via", value: via)
        headers.replaceOrAdd(name: "X-Request-ID", value: request.requestID.text)
        return HTTPRequestHead(version: .http1_1, method: forFill ? .GET : onTheWire(client.method), uri: request.uri, headers: headers)
    }

    /// The method as the upstream must see it. SwiftNIO decodes `M-SEARCH` (SSDP) as `.MSEARCH`
    /// but encodes that as `MSEARCH`, another method: it is sent as the token that was received.
    static func onTheWire(_ method: HTTPMethod) -> HTTPMethod {
        method == .MSEARCH ? .RAW(value: "M-SEARCH") : method
    }

    static func isWebSocketUpgrade(_ head: HTTPRequestHead) -> Bool {
        guard let upgrade = head.headers.first(name: "upgrade"), upgrade.lowercased().contains("websocket") else { return false }
        return head.headers[canonicalForm: "connection"].contains { $0.lowercased() == "upgrade" }
    }

    /// A response's headers as relayed to the client: hop-by-hop fields and the origin's
    /// `X-Invalidate-Tags` (meant for sidecache alone) removed, `Via` added.
    static func clientHeaders(from upstream: HTTPHeaders) -> HTTPHeaders {
        var headers = upstream
        HopByHopHeaders.strip(&headers)
        headers.remove(name: "x-invalidate-tags")
        headers.add(name: "Via", value: via)
        return headers
    }
}

extension HTTPMethod {
    /// Methods whose requests normally carry content (RFC 9110 §9.3).
    var hasRequestBody: Bool {
        switch self {
        case .POST, .PUT, .PATCH: true
        default: false
        }
    }

    /// RFC 9110 §9.2.1.
    var isSafe: Bool {
        switch self {
        case .GET, .HEAD, .OPTIONS, .TRACE: true
        default: false
        }
    }

    /// RFC 9110 §9.2.2.
    var isIdempotent: Bool {
        switch self {
        case .GET, .HEAD, .OPTIONS, .TRACE, .PUT, .DELETE: true
        default: false
        }
    }
}
