import HTTPCaching
import Resilience

extension SidecacheConfiguration {
    /// A route's `rate_limit`: `requests` per `per`, `burst` more at once after a quiet time.
    public struct RateLimit: Sendable, Equatable, Encodable {
        public enum Key: Sendable, Equatable, CustomStringConvertible {
            /// The client's address (through `trusted_proxies`' `X-Forwarded-For`).
            case clientIP
            /// A request header's value, e.g. an API key; requests without it share one bucket.
            case header(String)
            /// One bucket for the whole route.
            case route

            public var description: String {
                switch self {
                case .clientIP: "client_ip"
                case .header(let name): "header:\(name)"
                case .route: "route"
                }
            }
        }

        public enum Scope: String, Sendable, Equatable {
            /// This instance's memory.
            case local
            /// Shared by every instance through `cache.redis` (the local limit when Redis is down).
            case redis
        }

        public var requests: Int
        public var per: CacheDuration
        public var burst = 0
        public var key = Key.clientIP
        public var scope = Scope.local
        /// Count and log what would be refused, refuse nothing.
        public var shadow = false

        public init(requests: Int, per: CacheDuration) {
            self.requests = requests
            self.per = per
        }

        public var gcra: GCRA { GCRA(requests: requests, perNanoseconds: per.milliseconds * 1_000_000, burst: burst) }

        enum CodingKeys: String, CodingKey { case requests, per, burst, key, scope, mode }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(requests, forKey: .requests)
            try c.encode(DurationText.format(per), forKey: .per)
            try c.encode(burst, forKey: .burst)
            try c.encode(key.description, forKey: .key)
            try c.encode(scope.rawValue, forKey: .scope)
            try c.encode(shadow ? "shadow" : "enforce", forKey: .mode)
        }
    }

    /// `upstream.circuit_breaker`.
    public struct CircuitBreakerConfig: Sendable, Equatable, Encodable {
        public var window = CacheDuration.seconds(10)
        public var minRequests = 20
        /// 1...100.
        public var failureRatePercent = 50
        public var consecutiveFailures = 5
        public var openFor = CacheDuration.seconds(5)
        public var halfOpenProbes = 3
        /// Upstream statuses that count as failures (besides connect errors and time-outs).
        public var failureStatuses: [UInt] = [502, 503, 504]

        public init() {}

        public var settings: CircuitBreaker.Settings {
            CircuitBreaker.Settings(
                windowNanoseconds: window.milliseconds * 1_000_000, minRequests: minRequests, failureRate: Double(failureRatePercent) / 100,
                consecutiveFailures: consecutiveFailures, openForNanoseconds: openFor.milliseconds * 1_000_000, halfOpenProbes: halfOpenProbes
            )
        }

        enum CodingKeys: String, CodingKey {
            case window, minRequests = "min_requests", failureRate = "failure_rate", consecutiveFailures = "consecutive_failures"
            case openFor = "open_for", halfOpenProbes = "half_open_probes", failureStatuses = "failure_statuses"
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(DurationText.format(window), forKey: .window)
            try c.encode(minRequests, forKey: .minRequests)
            try c.encode("\(failureRatePercent)%", forKey: .failureRate)
            try c.encode(consecutiveFailures, forKey: .consecutiveFailures)
            try c.encode(DurationText.format(openFor), forKey: .openFor)
            try c.encode(halfOpenProbes, forKey: .halfOpenProbes)
            try c.encode(failureStatuses, forKey: .failureStatuses)
        }
    }

    /// `upstream.retries`: how often a failed idempotent request is tried again.
    public struct Retries: Sendable, Equatable, Encodable {
        /// Retries after the first try (0: none).
        public var attempts = 2
        public var base = CacheDuration.milliseconds(25)
        public var max = CacheDuration.seconds(1)
        /// Retries may be at most this share of requests over the last 10 s (plus 3).
        public var budgetPercent = 20

        public init() {}

        public var backoff: RetryBackoff {
            RetryBackoff(baseNanoseconds: base.milliseconds * 1_000_000, maxNanoseconds: max.milliseconds * 1_000_000)
        }

        enum CodingKeys: String, CodingKey { case attempts, base, max, budget }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(attempts, forKey: .attempts)
            try c.encode(DurationText.format(base), forKey: .base)
            try c.encode(DurationText.format(max), forKey: .max)
            try c.encode("\(budgetPercent)%", forKey: .budget)
        }
    }
}
