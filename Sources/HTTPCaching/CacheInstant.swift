#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A wall-clock instant with millisecond resolution.
///
/// RFC 9111 arithmetic (age, freshness) mixes the origin's `Date` header with local receipt times, so
/// it needs wall-clock time, not a monotonic clock. Everything that depends on time takes an instant as
/// a parameter so tests drive it explicitly and never sleep.
public struct CacheInstant: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// Milliseconds since 1970-01-01T00:00:00Z.
    public var milliseconds: Int64

    public init(milliseconds: Int64) { self.milliseconds = milliseconds }
    public init(seconds: Int64) { self.milliseconds = seconds * 1000 }

    public var seconds: Int64 { milliseconds >= 0 ? milliseconds / 1000 : (milliseconds - 999) / 1000 }

    /// The current wall-clock time (`CLOCK_REALTIME`).
    public static func now() -> CacheInstant {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return CacheInstant(milliseconds: Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000)
    }

    public static func < (lhs: CacheInstant, rhs: CacheInstant) -> Bool { lhs.milliseconds < rhs.milliseconds }
    public static func + (lhs: CacheInstant, rhs: CacheDuration) -> CacheInstant {
        CacheInstant(milliseconds: lhs.milliseconds &+ rhs.milliseconds)
    }
    public static func - (lhs: CacheInstant, rhs: CacheDuration) -> CacheInstant {
        CacheInstant(milliseconds: lhs.milliseconds &- rhs.milliseconds)
    }
    public static func - (lhs: CacheInstant, rhs: CacheInstant) -> CacheDuration {
        CacheDuration(milliseconds: lhs.milliseconds &- rhs.milliseconds)
    }
    public var description: String { "\(milliseconds)ms" }
}

/// A span of time with millisecond resolution, used for lifetimes, ages and windows.
public struct CacheDuration: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var milliseconds: Int64

    public init(milliseconds: Int64) { self.milliseconds = milliseconds }
    public static func seconds(_ s: Int64) -> CacheDuration { CacheDuration(milliseconds: s &* 1000) }
    public static func milliseconds(_ ms: Int64) -> CacheDuration { CacheDuration(milliseconds: ms) }
    public static let zero = CacheDuration(milliseconds: 0)

    /// Whole seconds, rounded down (what `Age` and `max-age` carry).
    public var seconds: Int64 { milliseconds >= 0 ? milliseconds / 1000 : -((-milliseconds + 999) / 1000) }

    public static func < (lhs: CacheDuration, rhs: CacheDuration) -> Bool { lhs.milliseconds < rhs.milliseconds }
    public static func + (lhs: CacheDuration, rhs: CacheDuration) -> CacheDuration {
        CacheDuration(milliseconds: lhs.milliseconds &+ rhs.milliseconds)
    }
    public static func - (lhs: CacheDuration, rhs: CacheDuration) -> CacheDuration {
        CacheDuration(milliseconds: lhs.milliseconds &- rhs.milliseconds)
    }
    public var description: String { "\(milliseconds)ms" }
}
