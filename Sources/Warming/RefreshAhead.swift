/// When a hot entry is refetched before it expires: once less than `fraction` of its freshness
/// lifetime is left, the fraction shrunk per key by a jitter in [0, 1) down to half of it, so that
/// keys filled together do not all refresh at the same moment. Pure: ages and lifetimes in
/// seconds, the jitter passed in (`jitter(for:)` derives a stable one from a key's hash).
public struct RefreshAhead: Sendable, Equatable {
    /// The part of the lifetime, 0 < fraction < 1, in which a hit starts a refresh.
    public let fraction: Double

    public init(fraction: Double) {
        self.fraction = min(max(fraction, 0), 1)
    }

    /// The seconds before expiry at which a refresh starts for a key with this jitter.
    public func window(lifetime: Double, jitter: Double) -> Double {
        lifetime * fraction * (1 - 0.5 * min(max(jitter, 0), 1))
    }

    /// Whether a hit on an entry this old, fresh for `lifetime` seconds in all, starts a refresh:
    /// only while it is still fresh (a stale one is the stale-while-revalidate path's).
    public func isDue(age: Double, lifetime: Double, jitter: Double) -> Bool {
        guard lifetime > 0, fraction > 0, age < lifetime else { return false }
        return lifetime - age <= window(lifetime: lifetime, jitter: jitter)
    }

    /// A jitter in [0, 1) from a key's hash value (any well-mixed 64 bits).
    public static func jitter(for hash: UInt64) -> Double {
        // SplitMix64's finaliser, so that nearby hashes spread.
        var z = hash &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return Double(z >> 11) / Double(1 << 53)
    }
}
