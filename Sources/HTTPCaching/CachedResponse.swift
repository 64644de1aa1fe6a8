import NIOCore
import NIOHTTP1
import Synchronization

/// One stored response: immutable, shared by reference between event loops and the store, written
/// to any number of client channels without copying its body.
public final class CachedResponse: Sendable {
    public let status: HTTPResponseStatus
    public let body: ByteBuffer
    /// When the response was received (`response_time` of RFC 9111 §4.2.3).
    public let responseTime: CacheInstant
    /// `corrected_initial_age` of §4.2.3, fixed when the response was received.
    public let correctedInitialAge: CacheDuration
    public let terms: StorageTerms
    public let etag: String?
    public let lastModified: String?
    /// Lowercased names from the response's `Vary` and the request's values for them (§4.1).
    public let varyNames: [String]
    public let varyValues: [String]
    /// Surrogate keys for purging (route templates and the origin's `Surrogate-Key`/`Cache-Tag`).
    public let tags: [String]
    /// Bytes this entry accounts for in a byte-bounded store.
    public let cost: Int
    /// The HTTP/1.1 status line and stored header fields, encoded once when stored: hits write these
    /// bytes, and the entry keeps no other copy of its header fields (`headers` parses them back).
    public let encodedHead: EncodedHead
    /// The body gzipped once (nil when it was not compressed, or not yet), with its own encoded head
    /// (`Content-Encoding: gzip`, its length, a suffixed ETag) in the same allocation as the entry's.
    public let gzip: GzipCopy?
    /// A gzip copy may still be made, when a client that accepts gzip first asks for the entry: the
    /// route allowed it when the response was stored (which then added `Vary: Accept-Encoding`).
    public let gzipPending: Bool
    /// The pending copy's compressed body, made once for this body however many requests (the
    /// followers of a coalesced fill, two event loops) ask for it together.
    private let pendingGzip: PendingGzip?
    /// Where a table that counts this entry's hits (the warmer's hot set) last found its key, or
    /// -1: a hint the table checks against its own slot before using it, so that a hit on a
    /// large table needs no lookup of the key there.
    public let counterSlot = Atomic<Int32>(-1)

    private final class PendingGzip: Sendable {
        /// nil: not made yet; .some(nil): gzip does not make the body smaller.
        private let made = Mutex<ByteBuffer??>(nil)

        func body(of body: ByteBuffer, level: Int) -> ByteBuffer? {
            made.withLock { made in
                if let done = made { return done }
                var copy: ByteBuffer?
                if let gzipped = try? ContentCoding.gzip(body, level: level), gzipped.readableBytes < body.readableBytes {
                    copy = gzipped
                }
                made = .some(copy)
                return copy
            }
        }
    }

    /// The body gzipped for a pending copy (nil when gzip does not make it smaller), compressed at
    /// most once per entry and its soft-purged copies.
    public func pendingGzipBody(level: Int) -> ByteBuffer? {
        pendingGzip?.body(of: body, level: level)
    }
    /// The stored body itself is gzip, as the origin sent it: clients without gzip get it decoded.
    public let isGzipEncoded: Bool

    public struct GzipCopy: Sendable {
        public let body: ByteBuffer
        public let encodedHead: EncodedHead
        public let etag: String?
    }

    /// End-to-end headers as they are sent (hop-by-hop fields removed, `Content-Length` set),
    /// parsed back from the encoded head: for the paths that are not a plain HTTP/1.1 hit.
    public var headers: HTTPHeaders { encodedHead.headers }

    /// The header fields of the gzip copy (the ones its encoded head holds).
    public var gzipHeaders: HTTPHeaders? { gzip?.encodedHead.headers }

    /// True when the response depends on the client's `Accept-Encoding`.
    public var negotiatesEncoding: Bool { gzip != nil || isGzipEncoded || gzipPending }

