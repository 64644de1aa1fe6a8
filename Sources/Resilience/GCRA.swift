/// The Generic Cell Rate Algorithm: a rate limit that keeps one timestamp per key, the
/// "theoretical arrival time" (TAT). Times are nanoseconds on any monotonic clock the caller owns.
///
/// `requests` per `per` is the steady rate (one request every `per / requests`); `burst` more may
/// arrive at once after a quiet time, so an idle key admits `burst + 1` back to back.
public struct GCRA: Sendable, Equatable {
    public let limit: Int
    /// Nanoseconds between requests at the steady rate.
    public let interval: Int64
    /// How far ahead of now the TAT may run: `burst` intervals.
    public let tolerance: Int64

    public init(requests: Int, perNanoseconds: Int64, burst: Int) {
        limit = max(1, requests)
        interval = max(1, perNanoseconds / Int64(max(1, requests)))
        tolerance = interval * Int64(max(0, burst))
    }

    public struct Decision: Sendable, Equatable {
        public let admitted: Bool
        /// Requests that could still be admitted at once after this one.
        public let remaining: Int
        /// For a refusal: when to try again.
        public let retryAfter: Int64
        /// When the key is back to a full burst.
        public let resetAfter: Int64

        public init(admitted: Bool, remaining: Int, retryAfter: Int64, resetAfter: Int64) {
            self.admitted = admitted
            self.remaining = remaining
            self.retryAfter = retryAfter
            self.resetAfter = resetAfter
        }
    }

    /// Decides one request at `now`; returns the decision and the key's new TAT (unchanged on refusal).
    public func decide(tat: Int64?, now: Int64) -> (Decision, tat: Int64?) {
        let start = max(tat ?? now, now)
        let allowAt = start - tolerance
        if now < allowAt {
            return (Decision(admitted: false, remaining: 0, retryAfter: allowAt - now, resetAfter: start - now), tat)
        }
        let next = start + interval
        let headroom = tolerance + interval - (next - now)
        return (Decision(admitted: true, remaining: Int(max(0, headroom / interval)), retryAfter: 0, resetAfter: next - now), next)
    }

    /// A key whose TAT is in the past is back to a full burst: its entry can be dropped.
    public static func isIdle(tat: Int64, now: Int64) -> Bool { tat <= now }
}
