import HTTPCaching
import HTTPWire
import NIOCore
import NIOHTTP1

/// A request head ready for an upstream connection: its bytes, and what the connection must know
/// of it (a response to HEAD has no body; a chunked body is framed on the way).
struct UpstreamRequestHead {
    var bytes: ByteBuffer
    var isHEAD: Bool
    var chunked: Bool
}

/// How a client's request is rewritten for the upstream (RFC 9110 §7.6).
enum UpstreamRequest {
    static let via = "1.1 sidecache"

    /// The head sent upstream, as bytes: the client's field lines as they came, less the hop-by-hop
    /// ones (RFC 9110 §7.6.1: the standard ones and those `Connection` names) and `Expect`, then
    /// the forwarding fields (`X-Forwarded-*`, `Via`, `X-Request-ID`); framing kept. For a cache
    /// fill the method becomes GET and the client's preconditions, `Range` and `Content-Length` are
    /// dropped: the cache needs a full response it can store, and answers the client's conditions
    /// itself. Within the strict profile the wire parser enforces, relaying the kept lines is the
    /// same as re-serialising them (issue 21 §2).
    static func head(for request: ActiveRequest, clientAddress: String, forFill: Bool, validating: CachedResponse? = nil) -> UpstreamRequestHead {
        let wire = request.wire
        let gzipRoute = forFill && request.route?.gzip != nil
        let count = wire.fields.count
        return withUnsafeTemporaryAllocation(of: Bool.self, capacity: max(1, count)) { keep in
            keep.initialize(repeating: true)
            var fields = FieldPlan()
            wire.withFieldReader { r in fields.read(r, keep: keep, forFill: forFill, gzipRoute: gzipRoute) }
            // A WebSocket upgrade (RFC 6455 §4.1) goes through a tunnel, not a fill.
            let upgrade = forFill || !wire.connection.upgrade ? nil : webSocketUpgrade(fields.upgrade)
            // With gzip on, sidecache does the negotiating: it asks for the one coding it can
            // serve to everyone (decoding it for clients without gzip), or for identity.
            let acceptEncoding: StaticString? = gzipRoute ? (ContentCoding.acceptsGzip(request.head.headers) ? "gzip" : "identity") : nil
            let etag = forFill ? validating?.etag : nil
            let lastModified = forFill ? validating?.lastModified : nil
            let framing: StaticString? = forFill ? nil
                : wire.framing == .chunked ? "Transfer-Encoding: chunked\r\n"
                : !fields.hasContentLength && request.head.method.hasRequestBody ? "Content-Length: 0\r\n" : nil
            let host = fields.hasForwardedHost ? nil : wire.hostIndex.map { wire.fields[$0].value }
            let originForm = wire.target.count > 0 && wire.bytes.getInteger(at: wire.bytes.readerIndex + wire.target.lowerBound, as: UInt8.self) == UInt8(ascii: "/")
            let appendBytes = 200 + clientAddress.utf8.count + (fields.forwardedFor?.utf8.count ?? 0) + request.requestID.utf8Count
                + (etag?.utf8.count ?? 0) + (lastModified?.utf8.count ?? 0) + (upgrade?.utf8.count ?? 0) + Int(host?.count ?? 0)
            var bytes = ByteBuffer()
            HeadWriter.relay(wire, method: forFill ? "GET" : nil, target: originForm ? nil : request.uri, keep: { keep[$0] }, appendBytes: appendBytes,
                             append: { out in
                                 if let etag { Self.line(&out, "If-None-Match: ", etag) }
                                 if let lastModified { Self.line(&out, "If-Modified-Since: ", lastModified) }
                                 if let acceptEncoding {
                                     out.put("Accept-Encoding: ")
                                     out.put(acceptEncoding)
                                     out.put("\r\n")
                                 }
                                 if let framing { out.put(framing) }
                                 if let upgrade {
                                     out.put("Connection: Upgrade\r\n")
                                     Self.line(&out, "Upgrade: ", upgrade)
                                 }
                                 out.put("X-Forwarded-For: ")
                                 if let earlier = fields.forwardedFor {
                                     out.put(earlier)
                                     out.put(", ")
                                 }
                                 out.put(clientAddress)
                                 out.put("\r\n")
                                 if !fields.hasForwardedProto { out.put("X-Forwarded-Proto: http\r\n") }
                                 if let host {
                                     out.put("X-Forwarded-Host: ")
                                     wire.bytes.withUnsafeReadableBytes { out.put(UnsafeRawBufferPointer(rebasing: $0[host.lowerBound..<host.upperBound])) }
                                     out.put("\r\n")
                                 }
                                 Self.line(&out, "Via: ", via)
                                 out.put("X-Request-ID: ")
                                 request.requestID.write(to: &out)
                                 out.put("\r\n")
                             }, into: &bytes)
            return UpstreamRequestHead(bytes: bytes, isHEAD: !forFill && request.head.method == .HEAD, chunked: !forFill && wire.framing == .chunked)
        }
    }

