import Foundation

/// The request rates of the hottest keys, bounded to `capacity` keys: a space-saving table over
/// exponentially decayed counts (forward decay, Cormode et al. 2009).
///
/// Each request at time t adds exp((t - L) / tau) to its key's weight, for a fixed landmark L. A
/// key's rate at `now` is its weight times exp(-(now - L) / tau) / tau requests per second, so a key
/// asked r times a second for a while reads r. Weights never decay in place, so the table's order
/// does not change with time and a min-heap finds the coldest key; when the exponent grows large
/// every weight is rescaled to a new landmark at once (the order is kept).
///
/// When the table is full a new key takes the coldest key's slot and inherits its weight as
/// `error` (space-saving): it is not evicted again at once, and `rate` subtracts the inherited part,
/// so a key is never reported hotter than it is (a scan of one-time keys makes none of them hot).
/// Pure: times are nanoseconds on any monotonic clock, passed in.
public struct HotSet<Key: Hashable & Sendable>: Sendable {
    public struct Hot: Sendable, Equatable {
        public let key: Key
        /// Requests per second, at least (the inherited part left out).
        public let rate: Double
    }

    private struct Slot: Sendable {
        var key: Key
        var weight: Double
        /// The weight inherited from the key evicted for this one.
        var error: Double
    }

    public let capacity: Int
    /// The decay's time constant in seconds: a burst's weight falls to 1/e after it.
    public let tau: Double
    private var landmark: Int64
    /// A min-heap on weight.
    private var heap: [Slot] = []
    private var position: [Key: Int] = [:]

    public init(capacity: Int, tau: Double = 60, startingAt now: Int64 = 0) {
        self.capacity = max(1, capacity)
        self.tau = max(0.001, tau)
        landmark = now
    }

    public var count: Int { heap.count }

    /// Counts one request for `key` at `now` and returns the key's rate after it.
    @discardableResult
    public mutating func record(_ key: Key, at now: Int64) -> Double {
        rebaseIfNeeded(now)
        let added = exp(Double(now - landmark) / 1e9 / tau)
        if let i = position[key] {
            heap[i].weight += added
            siftDown(i)
            return rate(atIndex: position[key] ?? i, now: now)
        }
        if heap.count < capacity {
            heap.append(Slot(key: key, weight: added, error: 0))
            position[key] = heap.count - 1
            siftUp(heap.count - 1)
        } else {
            let coldest = heap[0]
            position[coldest.key] = nil
            heap[0] = Slot(key: key, weight: coldest.weight + added, error: coldest.weight)
            position[key] = 0
            siftDown(0)
        }
        return rate(atIndex: position[key] ?? 0, now: now)
    }

    /// The key's rate at `now` (0 for a key not tracked).
    public func rate(of key: Key, at now: Int64) -> Double {
        position[key].map { rate(atIndex: $0, now: now) } ?? 0
    }

    /// Below this (one request in about 12 days) a key counts as not asked at all.
    public static var negligibleRate: Double { 1e-6 }

    /// Keys whose rate is at least `minimum`, hottest first, at most `limit`.
    public func hottest(_ limit: Int, atLeast minimum: Double = 0, at now: Int64) -> [Hot] {
        heap.indices.map { Hot(key: heap[$0].key, rate: rate(atIndex: $0, now: now)) }
            .filter { $0.rate >= max(minimum, Self.negligibleRate) }
            .sorted { $0.rate > $1.rate }
            .prefix(limit).map { $0 }
    }

    /// Forgets `key`.
    public mutating func remove(_ key: Key) {
        guard let i = position.removeValue(forKey: key) else { return }
        let last = heap.removeLast()
        guard i < heap.count else { return }
        heap[i] = last
        position[last.key] = i
        siftUp(i)
        siftDown(position[last.key] ?? i)
    }

    /// Forgets every key.
    public mutating func removeAll() {
        heap.removeAll()
        position.removeAll()
    }

    private func rate(atIndex i: Int, now: Int64) -> Double {
        let slot = heap[i]
        return max(0, slot.weight - slot.error) * exp(-Double(now - landmark) / 1e9 / tau) / tau
    }

    /// Past e^300 the weights are scaled down to a landmark at `now`.
    private mutating func rebaseIfNeeded(_ now: Int64) {
        let exponent = Double(now - landmark) / 1e9 / tau
        guard exponent > 300 || exponent < -300 else { return }
        let scale = exp(-exponent)
        for i in heap.indices {
            heap[i].weight *= scale
            heap[i].error *= scale
        }
        landmark = now
    }

    private mutating func siftUp(_ start: Int) {
        var i = start
        while i > 0 {
            let parent = (i - 1) / 2
            guard heap[i].weight < heap[parent].weight else { return }
            swapAt(i, parent)
            i = parent
        }
    }

    private mutating func siftDown(_ start: Int) {
        var i = start
        while true {
            let left = 2 * i + 1
            let right = left + 1
            var smallest = i
            if left < heap.count, heap[left].weight < heap[smallest].weight { smallest = left }
            if right < heap.count, heap[right].weight < heap[smallest].weight { smallest = right }
            guard smallest != i else { return }
            swapAt(i, smallest)
            i = smallest
        }
    }

    private mutating func swapAt(_ a: Int, _ b: Int) {
        heap.swapAt(a, b)
        position[heap[a].key] = a
        position[heap[b].key] = b
    }
}