    public convenience init(
        status: HTTPResponseStatus,
        headers: HTTPHeaders,
        body: ByteBuffer,
        requestTime: CacheInstant,
        responseTime: CacheInstant,
        terms: StorageTerms,
        varyNames: [String],
        varyValues: [String],
        tags: [String],
        gzipBody: ByteBuffer? = nil,
        gzipPending: Bool = false
    ) {
        // §4.2.3: apparent_age = max(0, response_time - date_value);
        // corrected_age_value = age_value + response_delay;
        // corrected_initial_age = max(apparent_age, corrected_age_value).
        let dateValue = terms.originDate.map { CacheInstant(seconds: $0) } ?? responseTime
        let apparentAge = max(CacheDuration.zero, responseTime - dateValue)
        let responseDelay = max(CacheDuration.zero, responseTime - requestTime)
        let correctedAgeValue = CacheDuration.seconds(terms.originAge) + responseDelay
        self.init(status: status, headers: headers, body: body, responseTime: responseTime,
                  correctedInitialAge: max(apparentAge, correctedAgeValue), terms: terms,
                  varyNames: varyNames, varyValues: varyValues, tags: tags, gzipBody: gzipBody, gzipPending: gzipPending)
    }

    /// An entry whose initial age is already known: one read back from a shared tier.
    public init(
        status: HTTPResponseStatus,
        headers: HTTPHeaders,
        body: ByteBuffer,
        responseTime: CacheInstant,
        correctedInitialAge: CacheDuration,
        terms: StorageTerms,
        varyNames: [String],
        varyValues: [String],
        tags: [String],
        gzipBody: ByteBuffer? = nil,
        gzipPending: Bool = false
    ) {
        self.status = status
        self.body = body
        self.responseTime = responseTime
        self.correctedInitialAge = correctedInitialAge
        self.terms = terms
        self.etag = headers.first(name: "etag")
        self.lastModified = headers.first(name: "last-modified")
        self.varyNames = varyNames
        self.varyValues = varyValues
        self.tags = tags
        self.isGzipEncoded = ContentCoding.encoding(of: headers) == "gzip"
        self.gzipPending = gzipPending && gzipBody == nil
        self.pendingGzip = self.gzipPending ? PendingGzip() : nil
        if let gzipBody {
            let gzipHeaders = ContentCoding.headers(headers, coding: "gzip", length: gzipBody.readableBytes, etagSuffix: "gzip")
            let heads = EncodedHead.encode(status: status, [headers, gzipHeaders])
            self.encodedHead = heads[0]
            self.gzip = GzipCopy(body: gzipBody, encodedHead: heads[1], etag: gzipHeaders.first(name: "etag"))
        } else {
            self.encodedHead = EncodedHead(status: status, headers: headers)
            self.gzip = nil
        }
        // Small buffers count by the storage they need (NIO rounds it up to a power of two); a body
        // counts by its bytes (a big buffer's untouched pages take no memory).
        let gzipCost = gzip.map { Self.allocated($0.body.readableBytes) + 64 + Self.stringBytes($0.etag) } ?? 0
        let headBytes = encodedHead.bytes.count + (gzip?.encodedHead.bytes.count ?? 0) + 48
        self.cost = body.readableBytes + headBytes + gzipCost + (pendingGzip == nil ? 0 : 48)
            + Self.overheadBytes(validators: [etag, lastModified], varyNames: varyNames, varyValues: varyValues, tags: tags)
    }

    /// The same entry with other storage terms (a soft purge): shares every buffer.
    private init(_ entry: CachedResponse, terms: StorageTerms) {
        self.status = entry.status
        self.body = entry.body
        self.responseTime = entry.responseTime
        self.correctedInitialAge = entry.correctedInitialAge
        self.terms = terms
        self.etag = entry.etag
        self.lastModified = entry.lastModified
        self.varyNames = entry.varyNames
        self.varyValues = entry.varyValues
        self.tags = entry.tags
        self.cost = entry.cost
        self.encodedHead = entry.encodedHead
        self.gzip = entry.gzip
        self.gzipPending = entry.gzipPending
        self.pendingGzip = entry.pendingGzip
        self.isGzipEncoded = entry.isGzipEncoded
    }

