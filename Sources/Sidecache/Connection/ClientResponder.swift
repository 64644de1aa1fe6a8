import HTTPCaching
import NIOCore
import NIOHTTP1

/// What an exchange with the upstream (`CacheFill`, `ForwardExchange`, `TunnelExchange`) may do to
/// the client's side of a request: the whole set, so the connection's response writing is reached
/// through this and nothing else. Every call names the request it is for; a call for a request that
/// is no longer the connection's current one is ignored (the client left, or the request ended).
///
/// `ProxyHandler` is the one implementation; it writes a response in one of three ways: a stored
/// entry (`serve`), a relayed stream (`beginStreamedResponse` ... `endStreamedResponse`), or a
/// response of sidecache's own (`respondUpstreamError`).
protocol ClientResponder: AnyObject {
    /// Whether `request` is still the one the connection is answering.
    func isCurrent(_ request: ActiveRequest) -> Bool

    /// Pauses or resumes reading the client's request body (backpressure toward the upstream).
    func setClientReading(_ on: Bool)
    /// `100 Continue`, when the client asked for it and the upstream is ready for the body.
    func sendContinue(for request: ActiveRequest)
    /// An interim (1xx) response of the upstream's, relayed before the final one.
    func relayInterim(_ head: HTTPResponseHead, to request: ActiveRequest)

    /// Serves a stored response (the fill's result, or a refreshed entry).
    func serve(_ entry: CachedResponse, to request: ActiveRequest, cacheStatus: CacheStatus, now: CacheInstant)
    /// A fill failed: a stored response if one may stand in, else the error.
    func serveStaleOrError(_ error: UpstreamError, to request: ActiveRequest)
    /// The fill will not be stored and the request is better forwarded as it came (a range of a
    /// response the cache will not keep: the origin sends just the range).
    func forwardInstead(_ request: ActiveRequest, cacheStatus: CacheStatus)
    /// The upstream failed before anything was sent to the client: 502, 503 or 504.
    func respondUpstreamError(_ error: UpstreamError, to request: ActiveRequest)

    /// Starts relaying an upstream response; `reader` is paused while the client cannot take more.
    func beginStreamedResponse(_ head: HTTPResponseHead, to request: ActiveRequest, reader: UpstreamClientHandler?, cacheStatus: CacheStatus)
    func streamBody(_ buffer: ByteBuffer, to request: ActiveRequest)
    func flushStreamedResponse(_ request: ActiveRequest)
    func endStreamedResponse(_ request: ActiveRequest)
    /// The upstream failed after the head was sent: the connection closes before the announced end.
    func abortStreamedResponse(_ request: ActiveRequest)
}
