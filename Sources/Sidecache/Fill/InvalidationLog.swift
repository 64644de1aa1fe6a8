import HTTPCaching
import NIOConcurrencyHelpers
import Synchronization

/// The invalidations of the last moments, numbered, so a cache fill can tell whether one that
/// happened while it waited for the upstream matches what it is about to store. Without it, a
/// purge (or a write's dependency invalidation) that lands during a fill is undone when the fill
/// stores the response it fetched before the purge, and every later request hits the old content
/// (Varnish and nginx have this race).
///
/// A fill takes `epoch` when it starts; when it is about to store, `verdict(since:path:tags:)`
/// says whether an invalidation since then matched it. The epoch is an atomic: a fill during which
/// nothing was invalidated (nearly every fill) takes no lock.
final class InvalidationLog: Sendable {
    /// What an invalidation since a fill started does to what the fill would store.
    enum Verdict: Equatable {
        /// A purge matched: the fill answers its clients but stores nothing.
        case removed
        /// A soft purge matched: the fill stores the entry already stale.
        case markedStale
    }

    private struct Record {
        let epoch: UInt64
        let target: InvalidationMessage.Target
        let soft: Bool
    }

    private struct Records {
        var ring: [Record] = []
        var next = 0
    }

    private let counter = Atomic<UInt64>(0)
    private let records = NIOLockedValueBox(Records())
    let capacity: Int

    /// `capacity` invalidations are remembered; a fill that outlived more than that many stores
    /// nothing (it cannot tell whether one of the forgotten ones matched).
    init(capacity: Int = 4096) {
        self.capacity = max(1, capacity)
    }

    /// The number of the last invalidation: what a fill starting now compares against later.
    var epoch: UInt64 { counter.load(ordering: .acquiring) }

    /// Records an invalidation before it is applied, so a fill storing at the same moment sees it.
    func record(_ target: InvalidationMessage.Target, soft: Bool) {
        records.withLockedValue { r in
            let epoch = counter.wrappingAdd(1, ordering: .releasing).newValue
            let record = Record(epoch: epoch, target: target, soft: soft)
            if r.ring.count < capacity {
                r.ring.append(record)
            } else {
                r.ring[r.next] = record
                r.next = (r.next + 1) % capacity
            }
        }
    }

    /// Whether an invalidation recorded after `epoch` matches an entry of `path` carrying `tags`:
    /// nil when none did. A purge wins over a soft purge.
    func verdict(since epoch: UInt64, path: String, tags: [String]) -> Verdict? {
        guard counter.load(ordering: .acquiring) != epoch else { return nil }
        return records.withLockedValue { r -> Verdict? in
            let oldest = r.ring.count < capacity ? (r.ring.first?.epoch ?? 0) : r.ring[r.next].epoch
            if oldest > epoch + 1 { return .removed }  // some of those since the fill began are forgotten
            var verdict: Verdict?
            for record in r.ring where record.epoch > epoch && Self.matches(record.target, path: path, tags: tags) {
                if !record.soft { return .removed }
                verdict = .markedStale
            }
            return verdict
        }
    }

    private static func matches(_ target: InvalidationMessage.Target, path: String, tags: [String]) -> Bool {
        switch target {
        case .path(let p): p == path
        case .tag(let t): tags.contains(t)
        case .pattern(let pattern): pattern.matcher()(path)
        case .all: true
        }
    }
}
