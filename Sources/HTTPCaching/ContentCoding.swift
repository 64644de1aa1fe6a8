import CompressNIO
import NIOCore
import NIOHTTP1

/// gzip content coding (RFC 9110 §8.4.1.3): negotiation with `Accept-Encoding`, the headers of a
/// gzip or decoded copy of a stored response, and the compression itself (zlib through compress-nio).
public enum ContentCoding {
    /// RFC 9110 §12.5.3: gzip (or x-gzip) with q > 0, or `*` with q > 0 when gzip is not named.
    /// No `Accept-Encoding` at all means any coding is acceptable in theory, but clients that send
    /// none are in practice tools that cannot decode gzip: they get identity.
    public static func acceptsGzip(_ headers: HTTPHeaders) -> Bool {
        var gzip: Bool?
        var star: Bool?
        for (name, value) in headers where ASCII.equalsIgnoringCase(name, "accept-encoding") {
            ASCII.forEachListMember(value) { member in
                let coding = ASCII.withoutParameters(member)
                if ASCII.equalsIgnoringCase(coding, "gzip") || ASCII.equalsIgnoringCase(coding, "x-gzip") {
                    if gzip == nil { gzip = hasPositiveQuality(member) }
                } else if ASCII.equalsIgnoringCase(coding, "*") {
                    star = hasPositiveQuality(member)
                }
            }
        }
        return gzip ?? star ?? false
    }

    /// Whether the client accepts every coding of `codings` (a response's lowercased
    /// `Content-Encoding` list, as `encoding(of:)` gives it): each named with q > 0, or `*` with
    /// q > 0 when it is not named (RFC 9110 §12.5.3). gzip keeps its `x-gzip` alias.
    public static func accepts(_ codings: String, _ headers: HTTPHeaders) -> Bool {
        for coding in codings.split(separator: ",") {
            let wanted = coding.trimmingSpaces()
            if wanted == "gzip" || wanted == "x-gzip" {
                if !acceptsGzip(headers) { return false }
                continue
            }
            var named: Bool?
            var star: Bool?
            for (name, value) in headers where ASCII.equalsIgnoringCase(name, "accept-encoding") {
                ASCII.forEachListMember(value) { member in
                    let token = String(decoding: ASCII.withoutParameters(member), as: UTF8.self).lowercased()
                    if token == wanted {
                        if named == nil { named = hasPositiveQuality(member) }
                    } else if token == "*" {
                        star = hasPositiveQuality(member)
                    }
                }
            }
            if !(named ?? star ?? false) { return false }
        }
        return true
    }

    /// A `Vary` dimension of sidecache's own for an entry stored in a coding it cannot serve to
    /// everyone (br, zstd, deflate, gzip under no-transform): the entry matches only requests that
    /// accept the coding. The name holds a colon, so no field named by a real `Vary` can equal it.
    public static let acceptancePrefix = "accept-encoding:"

    public static func acceptanceVaryName(for codings: String) -> String { acceptancePrefix + codings }

    /// RFC 9110 §12.4.2: a member's weight, 1 without a `q` parameter.
    private static func hasPositiveQuality(_ member: UnsafeBufferPointer<UInt8>) -> Bool {
        let text = String(decoding: member, as: UTF8.self)
        var q = 1.0
        for parameter in text.split(separator: ";").dropFirst() {
            let p = parameter.trimmingSpaces().lowercased()
            if p.hasPrefix("q="), let v = Double(p.dropFirst(2)) { q = v }
        }
        return q > 0
    }

    /// The coding of a response: nil for identity (no `Content-Encoding`, or `identity`), else the
    /// lowercased list as sent (`gzip`, `br`, `gzip, br` ...).
    public static func encoding(of headers: HTTPHeaders) -> String? {
        var codings: [String] = []
        for (name, value) in headers where ASCII.equalsIgnoringCase(name, "content-encoding") {
            ASCII.forEachListMember(value) { coding in
                if !ASCII.equalsIgnoringCase(coding, "identity") { codings.append(String(decoding: coding, as: UTF8.self).lowercased()) }
            }
        }
        return codings.isEmpty ? nil : codings.joined(separator: ", ")
    }

    /// An entity-tag for another coding of the same representation: `"abc"` -> `"abc-gzip"`, keeping
    /// weakness, so a conditional request for one coding never matches the other (RFC 9110 §8.8.3.3).
    public static func etag(_ tag: String, suffix: String) -> String {
        guard tag.hasSuffix("\""), tag.utf8.count >= 2 else { return tag }
        return String(tag.dropLast()) + "-" + suffix + "\""
    }

