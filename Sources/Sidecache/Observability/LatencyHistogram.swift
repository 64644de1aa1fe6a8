import Synchronization

/// The bucket layout of a latency histogram, in microseconds: one bucket per microsecond below 8,
/// then eight buckets per power of two (each at most 12.5% wide) up to about 134 s; longer times
/// share the last bucket. Pure: the dashboard's percentiles are computed from counts laid out so.
enum LatencyBuckets {
    static let subBuckets = 8
    /// 2^27 µs ≈ 134 s: the last bucket's lower bound.
    static let maxExponent = 27
    static let count = subBuckets + (maxExponent - 3) * subBuckets + 1

    /// The bucket holding `microseconds` (negative times count as 0).
    static func index(microseconds: Int64) -> Int {
        guard microseconds >= Int64(subBuckets) else { return Int(max(0, microseconds)) }
        let exponent = 63 - microseconds.leadingZeroBitCount
        guard exponent < maxExponent else { return count - 1 }
        let sub = Int(microseconds >> (exponent - 3)) & (subBuckets - 1)
        return subBuckets + (exponent - 3) * subBuckets + sub
    }

    /// The smallest time in bucket `index`.
    static func lowerBound(_ index: Int) -> Int64 {
        guard index >= subBuckets else { return Int64(max(0, index)) }
        let exponent = (index - subBuckets) / subBuckets + 3
        let sub = Int64((index - subBuckets) % subBuckets)
        return (Int64(subBuckets) + sub) << (exponent - 3)
    }

    /// The largest time in bucket `index` (the last bucket has none; its lower bound stands in).
    static func upperBound(_ index: Int) -> Int64 {
        index >= count - 1 ? lowerBound(index) : lowerBound(index + 1) - 1
    }

    /// The `q` quantile (0...1) of the times counted in `counts`, in microseconds: the middle of
    /// the bucket that holds it. Nil when nothing was counted.
    static func quantile(_ q: Double, in counts: [Int]) -> Int64? {
        let total = counts.reduce(0, +)
        guard total > 0 else { return nil }
        // The rank of the quantile among the counted times, 1-based (nearest-rank definition).
        let rank = max(1, Int((q * Double(total)).rounded(.up)))
        var seen = 0
        for (i, n) in counts.enumerated() where n > 0 {
            seen += n
            if seen >= rank { return (lowerBound(i) + upperBound(i)) / 2 }
        }
        return upperBound(counts.count - 1)
    }

    /// `later` minus `earlier`, bucket by bucket: the times counted between two readings.
    static func difference(_ later: [Int], _ earlier: [Int]) -> [Int] {
        guard earlier.count == later.count else { return later }
        return zip(later, earlier).map { max(0, $0 - $1) }
    }
}

/// A latency histogram with the `LatencyBuckets` layout. Counting a time is one relaxed atomic
/// add; reading copies the counts.
final class LatencyHistogram: @unchecked Sendable {  // every slot is an atomic; the pointer never changes
    private let slots: UnsafeMutablePointer<Atomic<Int>>

    init() {
        slots = .allocate(capacity: LatencyBuckets.count)
        for i in 0..<LatencyBuckets.count { (slots + i).initialize(to: Atomic(0)) }
    }

    deinit {
        slots.deinitialize(count: LatencyBuckets.count)
        slots.deallocate()
    }

    func record(microseconds: Int64) {
        slots[LatencyBuckets.index(microseconds: microseconds)].wrappingAdd(1, ordering: .relaxed)
    }

    var counts: [Int] {
        (0..<LatencyBuckets.count).map { slots[$0].load(ordering: .relaxed) }
    }
}
