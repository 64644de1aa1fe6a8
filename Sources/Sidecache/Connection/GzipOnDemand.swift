import HTTPCaching
import NIOCore
import NIOHTTP1
import SidecacheConfig

/// A stored entry's gzip copy is made when a client that accepts gzip first asks for the entry, not
/// when the entry is stored: a fill costs no compression (about a quarter of a 1 KiB fill's CPU at
/// level 6), and an entry no gzip client asks for never holds a second body.
enum GzipOnDemand {
    /// Whether the route's settings let a response be gzipped (a stored one get its copy, a relayed
    /// one be compressed as it streams): an identity body of a listed type, not smaller than
    /// `min_bytes` when its size is known, not `no-transform`.
    static func allows(status: HTTPResponseStatus, headers: HTTPHeaders, bodyBytes: Int?, settings: SidecacheConfiguration.Gzip) -> Bool {
        ContentCoding.encoding(of: headers) == nil && (bodyBytes ?? settings.minBytes) >= settings.minBytes && status != .noContent
            && ContentCoding.isCompressible(contentType: headers.first(name: "content-type"), types: settings.types)
            && !CacheControl(fieldValues: headers["cache-control"]).noTransform
    }

    /// `entry` with its gzip copy made now (or with none to be made, when gzip does not make the
    /// body smaller or the copy would make the entry too large to store), put in the store in its
    /// place unless the stored entry changed meanwhile.
    static func complete(_ entry: CachedResponse, key: CacheKey, level: Int, store: MemoryStore) -> CachedResponse {
        let copy = entry.pendingGzipBody(level: level)
        var completed = entry.withGzipCopy(copy)
        // A copy the store cannot hold would be made again on every gzip request: none is kept.
        if copy != nil, !store.fits(completed) { completed = entry.withGzipCopy(nil) }
        store.replace(entry, with: completed, for: key)
        return completed
    }
}
