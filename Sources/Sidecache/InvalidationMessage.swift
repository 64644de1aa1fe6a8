import HTTPCaching

/// What one instance tells the others to evict, on `<key_prefix>invalidate`:
/// `v1 <instance-id> <kind> <value>`, kind `path`, `tag` or `all`.
struct InvalidationMessage: Sendable, Equatable {
    enum Target: Sendable, Equatable {
        case path(String)
        case tag(String)
        case all
    }

    let instanceID: String
    let target: Target

    var encoded: String {
        switch target {
        case .path(let path): return "v1 \(instanceID) path \(path)"
        case .tag(let tag): return "v1 \(instanceID) tag \(tag)"
        case .all: return "v1 \(instanceID) all -"
        }
    }

    init(instanceID: String, target: Target) {
        self.instanceID = instanceID
        self.target = target
    }

    /// Nil for anything that is not a message this version understands.
    init?(parsing text: String) {
        let parts = text.split(separator: " ", maxSplits: 3, omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == "v1", !parts[1].isEmpty else { return nil }
        instanceID = String(parts[1])
        switch parts[2] {
        case "path": target = .path(String(parts[3]))
        case "tag": target = .tag(String(parts[3]))
        case "all": target = .all
        default: return nil
        }
    }
}

extension MemoryStore {
    /// Applies an invalidation to this process's L1; returns the entries removed.
    @discardableResult
    func invalidate(_ target: InvalidationMessage.Target) -> Int {
        switch target {
        case .path(let path): invalidate(path: path)
        case .tag(let tag): invalidate(tag: tag)
        case .all: removeAll()
        }
    }
}
