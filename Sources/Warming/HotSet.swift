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
/// The heap is needed only to push a key out, so it is built when the table first fills, not
/// before: a table with room counts a request with one lookup and one addition. It holds slot
/// numbers, so that moving a key through it swaps integers and never touches the key lookup.
///
/// When the table is full a new key takes the coldest key's slot and inherits its weight as
/// `error` (space-saving): it is not evicted again at once, and `rate` subtracts the inherited part,
/// so a key is never reported hotter than it is (a scan of one-time keys makes none of them hot).
///
/// A young key's rate is read over its own history, not over the whole time constant: the
/// decayed count less its first request, over the decayed time since that request (at least
/// `tau / 2`), so a key asked r times a second reads about r once it has been asked for half a
/// time constant, not r (1 - e^(-t/tau)) after t seconds; a key asked once reads 0. For a key
/// older than a few time constants the two readings agree.
/// Pure: times are nanoseconds on any monotonic clock, passed in.
public struct HotSet<Key: Hashable & Sendable>: Sendable {
    public struct Hot: Sendable, Equatable {
        public let key: Key
        /// Requests per second, at least (the inherited part left out).
        public let rate: Double
    }

    public let capacity: Int
    /// The decay's time constant in seconds: a burst's weight falls to 1/e after it.
    public let tau: Double
    @usableFromInline var landmark: Int64
    /// One slot per key, everything a request reads and writes side by side, so that counting a
    /// request touches one cache line (four parallel arrays touched four, on a table too big
    /// for the processor's cache).
    @usableFromInline struct Slot: Sendable {
        @usableFromInline var key: Key
        @usableFromInline var weight: Double
        /// The weight inherited from the key evicted for this one.
        @usableFromInline var error: Double
        /// The weight its first request added (0 for a seeded key, whose rate is known).
        @usableFromInline var first: Double
        /// Eight bits per key for the caller (what it keeps elsewhere about the key), cleared
        /// when the key is pushed out.
        @usableFromInline var flags: UInt8

        @inlinable init(key: Key, weight: Double, error: Double, first: Double, flags: UInt8) {
            self.key = key
            self.weight = weight
            self.error = error
            self.first = first
            self.flags = flags
        }
    }

    @usableFromInline var slots: [Slot] = []
    @usableFromInline var slot: [Key: Int] = [:]
    /// A min-heap of slots on weight, and where each slot is in it; empty until the table first
    /// fills (`ordered`).
    @usableFromInline var heap: [Int] = []
    @usableFromInline var heapIndex: [Int] = []
    @usableFromInline var ordered = false

    public init(capacity: Int, tau: Double = 60, startingAt now: Int64 = 0) {
        self.capacity = max(1, capacity)
        self.tau = max(0.001, tau)
        landmark = now
    }

    public var count: Int { slots.count }

    /// Counts one request for `key` at `now`: the key's rate after it, the key it pushed out of
    /// a full table (if any), its flags, and its slot. `hint` is where the caller last saw the
    /// key (the slot this returned); it is used only if the key is still there, else the key is
    /// looked up.
    @discardableResult
    @inlinable
    public mutating func record(_ key: Key, at now: Int64, hint: Int = -1) -> (rate: Double, evicted: Key?, flags: UInt8, slot: Int) {
        rebaseIfNeeded(now)
        let added = exp(Double(now - landmark) / 1e9 / tau)
        let found = hint >= 0 && hint < slots.count && slots[hint].key == key ? hint : slot[key]
        if let i = found {
            slots[i].weight += added
            if ordered { siftDown(heapIndex[i]) }
            return (rate(atIndex: i, current: added), nil, slots[i].flags, i)
        }
        let (at, evicted) = insert(key, weight: added, inheritingColdest: true)
        return (rate(atIndex: at, current: added), evicted, 0, at)
    }

    /// Starts tracking `key` at `rate` requests per second (a rate saved before a restart); a
    /// key tracked already keeps its own, and a full table takes it only over its coldest key.
    public mutating func seed(_ key: Key, rate: Double, at now: Int64) {
        guard slot[key] == nil, rate > 0, rate.isFinite else { return }
        rebaseIfNeeded(now)
        let weight = rate * tau * exp(Double(now - landmark) / 1e9 / tau)
        if slots.count >= capacity {
            makeOrdered()
            guard weight > slots[heap[0]].weight else { return }
        }
        insert(key, weight: weight, inheritingColdest: false)
    }

    /// Puts a new `key` in with `weight`: in a new slot while there is room, else in the coldest
    /// key's (that key is returned). `inheritingColdest` adds the coldest's weight to the
    /// newcomer's and counts it as error (space-saving). Returns the key's slot.
    @inlinable @discardableResult
    mutating func insert(_ key: Key, weight: Double, inheritingColdest: Bool) -> (at: Int, evicted: Key?) {
        guard slots.count >= capacity else {
            let i = slots.count
            slots.append(Slot(key: key, weight: weight, error: 0, first: inheritingColdest ? weight : 0, flags: 0))
            slot[key] = i
            if ordered {
                heap.append(i)
                heapIndex.append(heap.count - 1)
                siftUp(heap.count - 1)
            }
            return (i, nil)
        }
        makeOrdered()
        let i = heap[0]
        let evicted = slots[i].key
        slot[evicted] = nil
        let inherited = inheritingColdest ? slots[i].weight : 0
        slots[i] = Slot(key: key, weight: inherited + weight, error: inherited, first: inheritingColdest ? weight : 0, flags: 0)
        slot[key] = i
        siftDown(0)
        return (i, evicted)
    }