    /// This entry with its gzip copy made (`gzipBody`), or with none to be made (nil: gzip did not
    /// make the body smaller). Its heads are encoded again, together; the body is shared.
    public func withGzipCopy(_ gzipBody: ByteBuffer?) -> CachedResponse {
        CachedResponse(status: status, headers: headers, body: body, responseTime: responseTime, correctedInitialAge: correctedInitialAge,
                       terms: terms, varyNames: varyNames, varyValues: varyValues, tags: tags, gzipBody: gzipBody)
    }

    /// The storage NIO allocates for `bytes`: the next power of two.
    static func allocated(_ bytes: Int) -> Int {
        bytes <= 1 ? bytes : 1 << (Int.bitWidth - (bytes - 1).leadingZeroBitCount)
    }

    /// What an entry costs in memory beyond its body and heads: the entry object, its validators and
    /// Vary values when they are too long for an inline small string, and each tag in the entry and
    /// in the store's tag index. Calibrated against RSS so that `max_bytes` bounds the process, not
    /// just bodies.
    static func overheadBytes(validators: [String?], varyNames: [String], varyValues: [String], tags: [String]) -> Int {
        var bytes = 384  // the object, its body's ByteBuffer storage header, malloc's own headers
        for text in validators { bytes += stringBytes(text) }
        for text in varyNames + varyValues { bytes += 16 + stringBytes(text) }
        if !varyNames.isEmpty { bytes += 64 }
        for tag in tags { bytes += 2 * (tag.utf8.count + 48) }
        return bytes
    }

    /// The heap block of a string too long to be stored inline (more than 15 UTF-8 bytes).
    static func stringBytes(_ text: String?) -> Int {
        guard let count = text?.utf8.count, count > 15 else { return 0 }
        return count + 48
    }

    /// `current_age` of §4.2.3.
    /// This response as if its freshness lifetime had ended at `now` (a soft purge); itself when it
    /// is stale already.
    public func expired(at now: CacheInstant) -> CachedResponse {
        guard case .fresh = freshness(at: now) else { return self }
        var shortened = terms
        shortened.freshnessLifetime = age(at: now)
        return CachedResponse(self, terms: shortened)
    }

    public func age(at now: CacheInstant) -> CacheDuration {
        correctedInitialAge + max(.zero, now - responseTime)
    }

    public func freshness(at now: CacheInstant) -> FreshnessState {
        let age = age(at: now)
        if !terms.revalidateAlways, age < terms.freshnessLifetime {
            return .fresh(remaining: terms.freshnessLifetime - age)
        }
        return .stale(staleness: terms.revalidateAlways ? max(.zero, age - terms.freshnessLifetime) : age - terms.freshnessLifetime)
    }

    /// RFC 5861 §3: may be served at once while one background request refreshes it. A window
    /// of zero (none given) allows nothing, not even at the very millisecond the entry expires:
    /// that instant served a stale copy and sent its refresh to the origin, past an L2 that
    /// another instance had just refreshed.
    public func isWithinStaleWhileRevalidate(at now: CacheInstant) -> Bool {
        guard terms.mayServeStale, !terms.revalidateAlways, terms.staleWhileRevalidate > .zero else { return false }
        if case .stale(let staleness) = freshness(at: now) { return staleness <= terms.staleWhileRevalidate }
        return false
    }

    /// RFC 5861 §4: may be served when the origin fails.
    public func isWithinStaleIfError(at now: CacheInstant) -> Bool {
        guard terms.mayServeStale else { return false }
        switch freshness(at: now) {
        case .fresh: return true
        case .stale(let staleness): return terms.staleIfError > .zero && staleness <= terms.staleIfError
        }
    }

