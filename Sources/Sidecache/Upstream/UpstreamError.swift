/// Why a request to the upstream failed. The client gets 502 or 504 with the description as body.
public struct UpstreamError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        case connectFailed = "connect-failed"
        case connectTimeout = "connect-timeout"
        case responseTimeout = "response-timeout"
        case closedBeforeResponse = "closed-before-response"
        case closedMidResponse = "closed-mid-response"
        case poolExhausted = "pool-exhausted"
        case invalidResponse = "invalid-response"
        /// The upstream answered with a server error that sidecache chose to hide (stale-if-error).
        case errorStatus = "error-status"
        /// The circuit breaker is open: the upstream was not asked.
        case circuitOpen = "circuit-open"
    }

    public var kind: Kind
    public var detail: String
    /// True when nothing of the request can have been processed by the upstream on this attempt, so a
    /// retry on another connection is safe even for a non-idempotent method.
    public var requestNotSent: Bool

    /// The upstream's own status for `.errorStatus`.
    public var status: UInt?

    /// For `.circuitOpen`: nanoseconds until the breaker lets a probe through.
    public var retryAfter: Int64?

    public init(_ kind: Kind, _ detail: String, requestNotSent: Bool = false, status: UInt? = nil, retryAfter: Int64? = nil) {
        self.kind = kind
        self.detail = detail
        self.requestNotSent = requestNotSent
        self.status = status
        self.retryAfter = retryAfter
    }

    /// Connect errors and time-outs: what a retry may fix (with 502, 503 and 504 answers).
    public var isRetryable: Bool {
        kind == .connectFailed || kind == .connectTimeout || kind == .responseTimeout
    }

    /// Counts against the upstream's health: everything but local conditions (a full pool, an open breaker).
    public var isUpstreamFault: Bool {
        kind != .poolExhausted && kind != .circuitOpen
    }

    /// 504 for time-outs, 502 for everything else (RFC 9110 §15.6.3, §15.6.5).
    public var statusCode: UInt {
        switch kind {
        case .connectTimeout, .responseTimeout: 504
        case .errorStatus: status ?? 502
        case .circuitOpen: 503
        default: 502
        }
    }

    public var description: String { "upstream \(detail)" }
}
