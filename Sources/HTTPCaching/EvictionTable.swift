/// Which entry a full cache gives up.
public enum EvictionPolicy: String, Sendable, Equatable, CaseIterable {
    /// S3-FIFO (Yang et al., SOSP 2023): new keys enter a small FIFO and only those asked for again
    /// while there reach the main FIFO, so a scan of one-time URLs cannot flush the hot set. A hit
    /// bumps a small counter and relinks nothing.
    case s3fifo
    /// Least recently used, as nginx and Varnish evict: a hit moves the entry to the front.
    case lru
}

/// A hash table of costed entries that knows which to evict: O(1) lookup, insert, removal and
/// eviction, under `EvictionPolicy`. Nodes live in one array linked by indices, so the table
/// allocates per growth, not per entry, and holds no reference cycles.
///
/// Under S3-FIFO (per table, i.e. per shard of the memory store):
/// - a new key enters the small queue, or the main queue when its hash is in the ghost queue (it
///   was evicted from the small queue lately and is asked for again); a key costing more than the
///   small queue's share goes straight to main (kept out, it would be uncacheable at any size);
/// - a hit raises the entry's counter (at most 3);
/// - evicting from the small queue (while it holds more than `smallShare` of the capacity): an
///   entry hit at least `promotionThreshold` times moves to main with its counter cleared, the
///   others leave and their hash joins the ghost queue (as many hashes as main holds entries);
/// - evicting from main: an entry with a non-zero counter goes round again with it decremented.
/// Under LRU every entry is in main, and a hit moves it to the back of the queue.
struct EvictionTable<Key: Hashable, Value> {
    fileprivate struct Node {
        var key: Key?
        var value: Value?
        var cost: Int
        var frequency: UInt8
        var inSmall: Bool
        var newer: Int
        var older: Int
    }

    /// A FIFO of nodes linked by index: `oldest` leaves first.
    fileprivate struct Queue {
        var oldest = -1
        var newest = -1
        var count = 0
        var bytes = 0
    }

    /// What the table did, for `/stats` and `/metrics`.
    struct Counters: Equatable {
        var promotions = 0
        var ghostHits = 0
        var evictedFromSmall = 0
        var evictedFromMain = 0
    }

    private(set) var policy: EvictionPolicy
    let promotionThreshold: UInt8
    /// The bytes the table is sized for: the small queue's share is taken from it.
    var capacity: Int
    private var nodes: [Node] = []
    private var freeSlots: [Int] = []
    private var slots: [Key: Int] = [:]
    private var small = Queue()
    private var main = Queue()
    private var ghost = GhostQueue()
    private(set) var counters = Counters()

    /// The small queue's share of the capacity (S3-FIFO's 10%).
    static var smallShare: Int { 10 }
    static var maxFrequency: UInt8 { 3 }

    init(policy: EvictionPolicy, capacity: Int, promotionThreshold: UInt8 = 1) {
        self.policy = policy
        self.capacity = capacity
        self.promotionThreshold = promotionThreshold
    }

    var count: Int { slots.count }
    var smallQueue: (entries: Int, bytes: Int) { (small.count, small.bytes) }
    var mainQueue: (entries: Int, bytes: Int) { (main.count, main.bytes) }
    var ghostEntries: Int { ghost.count }

    private var smallTarget: Int { capacity / 100 * Self.smallShare }

    /// The value, counted as asked for: its counter rises (S3-FIFO) or it moves to the back (LRU).
    mutating func get(_ key: Key) -> Value? {
        guard let slot = slots[key] else { return nil }
        touch(slot)
        return nodes[slot].value
    }

    func peek(_ key: Key) -> Value? {
        slots[key].flatMap { nodes[$0].value }
    }

    /// Replaces the value of a key already present without counting a use.
    mutating func replace(_ key: Key, _ value: Value, cost: Int) {
        guard let slot = slots[key] else { return }
        nodes[slot].value = value
        setCost(slot, cost)
    }

    /// Inserts, or replaces and counts a use; returns the value it replaced.
    @discardableResult
    mutating func set(_ key: Key, _ value: Value, cost: Int) -> Value? {
        if let slot = slots[key] {
            let old = nodes[slot].value
            nodes[slot].value = value
            setCost(slot, cost)
            touch(slot)
            return old
        }
        let toMain: Bool
        switch policy {
        case .lru:
            toMain = true
        case .s3fifo:
            let remembered = ghost.remove(key.hashValue)
            if remembered { counters.ghostHits += 1 }
            toMain = remembered || cost > smallTarget
        }
        let node = Node(key: key, value: value, cost: cost, frequency: 0, inSmall: !toMain, newer: -1, older: -1)
        let slot: Int
        if let free = freeSlots.popLast() {
            slot = free
            nodes[slot] = node
        } else {
            slot = nodes.count
            nodes.append(node)
        }
        slots[key] = slot
        append(slot)
        return nil
    }

    @discardableResult
    mutating func remove(_ key: Key) -> Value? {
        guard let slot = slots.removeValue(forKey: key) else { return nil }
        unlink(slot)
        let value = nodes[slot].value
        nodes[slot] = Node(key: nil, value: nil, cost: 0, frequency: 0, inSmall: false, newer: -1, older: -1)
        freeSlots.append(slot)
        return value
    }

