import HTTPCaching
import HTTPWire
import NIOCore
import NIOHTTP1
import SidecacheConfig

/// The request a connection is working on, from its head until both its end has been read and its
/// response written. Holds what the access log line and the cache decisions need.
final class ActiveRequest {
    let head: HTTPRequestHead
    /// The head as the client sent it, relayed upstream line by line (`UpstreamRequest`); made
    /// from `head` for a request sidecache makes itself (warming).
    let wire: ParsedRequestHead
    /// The request target in origin-form (an absolute-form target is reduced to its path and query).
    let uri: String
    /// `uri` split once into path and query.
    let path: Substring
    let query: Substring?
    let snapshot: ConfigSnapshot
    /// The first route matching the method and path; nil for a target that was not routed.
    let route: CompiledRoute?
    /// Where the request is counted when it completes (its route's, or the unrouted one).
    let tally: RequestTally
    /// The route's rate limit, from the same config as the route.
    let limiter: RouteRateLimiter?
    /// Counts the request's key toward its hotness and refreshes it ahead (warm routes), and
    /// whether a background fetch's entry was used (every cached route); nil without warming.
    let warmer: Warmer?
    let requestID: RequestID
    let started: NIODeadline
    private(set) var keepAlive: Bool
    var outcome: CacheOutcome = .bypass
    var status: UInt = 0
    var bytes = 0
    var upstreamStarted: NIODeadline?
    var upstreamMicroseconds: Int64?
    var requestEnded = false
    var responseStarted = false
    var responseEnded = false
    /// Set while a streamed response is being relayed: paused and resumed with the client's writability.
    var upstreamReader: UpstreamClientHandler?
    /// What is fetching the response, at most one at a time.
    var exchange: Exchange?
    var key: CacheKey?
    /// A stored response that may still be served if the upstream fails (stale-if-error).
    var stale: CachedResponse?
    /// The response is written below the HTTP encoder: its head by the proxy, its body as is.
    var relaysBelowEncoder = false
    /// Gzips a streamed response on its way to the client.
    var gzipStream: StreamingGzip?
    /// `RateLimit-*` fields for the response, on a rate-limited route.
    var rateLimit: RateLimitFields?
    /// L2 was asked (or must not be: the client wants a revalidated answer); a fill goes upstream.
    var l2Checked = false
    /// The route honours the client's `no-cache` and the client sent it: the answer is validated.
    var asksRevalidation = false
    /// The `Range` of a GET on a cached route: answered from the stored representation (RFC 9110 §14).
    var range: String?

    /// `routed: false` for a request answered before routing (a malformed target).
    init(head: HTTPRequestHead, wire: ParsedRequestHead? = nil, uri: String, config: ActiveConfig, routed: Bool, requestID: RequestID,
         started: NIODeadline) {
        self.head = head
        self.wire = wire ?? ParsedRequestHead(method: head.method.rawValue, target: head.uri, fields: head.headers.map { ($0.name, $0.value) })
        self.uri = uri
        (self.path, self.query) = CacheKeyPolicy.split(uri: uri)
        self.snapshot = config.snapshot
        self.route = routed ? config.snapshot.route(method: head.method, path: path) : nil
        self.tally = config.tallies.tally(for: route)
        self.limiter = route.flatMap { config.limiters.limiter(for: $0) }
        // Every cached route's hits may use what a prefetch stored; warm routes' count toward hotness.
        self.warmer = route?.cacheEnabled == true ? config.warmer : nil
        self.requestID = requestID
        self.started = started
        self.keepAlive = head.isKeepAlive
    }

    var isHead: Bool { head.method == .HEAD }

    /// The route and key of a request that was looked up in the cache.
    var cacheTarget: CacheTarget? {
        guard let route, let key else { return nil }
        return CacheTarget(route: route, key: key)
    }

    enum Exchange {
        /// Relaying the request and its response uncached.
        case forward(ForwardExchange)
        /// The fill this request leads: told when the client leaves (a fill being stored goes on).
        case fill(CacheFill)
        /// A WebSocket upgrade on its own upstream connection.
        case tunnel(TunnelExchange)
    }

    /// The forward relaying this request's body, if that is what fetches the response.
    var forward: ForwardExchange? {
        if case .forward(let exchange) = exchange { return exchange }
        return nil
    }

    /// The response will be delimited by closing the connection (HTTP/1.0 without a length).
    func closeAfterResponse() { keepAlive = false }

    /// The client is gone or will get no answer from these: a forward is cancelled and its
    /// upstream connection closed, a tunnel closed, a streamed fill stopped (a buffered fill goes
    /// on and stores).
    func abandonExchanges() {
        switch exchange {
        case .forward(let forward): forward.cancel()
        case .tunnel(let tunnel): tunnel.cancel()
        case .fill(let fill): fill.ownerLeft()
        case nil: break
        }
    }

    func markUpstreamStart() { upstreamStarted = .now() }

    func markUpstreamEnd() {
        guard let s = upstreamStarted, upstreamMicroseconds == nil else { return }
        upstreamMicroseconds = (NIODeadline.now() - s).nanoseconds / 1000
    }
}