    /// True when the entry can still serve some purpose: fresh, within a stale window, or carrying a
    /// validator that lets the origin answer 304 instead of a full body.
    public func isUseful(at now: CacheInstant) -> Bool {
        switch freshness(at: now) {
        case .fresh: return true
        case .stale(let staleness):
            if etag != nil || lastModified != nil { return true }
            return staleness <= max(terms.staleWhileRevalidate, terms.staleIfError)
        }
    }

    /// True when the request's values of the fields named by `Vary` match this variant's (§4.1).
    public func matchesVariant(of requestHeaders: HTTPHeaders) -> Bool {
        for (i, name) in varyNames.enumerated() where Self.varyValue(name, in: requestHeaders) != varyValues[i] {
            return false
        }
        return true
    }

    /// §4.1: values are compared after combining field lines and normalising whitespace.
    public static func varyValue(_ name: String, in headers: HTTPHeaders) -> String {
        if name.hasPrefix(ContentCoding.acceptancePrefix) {
            return ContentCoding.accepts(String(name.dropFirst(ContentCoding.acceptancePrefix.count)), headers) ? "accepted" : "refused"
        }
        let members = headers[canonicalForm: name]
        // RFC 9111 §4.1: values may be normalised where the field's own rules say two spellings
        // mean the same. These fields' members are case-insensitive and allow white space only as
        // OWS around ";" and "=" (RFC 9110 §12.5, RFC 4647).
        guard caseInsensitiveVaryFields.contains(name) else { return members.map { $0.trimmingSpaces() }.joined(separator: ",") }
        return members.map { member in String(member.lowercased().filter { $0 != " " && $0 != "\t" }) }.joined(separator: ",")
    }

    /// Request fields whose values are compared without regard to case or optional white space.
    static let caseInsensitiveVaryFields: Set<String> = ["accept-language", "accept-encoding", "accept-charset"]

    /// Lowercased field names listed by a response's `Vary`.
    public static func varyNames(of headers: HTTPHeaders) -> [String] {
        headers[canonicalForm: "vary"].map { $0.trimmingSpaces().lowercased() }.filter { !$0.isEmpty }
    }

    /// §4.3.4: the stored header fields updated from a 304: its fields replace the stored ones of the
    /// same name, framing fields excepted.
    public func headersRefreshed(by notModifiedHeaders: HTTPHeaders) -> HTTPHeaders {
        var merged = headers
        var replaced = Set<String>()
        for (name, _) in notModifiedHeaders {
            let lower = name.lowercased()
            guard !Self.notUpdatedBy304.contains(lower), !replaced.contains(lower) else { continue }
            replaced.insert(lower)
            merged.remove(name: lower)
            for value in notModifiedHeaders[canonicalForm: lower] { merged.add(name: name, value: String(value)) }
        }
        return merged
    }

    /// The entry after a 304: refreshed headers, the same body, and timing that starts over from the
    /// 304's receipt (`terms` come from evaluating the refreshed headers, with the 304's `Age`).
    public func refreshed(headers merged: HTTPHeaders, requestTime: CacheInstant, responseTime: CacheInstant,
                          terms newTerms: StorageTerms) -> CachedResponse {
        CachedResponse(
            status: status, headers: merged, body: body, requestTime: requestTime, responseTime: responseTime,
            terms: newTerms, varyNames: varyNames, varyValues: varyValues, tags: tags, gzipBody: gzip?.body, gzipPending: gzipPending
        )
    }

    /// §3.2: fields a cache keeps from the stored response when updating from a 304.
    static let notUpdatedBy304: Set<String> = [
        "age", "content-length", "content-encoding", "transfer-encoding", "content-range", "connection", "keep-alive",
        "te", "trailer", "upgrade", "proxy-connection",
    ]
}
