import HTTPCaching
import NIOCore
import NIOHTTP1

/// The cache tier behind this instance's memory cache, shared by every instance (today Redis:
/// `RedisTier`). A fill's leader asks it before the upstream, a fill stores what it fetched in it,
/// and purges go through it to the other instances. Every operation is best effort: a tier that
/// fails or is late answers nothing, and the request goes on to the upstream.
///
/// The memory cache (`MemoryStore`) is not behind this protocol on purpose: a hit there is
/// answered synchronously, without a callback or an existential call.
protocol SharedCacheTier: AnyObject, Sendable {
    /// The stored variant for the request's headers, or nil (missing, undecodable, failed, late),
    /// delivered on `loop`.
    func lookup(_ key: CacheKey, requestHeaders: HTTPHeaders, now: CacheInstant, on loop: any EventLoop,
                _ done: @escaping (CachedResponse?) -> Void)
    /// Stores `entry` for as long as it may be of use (fresh, stale-servable or validatable).
    func store(_ entry: CachedResponse, for key: CacheKey, now: CacheInstant, on loop: any EventLoop)
    /// Removes (or with `soft`, marks stale) what `target` names, and tells the other instances;
    /// the count of variants it changed.
    func invalidate(_ target: InvalidationMessage.Target, soft: Bool, now: CacheInstant, on loop: any EventLoop) -> EventLoopFuture<Int>
    /// Takes the lease to refresh `key` for `milliseconds`, unless another instance holds it:
    /// true when taken, false when held elsewhere, nil when the tier did not answer. On `loop`.
    func lease(_ key: CacheKey, milliseconds: Int64, holder: String, on loop: any EventLoop, _ done: @escaping (Bool?) -> Void)
    /// Adds this instance's hot keys (`SharedHotness` members and scores) to the hot set every
    /// instance shares, dropping what decayed below `floorScore` and keeping the hottest `most`.
    func recordHot(_ members: [(member: String, score: Double)], floorScore: Double, most: Int, on loop: any EventLoop) -> EventLoopFuture<Void>
    /// The shared hot set's `limit` hottest members, hottest first.
    func hotMembers(limit: Int, on loop: any EventLoop) -> EventLoopFuture<[(member: String, score: Double)]>
}

extension RedisTier: SharedCacheTier {}