    private static func line(_ out: inout HeadBytes, _ name: StaticString, _ value: String) {
        out.put(name)
        out.put(value)
        out.put("\r\n")
    }

    /// Which of a request's field lines go upstream, and what the forwarding fields need of them.
    private struct FieldPlan {
        var hasContentLength = false
        var hasForwardedProto = false
        var hasForwardedHost = false
        /// The first `X-Forwarded-For` value: the client's address is appended to it.
        var forwardedFor: String?
        var upgrade: String?

        mutating func read(_ r: FieldReader, keep: UnsafeMutableBufferPointer<Bool>, forFill: Bool, gzipRoute: Bool) {
            var nominated: [ByteSpan] = []
            for i in r.fields.indices where r.nameCount(i) == 10 && r.name(i, is: "connection") { r.nominatedNames(i, into: &nominated) }
            for i in r.fields.indices {
                if Self.isAlwaysHopByHop(r, i) {
                    if upgrade == nil, r.nameCount(i) == 7, r.name(i, is: "upgrade") { upgrade = r.value(i) }
                    keep[i] = false
                    continue
                }
                if !nominated.isEmpty, nominated.contains(where: { r.name(i, equals: $0) }) {
                    keep[i] = false
                    continue
                }
                switch r.nameCount(i) {
                case 5 where forFill && r.name(i, is: "range"),
                     6 where r.name(i, is: "expect"),
                     8 where forFill && (r.name(i, is: "if-match") || r.name(i, is: "if-range")),
                     12 where r.name(i, is: "x-request-id"),
                     13 where forFill && r.name(i, is: "if-none-match"),
                     15 where gzipRoute && r.name(i, is: "accept-encoding"),
                     17 where forFill && r.name(i, is: "if-modified-since"),
                     19 where forFill && r.name(i, is: "if-unmodified-since"):
                    keep[i] = false
                case 14 where r.name(i, is: "content-length"):
                    if forFill { keep[i] = false } else { hasContentLength = true }
                case 15 where r.name(i, is: "x-forwarded-for"):
                    if forwardedFor == nil { forwardedFor = r.value(i) }
                    keep[i] = false
                case 16 where r.name(i, is: "x-forwarded-host"):
                    hasForwardedHost = true
                case 17 where r.name(i, is: "x-forwarded-proto"):
                    hasForwardedProto = true
                default:
                    break
                }
            }
        }

        /// `HopByHopHeaders.isAlwaysHopByHop` over bytes.
        private static func isAlwaysHopByHop(_ r: FieldReader, _ i: Int) -> Bool {
            switch r.nameCount(i) {
            case 2: r.name(i, is: "te")
            case 7: r.name(i, is: "trailer") || r.name(i, is: "upgrade")
            case 10: r.name(i, is: "connection") || r.name(i, is: "keep-alive")
            case 16: r.name(i, is: "proxy-connection")
            case 17: r.name(i, is: "transfer-encoding")
            case 18: r.name(i, is: "proxy-authenticate")
            case 19: r.name(i, is: "proxy-authorization")
            default: false
            }
        }
    }

    /// `Connection: upgrade` (read by the parser) and a first `Upgrade` field naming websocket.
    static func isWebSocketUpgrade(_ head: ParsedRequestHead) -> Bool {
        guard head.connection.upgrade else { return false }
        return webSocketUpgrade(head.withFieldReader { r in r.fields.indices.first { r.nameCount($0) == 7 && r.name($0, is: "upgrade") }.map { r.value($0) } }) != nil
    }

    /// The `Upgrade` value when it asks for a WebSocket.
    private static func webSocketUpgrade(_ value: String?) -> String? {
        value.flatMap { $0.lowercased().contains("websocket") ? $0 : nil }
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
