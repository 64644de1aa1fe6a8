import NIOCore

/// The monotonic time of what is shared across event loops: the circuit breaker's window and
/// open period, the retry budget, the rate-limit tables and their refusal log. Injected through
/// `ProxyRuntime`, so tests move it by hand instead of sleeping.
///
/// What belongs to one connection (client and upstream deadlines, pool idling) reads its event
/// loop's `now` instead: an `EmbeddedEventLoop` advances that one.
public struct MonotonicClock: Sendable {
    private let read: @Sendable () -> Int64

    /// `nanoseconds` reads a monotonic count of nanoseconds (any origin; only differences matter).
    public init(nanoseconds: @escaping @Sendable () -> Int64) {
        self.read = nanoseconds
    }

    /// The system's monotonic clock, as `NIODeadline.now()` reads it.
    public static let system = MonotonicClock { Int64(truncatingIfNeeded: NIODeadline.now().uptimeNanoseconds) }

    /// Nanoseconds, the unit of every Resilience value.
    public func nanoseconds() -> Int64 { read() }
}
