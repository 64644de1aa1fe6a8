/// A cache key as the hot set and the top-keys count track it: hashed once per request, then
/// compared and hashed again by that number alone (two keys whose 64-bit hashes collide share a
/// count, which neither a rate estimate nor a top-ten list can tell from noise).
struct HashedKey: Hashable, Sendable {
    let hash: Int
    let name: String

    init(_ name: String) {
        self.name = name
        hash = name.hashValue
    }

    static func == (a: HashedKey, b: HashedKey) -> Bool { a.hash == b.hash }
    func hash(into hasher: inout Hasher) { hasher.combine(hash) }
}
