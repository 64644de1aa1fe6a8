import HTTPCaching
import NIOCore
import NIOHTTP1

/// The coding of a stored entry one client gets: the gzip copy for a client that accepts gzip, the
/// body decoded for a client that does not when the origin sent it gzipped, else the entry as stored.
struct StoredRepresentation {
    let body: ByteBuffer
    /// Pre-encoded head for the hit fast path; nil for a copy made for this response only.
    let encodedHead: EncodedHead?
    let etag: String?
    private let source: Source

    /// Where the header list comes from, built only when a response needs it (not on the fast path).
    private enum Source {
        case asStored(CachedResponse)
        case gzipCopy(CachedResponse)
        case decoded(HTTPHeaders)
    }

    var headers: HTTPHeaders {
        switch source {
        case .asStored(let entry): entry.headers
        case .gzipCopy(let entry): entry.gzipHeaders ?? entry.headers
        case .decoded(let headers): headers
        }
    }

    /// `acceptsGzip`: the client's `Accept-Encoding` allows gzip (only asked of an entry that
    /// negotiates its coding).
    init(_ entry: CachedResponse, acceptsGzip: Bool, decodeLimit: Int) throws {
        guard entry.negotiatesEncoding else {
            self.init(source: .asStored(entry), body: entry.body, encodedHead: entry.encodedHead, etag: entry.etag)
            return
        }
        if acceptsGzip, let gzip = entry.gzip {
            self.init(source: .gzipCopy(entry), body: gzip.body, encodedHead: gzip.encodedHead, etag: gzip.etag)
        } else if !acceptsGzip, entry.isGzipEncoded, entry.body.readableBytes > 0 {
            let decoded = try ContentCoding.gunzip(entry.body, limit: decodeLimit)
            let headers = ContentCoding.headers(entry.headers, coding: nil, length: decoded.readableBytes, etagSuffix: "identity")
            self.init(source: .decoded(headers), body: decoded, encodedHead: nil, etag: headers.first(name: "etag"))
        } else {
            self.init(source: .asStored(entry), body: entry.body, encodedHead: entry.encodedHead, etag: entry.etag)
        }
    }

    private init(source: Source, body: ByteBuffer, encodedHead: EncodedHead?, etag: String?) {
        self.source = source
        self.body = body
        self.encodedHead = encodedHead
        self.etag = etag
    }
}