    /// Builds the heap over every slot (Floyd's, linear), the first time a key must be pushed out.
    @inlinable
    mutating func makeOrdered() {
        guard !ordered else { return }
        heap = Array(slots.indices)
        heapIndex = Array(slots.indices)
        ordered = true
        var i = heap.count / 2
        while i > 0 {
            i -= 1
            siftDown(i)
        }
    }

    @inlinable
    public func contains(_ key: Key) -> Bool { slot[key] != nil }

    /// The caller's flags of `key` (0 for a key not tracked).
    @inlinable
    public func flags(of key: Key) -> UInt8 {
        slot[key].map { slots[$0].flags } ?? 0
    }

    /// Sets (`on`) or clears the bits of `mask` on `key`; nothing for a key not tracked.
    @inlinable
    public mutating func setFlags(_ mask: UInt8, on: Bool = true, of key: Key) {
        guard let i = slot[key] else { return }
        slots[i].flags = on ? slots[i].flags | mask : slots[i].flags & ~mask
    }

    /// The key's rate at `now` (0 for a key not tracked).
    @inlinable
    public func rate(of key: Key, at now: Int64) -> Double {
        slot[key].map { rate(atIndex: $0, current: exp(Double(now - landmark) / 1e9 / tau)) } ?? 0
    }

    /// Below this (one request in about 12 days) a key counts as not asked at all.
    public static var negligibleRate: Double { 1e-6 }

    /// Keys whose rate is at least `minimum`, hottest first, at most `limit`.
    public func hottest(_ limit: Int, atLeast minimum: Double = 0, at now: Int64) -> [Hot] {
        let current = exp(Double(now - landmark) / 1e9 / tau)
        return slots.indices.map { Hot(key: slots[$0].key, rate: rate(atIndex: $0, current: current)) }
            .filter { $0.rate >= max(minimum, Self.negligibleRate) }
            .sorted { $0.rate > $1.rate }
            .prefix(limit).map { $0 }
    }

    /// Forgets `key`.
    public mutating func remove(_ key: Key) {
        guard let i = slot.removeValue(forKey: key) else { return }
        if ordered {
            // Out of the heap: the last heap entry takes its place and moves to where it belongs.
            let at = heapIndex[i]
            let last = heap.removeLast()
            if at < heap.count {
                heap[at] = last
                heapIndex[last] = at
                siftDown(siftUp(at))
            }
        }
        // Out of the slots: the last slot moves into the freed one.
        let last = slots.removeLast()
        let lastHeapIndex = ordered ? heapIndex.removeLast() : 0
        guard i < slots.count else { return }
        slots[i] = last
        slot[last.key] = i
        if ordered {
            heapIndex[i] = lastHeapIndex
            heap[lastHeapIndex] = i
        }
    }

    /// Forgets every key.
    public mutating func removeAll() {
        slots.removeAll()
        slot.removeAll()
        heap.removeAll()
        heapIndex.removeAll()
        ordered = false
    }

    @inlinable
    /// `current` is what a request now would add, exp((now - L) / tau).
    func rate(atIndex i: Int, current: Double) -> Double {
        // The decayed time since the first request is tau (1 - first / current) in the same units.
        let s = slots[i]
        guard s.first > 0 else { return max(0, s.weight - s.error) / current / tau }
        let span = max(current - s.first, current * Self.shortestSpan)
        return max(0, s.weight - s.error - s.first) / span / tau
    }

    /// 1 - e^(-1/2): a rate is read over at least half a time constant.
    @usableFromInline static var shortestSpan: Double { 0.3934693402873666 }

    /// Past e^300 the weights are scaled down to a landmark at `now`.
    @inlinable
    mutating func rebaseIfNeeded(_ now: Int64) {
        let exponent = Double(now - landmark) / 1e9 / tau
        guard exponent > 300 || exponent < -300 else { return }
        let scale = exp(-exponent)
        for i in slots.indices {
            slots[i].weight *= scale
            slots[i].error *= scale
            slots[i].first *= scale
        }
        landmark = now
    }

    /// Moves the heap entry at `start` up to its place; returns where it ended.
    @inlinable @discardableResult
    mutating func siftUp(_ start: Int) -> Int {
        var i = start
        while i > 0 {
            let parent = (i - 1) / 2
            guard slots[heap[i]].weight < slots[heap[parent]].weight else { break }
            swapAt(i, parent)
            i = parent
        }
        return i
    }

    /// Moves the heap entry at `start` down to its place; returns where it ended.
    @inlinable @discardableResult
    mutating func siftDown(_ start: Int) -> Int {
        var i = start
        let n = heap.count
        while true {
            let left = 2 * i + 1
            let right = left + 1
            var smallest = i
            if left < n, slots[heap[left]].weight < slots[heap[smallest]].weight { smallest = left }
            if right < n, slots[heap[right]].weight < slots[heap[smallest]].weight { smallest = right }
            guard smallest != i else { return i }
            swapAt(i, smallest)
            i = smallest
        }
    }

    @inlinable
    mutating func swapAt(_ a: Int, _ b: Int) {
        heap.swapAt(a, b)
        heapIndex[heap[a]] = a
        heapIndex[heap[b]] = b
    }
}
