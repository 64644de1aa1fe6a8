import HTTPCaching
import NIOConcurrencyHelpers

/// What a request that waited on another request's fetch receives.
enum FillResult: Sendable {
    /// The fetched (or revalidated) response was stored; serve it if its variant matches.
    case entry(CachedResponse)
    /// The response turned out not to be shareable: fetch for yourself.
    case uncacheable
    /// The upstream failed; serve stale if allowed, else the error.
    case failed(UpstreamError)
    /// The leader left before fetching (its client went away): look up again, maybe leading.
    case retry
}

/// Makes N concurrent misses on one key cost one upstream request. The first request becomes the
/// leader and fetches; the others register a callback and are woken the moment the leader finishes,
/// each on its own event loop (no polling, unlike nginx's `proxy_cache_lock`).
final class FillCoalescer: Sendable {
    struct Waiter: Sendable {
        let deliver: @Sendable (FillResult) -> Void
    }

    enum Role {
        case leader
        case follower
    }

    private let inFlight = NIOLockedValueBox<[String: [Waiter]]>([:])

    /// Joins the fetch for `key`: the first caller leads (and must call `finish`); later callers are
    /// followers whose waiter is called once. A nil waiter only asks to lead (background refresh):
    /// if a fetch is already running it is left alone.
    func join(_ key: String, waiter: Waiter?) -> Role {
        inFlight.withLockedValue { table in
            if table[key] != nil {
                if let waiter { table[key]?.append(waiter) }
                return .follower
            }
            table[key] = []
            return .leader
        }
    }

    /// Fetches under way (keys with a leader that has not finished).
    var count: Int { inFlight.withLockedValue { $0.count } }

    /// Ends the fetch for `key` and wakes its followers with the result.
    func finish(_ key: String, with result: FillResult) {
        let waiters = inFlight.withLockedValue { $0.removeValue(forKey: key) } ?? []
        for waiter in waiters { waiter.deliver(result) }
    }
}
