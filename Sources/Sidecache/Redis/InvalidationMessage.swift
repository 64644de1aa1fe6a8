import HTTPCaching

/// What one instance tells the others to evict, on `<key_prefix>invalidate`:
/// `v1 <instance-id> <kind> <value>`, kind `path`, `tag`, `glob`, `regex` or `all`, prefixed with
/// `soft-` for a soft purge (mark stale instead of remove).
struct InvalidationMessage: Sendable, Equatable {
    enum Target: Sendable, Equatable {
        case path(String)
        case tag(String)
        case pattern(PurgePattern)
        case all

        /// The word for the kind in messages, answers and metrics.
        var kind: String {
            switch self {
            case .path: "url"
            case .tag: "tags"
            case .pattern(let p): p.kind == .glob ? "pattern" : "regex"
            case .all: "all"
            }
        }
    }

    let instanceID: String
    let target: Target
    let soft: Bool

    var encoded: String {
        let mode = soft ? "soft-" : ""
        switch target {
        case .path(let path): return "v1 \(instanceID) \(mode)path \(path)"
        case .tag(let tag): return "v1 \(instanceID) \(mode)tag \(tag)"
        case .pattern(let p): return "v1 \(instanceID) \(mode)\(p.kind.rawValue) \(p.source)"
        case .all: return "v1 \(instanceID) \(mode)all -"
        }
    }

    init(instanceID: String, target: Target, soft: Bool = false) {
        self.instanceID = instanceID
        self.target = target
        self.soft = soft
    }

    /// Nil for anything that is not a message this version understands.
    init?(parsing text: String) {
        let parts = text.split(separator: " ", maxSplits: 3, omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == "v1", !parts[1].isEmpty else { return nil }
        instanceID = String(parts[1])
        soft = parts[2].hasPrefix("soft-")
        let value = String(parts[3])
        switch soft ? parts[2].dropFirst(5) : parts[2] {
        case "path": target = .path(value)
        case "tag": target = .tag(value)
        case "glob":
            guard let p = try? PurgePattern(glob: value) else { return nil }
            target = .pattern(p)
        case "regex":
            guard let p = try? PurgePattern(regex: value) else { return nil }
            target = .pattern(p)
        case "all": target = .all
        default: return nil
        }
    }
}

extension MemoryStore {
    /// Applies an invalidation to this process's L1; returns the variants removed or marked stale.
    /// A pattern purge, or a soft purge of everything, walks the whole cache: call those off the
    /// event loops.
    @discardableResult
    func invalidate(_ target: InvalidationMessage.Target, mode: PurgeMode) -> Int {
        switch target {
        case .path(let path): invalidate(path: path, mode: mode)
        case .tag(let tag): invalidate(tag: tag, mode: mode)
        case .pattern(let pattern): invalidate(pathsMatching: pattern.matcher(), mode: mode)
        case .all: invalidateAll(mode: mode)
        }
    }
}

extension InvalidationMessage.Target {
    /// True when applying it to L1 may take long enough to stall an event loop.
    var scansWholeCache: Bool {
        switch self {
        case .pattern, .all: true
        case .path, .tag: false
        }
    }
}
