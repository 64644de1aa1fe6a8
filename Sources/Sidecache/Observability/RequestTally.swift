import HTTPCaching
import NIOHTTP1
import SidecacheConfig
import Synchronization

/// One route's request counts by method class, status class and cache outcome. Counting a request
/// is one relaxed atomic add: no lock and no hashing on the request path. `/stats` sums the counts
/// per outcome; `/metrics` exports them as `sidecache_requests_total` when it renders.
final class RequestTally: @unchecked Sendable {  // every slot is an atomic; the pointer never changes
    /// One series of `sidecache_requests_total` within the route.
    struct Series: Hashable, Sendable {
        let method: SidecacheMetrics.MethodClass
        /// 0 when no response was sent, else the status code's first digit (1 to 5).
        let statusClass: Int
        let outcome: CacheOutcome
    }

    let route: String
    private let slots: UnsafeMutablePointer<Atomic<Int>>
    /// Time from the request's head to the end of its response, and to the upstream's response head.
    let totalTime = LatencyHistogram()
    let upstreamTime = LatencyHistogram()
    /// Requests refused by the route's rate limit (429; shadow-mode refusals are not).
    private let refusals = Atomic<Int>(0)

    private static let methods = SidecacheMetrics.MethodClass.allCases
    private static let statusClasses = 6
    private static let outcomes = CacheOutcome.allCases.count
    static let slotCount = methods.count * statusClasses * outcomes

    init(route: String) {
        self.route = route
        slots = .allocate(capacity: Self.slotCount)
        for i in 0..<Self.slotCount { (slots + i).initialize(to: Atomic(0)) }
    }

    deinit {
        slots.deinitialize(count: Self.slotCount)
        slots.deallocate()
    }

    func record(method: HTTPMethod, status: UInt, outcome: CacheOutcome) {
        let series = Series(method: SidecacheMetrics.methodClass(method), statusClass: Self.statusClass(status), outcome: outcome)
        slots[Self.slot(series)].wrappingAdd(1, ordering: .relaxed)
    }

    func recordRefusal() {
        refusals.wrappingAdd(1, ordering: .relaxed)
    }

    var rateLimited: Int { refusals.load(ordering: .relaxed) }

    func count(_ series: Series) -> Int {
        slots[Self.slot(series)].load(ordering: .relaxed)
    }

    /// The series counted at least once, with their counts.
    var counted: [(series: Series, count: Int)] {
        var found: [(series: Series, count: Int)] = []
        for method in Self.methods {
            for statusClass in 0..<Self.statusClasses {
                for outcome in CacheOutcome.allCases {
                    let series = Series(method: method, statusClass: statusClass, outcome: outcome)
                    let n = count(series)
                    if n > 0 { found.append((series, n)) }
                }
            }
        }
        return found
    }

    /// Counts per cache outcome, over all methods and statuses.
    var byOutcome: TrafficStats.Counts {
        var counts = TrafficStats.Counts()
        for (series, n) in counted { counts.byOutcome[series.outcome.index] += n }
        return counts
    }

    /// Counts per cache outcome of the requests answered with a 5xx status.
    var serverErrorsByOutcome: TrafficStats.Counts {
        var counts = TrafficStats.Counts()
        for (series, n) in counted where series.statusClass == 5 { counts.byOutcome[series.outcome.index] += n }
        return counts
    }

    static func statusClass(_ status: UInt) -> Int {
        (100..<600).contains(status) ? Int(status / 100) : 0
    }

    private static func slot(_ series: Series) -> Int {
        (series.method.index * statusClasses + series.statusClass) * outcomes + series.outcome.index
    }
}

/// The tallies of one config snapshot's routes, by route position, and the one for requests that
/// matched no route. Made when a snapshot becomes active; a route keeps its tally across reloads
/// while its name stays.
struct RouteTallies: Sendable {
    private let byIndex: [RequestTally]
    private let unrouted: RequestTally

    init(_ snapshot: ConfigSnapshot, stats: TrafficStats) {
        byIndex = snapshot.routes.map { stats.tally(for: $0.name) }
        unrouted = stats.tally(for: TrafficStats.noRoute)
    }

    func tally(for route: CompiledRoute?) -> RequestTally {
        guard let route, route.index < byIndex.count else { return unrouted }
        return byIndex[route.index]
    }
}

extension SidecacheMetrics.MethodClass {
    var index: Int {
        switch self {
        case .read: 0
        case .write: 1
        case .other: 2
        }
    }
}