    /// Removes the entry the policy gives up first, and hands it back.
    mutating func removeVictim() -> (key: Key, value: Value)? {
        while slots.count > 0 {
            if small.oldest >= 0, small.bytes > smallTarget || main.oldest < 0 {
                let slot = small.oldest
                if nodes[slot].frequency >= promotionThreshold {
                    // Asked for again while new: it joins the main queue.
                    unlink(slot)
                    nodes[slot].inSmall = false
                    nodes[slot].frequency = 0
                    append(slot)
                    counters.promotions += 1
                    continue
                }
                guard let victim = take(slot) else { return nil }
                ghost.insert(victim.key.hashValue, capacity: max(main.count, 64))
                counters.evictedFromSmall += 1
                return victim
            }
            let slot = main.oldest
            guard slot >= 0 else { return nil }
            if policy == .s3fifo, nodes[slot].frequency > 0 {
                nodes[slot].frequency -= 1
                unlink(slot)
                append(slot)
                continue
            }
            guard let victim = take(slot) else { return nil }
            counters.evictedFromMain += 1
            return victim
        }
        return nil
    }

    /// Switches the policy, keeping every entry (a reload): under LRU the small queue joins main.
    mutating func setPolicy(_ new: EvictionPolicy) {
        guard new != policy else { return }
        policy = new
        guard new == .lru else { return }
        while small.oldest >= 0 {
            let slot = small.oldest
            unlink(slot)
            nodes[slot].inSmall = false
            append(slot)
        }
        ghost = GhostQueue()
    }

    mutating func removeAll() {
        nodes.removeAll()
        freeSlots.removeAll()
        slots.removeAll()
        small = Queue()
        main = Queue()
        ghost = GhostQueue()
    }

    /// Every key, in no particular order.
    var keys: [Key] { Array(slots.keys) }

    // MARK: -

    private mutating func touch(_ slot: Int) {
        switch policy {
        case .s3fifo:
            if nodes[slot].frequency < Self.maxFrequency { nodes[slot].frequency += 1 }
        case .lru:
            guard slot != main.newest else { return }
            unlink(slot)
            append(slot)
        }
    }

    private mutating func take(_ slot: Int) -> (key: Key, value: Value)? {
        guard let key = nodes[slot].key, let value = remove(key) else { return nil }
        return (key, value)
    }

    private mutating func setCost(_ slot: Int, _ cost: Int) {
        let delta = cost - nodes[slot].cost
        nodes[slot].cost = cost
        if nodes[slot].inSmall { small.bytes += delta } else { main.bytes += delta }
    }

    /// Links the node as the newest of its queue.
    private mutating func append(_ slot: Int) {
        let inSmall = nodes[slot].inSmall
        var q = inSmall ? small : main
        nodes[slot].older = q.newest
        nodes[slot].newer = -1
        if q.newest >= 0 { nodes[q.newest].newer = slot }
        q.newest = slot
        if q.oldest < 0 { q.oldest = slot }
        q.count += 1
        q.bytes += nodes[slot].cost
        if inSmall { small = q } else { main = q }
    }

    private mutating func unlink(_ slot: Int) {
        let inSmall = nodes[slot].inSmall
        var q = inSmall ? small : main
        let newer = nodes[slot].newer
        let older = nodes[slot].older
        if newer >= 0 { nodes[newer].older = older } else { q.newest = older }
        if older >= 0 { nodes[older].newer = newer } else { q.oldest = newer }
        nodes[slot].newer = -1
        nodes[slot].older = -1
        q.count -= 1
        q.bytes -= nodes[slot].cost
        if inSmall { small = q } else { main = q }
    }
}

/// The hashes of keys evicted from the small queue lately, oldest first, bounded; only hashes, so
/// a flood of one-time keys costs a few bytes each here and nothing more.
struct GhostQueue: Sendable {
    /// Hashes in the order they came; an entry whose hash was removed or inserted again since is
    /// stale and skipped when it comes round.
    private var order: [Int] = []
    private var start = 0
    /// The absolute position of `order[0]`.
    private var base = 0
    /// hash -> the absolute position of its live entry.
    private var members: [Int: Int] = [:]

    var count: Int { members.count }
    /// Hashes held in the order, live or stale: at most twice the capacity.
    var storedHashes: Int { order.count - start }

    mutating func insert(_ hash: Int, capacity: Int) {
        let capacity = max(1, capacity)
        // Stale entries (removed by a ghost hit) count too, or a key evicted and asked for again
        // over and over would grow the order without end.
        while members.count >= capacity || storedHashes >= 2 * capacity, start < order.count {
            let oldest = order[start]
            if members[oldest] == base + start { members[oldest] = nil }
            start += 1
        }
        members[hash] = base + order.count
        order.append(hash)
        if start > 1024 && start * 2 > order.count {
            order.removeFirst(start)
            base += start
            start = 0
        }
    }

    /// Whether the hash was there; it is forgotten either way.
    mutating func remove(_ hash: Int) -> Bool {
        members.removeValue(forKey: hash) != nil
    }
}

extension EvictionTable: Sendable where Key: Sendable, Value: Sendable {}
extension EvictionTable.Node: Sendable where Key: Sendable, Value: Sendable {}
extension EvictionTable.Queue: Sendable {}
extension EvictionTable.Counters: Sendable {}
