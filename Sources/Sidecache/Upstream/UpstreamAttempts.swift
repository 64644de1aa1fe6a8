import CoreMetrics
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import Resilience
import SidecacheConfig

/// One exchange's tries at the upstream: asks the breaker before each, reports how each ended,
/// and decides whether a failed one is tried again. Retried: only idempotent methods (GET, HEAD,
/// OPTIONS; PUT and DELETE when the route allows), only after a connect failure, a time-out or a
/// 502/503/504, only before anything of the response reached the client (the callers ask before
/// relaying a head), and only within the attempts and the budget.
final class UpstreamAttempts {
    private let upstreamGuard: UpstreamGuard
    private let retryable: Bool
    private var pass: BreakerPass?
    private(set) var retries = 0
    /// Attempts begun, counting the one under way.
    private(set) var attempts = 0

    static let retryStatuses: Set<UInt> = [502, 503, 504]

    /// Retries granted at most, below the policy's own `attempts`.
    private let maxRetries: Int

    init(_ upstreamGuard: UpstreamGuard, method: HTTPMethod, route: CompiledRoute?, maxRetries: Int = .max) {
        self.upstreamGuard = upstreamGuard
        self.maxRetries = maxRetries
        switch method {
        case .GET, .HEAD, .OPTIONS: retryable = true
        case .PUT, .DELETE: retryable = route?.retryUnsafeIdempotent ?? false
        default: retryable = false
        }
        upstreamGuard.retries?.recordRequest()
    }

    /// Before each attempt: nil to go ahead, or the error to answer with (the breaker is open).
    func begin() -> UpstreamError? {
        attempts += 1
        pass?.abandon()
        pass = nil
        guard let breaker = upstreamGuard.breaker else { return nil }
        switch breaker.admit() {
        case .go(let granted):
            pass = granted
            return nil
        case .rejected(let retryAfter):
            return UpstreamError(.circuitOpen, "circuit breaker is open; not asking the upstream", requestNotSent: true, retryAfter: retryAfter)
        }
    }

    /// The response head arrived. A wait means: drop this response and try again after it.
    func responseHead(status: UInt, replayable: Bool) -> TimeAmount? {
        pass?.record(status: status)
        pass = nil
        guard Self.retryStatuses.contains(status) else { return nil }
        return retry(replayable: replayable)
    }

    /// The attempt failed before a response head. A wait means: try again after it.
    func failed(_ error: UpstreamError, replayable: Bool) -> TimeAmount? {
        pass?.record(error)
        pass = nil
        guard error.isRetryable else { return nil }
        return retry(replayable: replayable)
    }

    /// A kept-alive connection may be closed by the upstream just as a request goes out on it
    /// (RFC 9112 §9.3.1). The first attempt is then tried once more, on a new connection, when that
    /// cannot repeat a side effect (RFC 9110 §9.2.2): nothing was sent, or the connection had been
    /// used before and the request is `replayable` (idempotent, its body whole and unsent). The
    /// attempt ends without counting for or against the upstream.
    func retriesOnNewConnection(after error: UpstreamError, connectionWasReused: Bool, replayable: Bool) -> Bool {
        guard attempts == 1, error.kind == .closedBeforeResponse, error.requestNotSent || (connectionWasReused && replayable) else { return false }
        abandon()
        return true
    }

    /// The attempt ends without an outcome of the upstream's making (the client left, or a
    /// keep-alive connection was found closed and is replaced).
    func abandon() {
        pass?.abandon()
        pass = nil
    }

    private func retry(replayable: Bool) -> TimeAmount? {
        guard retryable, replayable, let policy = upstreamGuard.retries, retries < min(policy.config.attempts, maxRetries),
              let wait = policy.grant(attempt: retries) else { return nil }
        retries += 1
        return wait
    }
}
