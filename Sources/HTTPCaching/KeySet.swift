/// The cache keys an index entry (a URL path or a tag) points to. Most paths have one key, so one
/// key is held inline: a `Set` of one costs a hash table allocation per stored URL.
struct KeySet: Sendable {
    private enum Storage: Sendable {
        case one(String)
        case many(Set<String>)
    }

    private var storage: Storage

    init(_ key: String) {
        storage = .one(key)
    }

    mutating func insert(_ key: String) {
        switch storage {
        case .one(let existing):
            if existing != key { storage = .many([existing, key]) }
        case .many(var keys):
            storage = .one("")  // release the set's storage so that the insert below does not copy it
            keys.insert(key)
            storage = .many(keys)
        }
    }

    /// Removes `key`; returns true when no key is left.
    mutating func remove(_ key: String) -> Bool {
        switch storage {
        case .one(let existing):
            return existing == key
        case .many(var keys):
            storage = .one("")
            keys.remove(key)
            if keys.count == 1, let last = keys.first {
                storage = .one(last)
            } else {
                storage = .many(keys)
            }
            return keys.isEmpty
        }
    }

    var keys: [String] {
        switch storage {
        case .one(let key): [key]
        case .many(let keys): Array(keys)
        }
    }
}

extension Dictionary where Value == KeySet {
    mutating func insert(_ key: String, under name: Key) {
        if self[name] == nil {
            self[name] = KeySet(key)
        } else {
            self[name]?.insert(key)
        }
    }

    /// Mutates the set in place: copying it out first would copy every member for each removal.
    mutating func remove(_ key: String, under name: Key) {
        guard self[name]?.remove(key) == true else { return }
        self[name] = nil
    }
}
