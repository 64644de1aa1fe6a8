/// A hash table that remembers use order: O(1) lookup, touch, insert and eviction of the least
/// recently used entry. Nodes live in one array linked by indices, so the table allocates per
/// growth, not per entry, and holds no reference cycles.
struct LRUTable<Key: Hashable, Value> {
    fileprivate struct Node {
        var key: Key?
        var value: Value?
        var newer: Int
        var older: Int
    }

    fileprivate var nodes: [Node] = []
    private var freeSlots: [Int] = []
    private var slots: [Key: Int] = [:]
    /// Most recently used.
    private var newest = -1
    /// Least recently used: evicted first.
    private var oldest = -1

    var count: Int { slots.count }

    /// The value, marked as just used.
    mutating func get(_ key: Key) -> Value? {
        guard let slot = slots[key] else { return nil }
        moveToNewest(slot)
        return nodes[slot].value
    }

    func peek(_ key: Key) -> Value? {
        slots[key].flatMap { nodes[$0].value }
    }

    /// Replaces the value of a key already present without changing its place in the use order.
    mutating func replace(_ key: Key, _ value: Value) {
        guard let slot = slots[key] else { return }
        nodes[slot].value = value
    }

    /// Inserts or replaces, marking the key as just used; returns the value it replaced.
    @discardableResult
    mutating func set(_ key: Key, _ value: Value) -> Value? {
        if let slot = slots[key] {
            let old = nodes[slot].value
            nodes[slot].value = value
            moveToNewest(slot)
            return old
        }
        let slot: Int
        if let free = freeSlots.popLast() {
            slot = free
            nodes[slot] = Node(key: key, value: value, newer: -1, older: -1)
        } else {
            slot = nodes.count
            nodes.append(Node(key: key, value: value, newer: -1, older: -1))
        }
        slots[key] = slot
        linkAsNewest(slot)
        return nil
    }

    @discardableResult
    mutating func remove(_ key: Key) -> Value? {
        guard let slot = slots.removeValue(forKey: key) else { return nil }
        unlink(slot)
        let value = nodes[slot].value
        nodes[slot] = Node(key: nil, value: nil, newer: -1, older: -1)
        freeSlots.append(slot)
        return value
    }

    mutating func removeOldest() -> (key: Key, value: Value)? {
        guard oldest >= 0, let key = nodes[oldest].key, let value = remove(key) else { return nil }
        return (key, value)
    }

    mutating func removeAll() {
        nodes.removeAll()
        freeSlots.removeAll()
        slots.removeAll()
        newest = -1
        oldest = -1
    }

    /// Keys from least to most recently used.
    /// Every key, in no particular order.
    var keys: [Key] { Array(slots.keys) }

    var keysOldestFirst: [Key] {
        var out: [Key] = []
        out.reserveCapacity(count)
        var slot = oldest
        while slot >= 0 {
            if let key = nodes[slot].key { out.append(key) }
            slot = nodes[slot].newer
        }
        return out
    }

    private mutating func moveToNewest(_ slot: Int) {
        guard slot != newest else { return }
        unlink(slot)
        linkAsNewest(slot)
    }

    private mutating func linkAsNewest(_ slot: Int) {
        nodes[slot].older = newest
        nodes[slot].newer = -1
        if newest >= 0 { nodes[newest].newer = slot }
        newest = slot
        if oldest < 0 { oldest = slot }
    }

    private mutating func unlink(_ slot: Int) {
        let newer = nodes[slot].newer
        let older = nodes[slot].older
        if newer >= 0 { nodes[newer].older = older } else { newest = older }
        if older >= 0 { nodes[older].newer = newer } else { oldest = newer }
        nodes[slot].newer = -1
        nodes[slot].older = -1
    }
}

extension LRUTable: Sendable where Key: Sendable, Value: Sendable {}
extension LRUTable.Node: Sendable where Key: Sendable, Value: Sendable {}