    /// The headers of a coded copy: `Content-Encoding`, `Content-Length` and `ETag` for it, and
    /// `Vary: Accept-Encoding` so shared caches downstream keep the codings apart.
    /// Built in one pass over `base` (it runs for every entry stored or promoted from the shared tier).
    public static func headers(_ base: HTTPHeaders, coding: String?, length: Int, etagSuffix: String) -> HTTPHeaders {
        var fields: [(String, String)] = []
        fields.reserveCapacity(base.count + 4)
        var tag: String?
        for (name, value) in base {
            if ASCII.equalsIgnoringCase(name, "content-encoding") || ASCII.equalsIgnoringCase(name, "content-length") { continue }
            if ASCII.equalsIgnoringCase(name, "etag") {
                if tag == nil { tag = value }
                continue
            }
            fields.append((name, value))
        }
        if let coding { fields.append(("Content-Encoding", coding)) }
        fields.append(("Content-Length", String(length)))
        if let tag { fields.append(("ETag", etag(tag, suffix: etagSuffix))) }
        var headers = HTTPHeaders(fields)
        addVaryAcceptEncoding(&headers)
        return headers
    }

    public static func addVaryAcceptEncoding(_ headers: inout HTTPHeaders) {
        var named = false
        for (name, value) in headers where ASCII.equalsIgnoringCase(name, "vary") {
            ASCII.forEachListMember(value) { field in
                if ASCII.equalsIgnoringCase(field, "accept-encoding") || ASCII.equalsIgnoringCase(field, "*") { named = true }
            }
        }
        if !named { headers.add(name: "Vary", value: "Accept-Encoding") }
    }

    /// True for a media type the settings name (`text/*` covers every text type), parameters ignored.
    public static func isCompressible(contentType: String?, types: [String]) -> Bool {
        guard var contentType else { return false }
        return contentType.withUTF8 { value in
            var start = 0
            while start < value.count, value[start] == .space || value[start] == .tab { start += 1 }
            let mediaType = ASCII.withoutParameters(UnsafeBufferPointer(rebasing: value[start...]))
            guard !mediaType.isEmpty else { return false }
            for type in types {
                var pattern = type
                let matches = pattern.withUTF8 { p in
                    if p.count >= 2, p[p.count - 2] == UInt8(ascii: "/"), p[p.count - 1] == UInt8(ascii: "*") {
                        let prefix = UnsafeBufferPointer(rebasing: p[..<(p.count - 1)])
                        return mediaType.count >= prefix.count
                            && ASCII.equalsIgnoringCase(UnsafeBufferPointer(rebasing: mediaType[..<prefix.count]), prefix)
                    }
                    return ASCII.equalsIgnoringCase(mediaType, p)
                }
                if matches { return true }
            }
            return false
        }
    }

    /// The whole body gzipped at `level` (1-9).
    public static func gzip(_ body: ByteBuffer, level: Int) throws -> ByteBuffer {
        let compressed = try compressors.gzip(body, level: level)
        // The compressor's buffer is sized for the worst case (more than the input); a stored copy
        // keeps only what it needs.
        var exact = ByteBufferAllocator().buffer(capacity: compressed.readableBytes)
        exact.writeImmutableBuffer(compressed)
        return exact
    }

    static let compressors = GzipCompressorPool()

    public struct TooLarge: Error {}

    /// A gzip body decoded; throws on corrupt data, or when it would exceed `limit` bytes.
    public static func gunzip(_ body: ByteBuffer, limit: Int) throws -> ByteBuffer {
        var input = body
        do {
            return try input.decompress(with: .gzip(), maxSize: limit)
        } catch let error as CompressNIOError where error == .bufferOverflow {
            throw TooLarge()
        }
    }
}

/// gzip for a body that arrives in pieces (an uncached response relayed to the client).
public final class StreamingGzip {
    private let compressor: GzipCompressorPool.Compressor
    private let allocator: ByteBufferAllocator
    /// After `finish` the compressor belongs to the pool again.
    private var finished = false

    public struct Finished: Error {}

    public init(level: Int, allocator: ByteBufferAllocator) throws {
        compressor = try ContentCoding.compressors.take(level: level)
        self.allocator = allocator
    }

    /// The compressed bytes for this piece, flushed so the client can decode what it has so far.
    public func compress(_ piece: ByteBuffer) throws -> ByteBuffer {
        try run(piece, flush: .sync)
    }

    /// The end of the stream (the gzip trailer). The compressor goes back to the pool for the next
    /// response; a stream that never finishes (the client or the upstream left) drops its own.
    public func finish() throws -> ByteBuffer {
        // An allocated (if empty) input: zlib is handed its base address.
        let trailer = try run(allocator.buffer(capacity: 16), flush: .finish)
        finished = true
        try compressor.zlib.reset()
        ContentCoding.compressors.give(compressor)
        return trailer
    }

    private func run(_ piece: ByteBuffer, flush: CompressNIOFlush) throws -> ByteBuffer {
        guard !finished else { throw Finished() }
        var input = piece
        var output = allocator.buffer(capacity: compressor.zlib.maxSize(from: piece) + 64)
        while true {
            do {
                try compressor.zlib.deflate(from: &input, to: &output, flush: flush)
                return output
            } catch let error as CompressNIOError where error == .bufferOverflow {
                output.reserveCapacity(minimumWritableBytes: max(4096, output.capacity))
            }
        }
    }
}
