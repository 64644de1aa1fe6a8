import HTTPCaching
import NIOCore
import NIOHTTP1
import SidecacheConfig

/// How a fetched response becomes a stored entry, and how a 304 refreshes one (RFC 9111 §3,
/// §4.3.4): pure functions of the response, the request and the route, with no socket or store.
struct StoredEntry {
    let route: CompiledRoute
    /// The request the fill is for: its path names the route's tags, its headers the Vary values.
    let requestPath: Substring
    let requestHeaders: HTTPHeaders
    let requestTime: CacheInstant

    /// The entry for a 2xx/3xx/4xx the storage rules accepted, with the client's framing: hop-by-hop
    /// fields, `Age`, `X-Request-ID` and the fields a qualified no-cache/private withholds removed,
    /// `Content-Length` set to the body's length, and (on a gzip route) `Accept-Encoding` dropped
    /// from `Vary` since sidecache negotiates the coding itself.
    func make(_ head: HTTPResponseHead, body: ByteBuffer, terms: StorageTerms, responseTime: CacheInstant) -> CachedResponse {
        var headers = UpstreamRequest.clientHeaders(from: head.headers)
        headers.remove(name: "age")
        headers.remove(name: "x-request-id")
        for name in terms.withheldFields { headers.remove(name: name) }
        if head.status.code != 204 {
            headers.replaceOrAdd(name: "Content-Length", value: String(body.readableBytes))
        }
        var varyNames = CachedResponse.varyNames(of: head.headers)
        var gzipPending = false
        let acceptance = Self.acceptanceCoding(head.headers, route: route)
        if let gzip = route.gzip {
            varyNames.removeAll { $0 == "accept-encoding" }
            gzipPending = GzipOnDemand.allows(status: head.status, headers: headers, bodyBytes: body.readableBytes, settings: gzip)
            if gzipPending || ContentCoding.encoding(of: headers) != nil { ContentCoding.addVaryAcceptEncoding(&headers) }
        }
        // A coding sidecache cannot serve to every client is kept for those that accept it.
        if let acceptance { varyNames.append(ContentCoding.acceptanceVaryName(for: acceptance)) }
        let varyValues = varyNames.map { CachedResponse.varyValue($0, in: requestHeaders) }
        return CachedResponse(
            status: head.status, headers: headers, body: body, requestTime: requestTime, responseTime: responseTime,
            terms: terms, varyNames: varyNames, varyValues: varyValues,
            tags: ResponseTags.stored(declared: route.tags(forPath: requestPath), headers: head.headers), gzipPending: gzipPending
        )
    }

    /// `entry` refreshed by a 304: its fields updated by the 304's (RFC 9111 §3.2), its lifetime
    /// decided anew from the merged fields (a 304 may carry a new max-age), its age from the 304's
    /// own `Age`.
    func refresh(_ entry: CachedResponse, with head: HTTPResponseHead, responseTime: CacheInstant) -> CachedResponse {
        var updates = head.headers
        HopByHopHeaders.strip(&updates)
        updates.remove(name: "x-request-id")
        var merged = entry.headersRefreshed(by: updates)
        let decision = StorageRules.evaluate(
            requestMethod: .GET, requestHeaders: requestHeaders, status: entry.status, responseHeaders: merged,
            policy: route.policy, responseTime: responseTime
        )
        var terms = entry.terms
        if case .store(let fresh) = decision { terms = fresh }
        for name in terms.withheldFields { merged.remove(name: name) }
        terms.originAge = ResponseDirectives(headers: updates, targetedField: route.policy.targetedField).age
        return entry.refreshed(headers: merged, requestTime: requestTime, responseTime: responseTime, terms: terms)
    }

    /// Identity or gzip: what an entry shared by clients with any Accept-Encoding may hold. gzip
    /// under `no-transform` does not qualify: decoding it for a client would be a transformation.
    /// Another coding is stored with an acceptance dimension (`ContentCoding.acceptanceVaryName`).
    /// The coding an entry may be served in only to clients that accept it (issue 20 item 7), or
    /// nil when it may serve every client:
    /// - on a gzip route, any coding but identity and gzip (which sidecache decodes for clients
    ///   without it), and gzip under `no-transform`;
    /// - on a route without gzip, any coding the origin's `Vary` does not already key by
    ///   `Accept-Encoding` (an origin that forgets it would otherwise have br served to everyone).
    static func acceptanceCoding(_ headers: HTTPHeaders, route: CompiledRoute) -> String? {
        guard let coding = ContentCoding.encoding(of: headers) else { return nil }
        if route.gzip != nil { return storableCoding(headers) ? nil : coding }
        let vary = CachedResponse.varyNames(of: headers)
        return vary.contains("accept-encoding") || vary.contains("*") ? nil : coding
    }

    static func storableCoding(_ headers: HTTPHeaders) -> Bool {
        switch ContentCoding.encoding(of: headers) {
        case nil: return true
        case "gzip": return !CacheControl(fieldValues: headers["cache-control"]).noTransform
        default: return false
        }
    }
}
