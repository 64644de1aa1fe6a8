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
        var star: Bool?
        for value in headers[canonicalForm: "accept-encoding"] {
            for item in value.split(separator: ",") {
                let parts = item.split(separator: ";")
                guard let name = parts.first?.trimmingSpaces().lowercased(), !name.isEmpty else { continue }
                var q = 1.0
                for parameter in parts.dropFirst() {
                    let p = parameter.trimmingSpaces().lowercased()
                    if p.hasPrefix("q="), let v = Double(p.dropFirst(2)) { q = v }
                }
                if name == "gzip" || name == "x-gzip" { return q > 0 }
                if name == "*" { star = q > 0 }
            }
        }
        return star ?? false
    }

    /// The coding of a response: nil for identity (no `Content-Encoding`, or `identity`), else the
    /// lowercased list as sent (`gzip`, `br`, `gzip, br` ...).
    public static func encoding(of headers: HTTPHeaders) -> String? {
        let codings = headers[canonicalForm: "content-encoding"].flatMap { $0.split(separator: ",") }
            .map { $0.trimmingSpaces().lowercased() }.filter { !$0.isEmpty && $0 != "identity" }
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
    public static func headers(_ base: HTTPHeaders, coding: String?, length: Int, etagSuffix: String) -> HTTPHeaders {
        var headers = base
        headers.remove(name: "content-encoding")
        if let coding { headers.add(name: "Content-Encoding", value: coding) }
        headers.replaceOrAdd(name: "Content-Length", value: String(length))
        if let tag = base.first(name: "etag") { headers.replaceOrAdd(name: "ETag", value: etag(tag, suffix: etagSuffix)) }
        addVaryAcceptEncoding(&headers)
        return headers
    }

    public static func addVaryAcceptEncoding(_ headers: inout HTTPHeaders) {
        let named = headers[canonicalForm: "vary"].flatMap { $0.split(separator: ",") }.map { $0.trimmingSpaces().lowercased() }
        if !named.contains("accept-encoding") && !named.contains("*") { headers.add(name: "Vary", value: "Accept-Encoding") }
    }

    /// True for a media type the settings name (`text/*` covers every text type), parameters ignored.
    public static func isCompressible(contentType: String?, types: [String]) -> Bool {
        guard let contentType else { return false }
        let mediaType = (contentType.split(separator: ";").first.map { $0.trimmingSpaces() } ?? "").lowercased()
        guard !mediaType.isEmpty else { return false }
        for t in types {
            let pattern = t.lowercased()
            if pattern.hasSuffix("/*") ? mediaType.hasPrefix(pattern.dropLast()) : mediaType == pattern { return true }
        }
        return false
    }

    /// The whole body gzipped at `level` (1-9).
    public static func gzip(_ body: ByteBuffer, level: Int) throws -> ByteBuffer {
        var input = body
        let compressed = try input.compress(with: .gzip(configuration: .init(compressionLevel: Int32(level))))
        // The compressor's buffer is sized for the worst case (more than the input); a stored copy
        // keeps only what it needs.
        var exact = ByteBufferAllocator().buffer(capacity: compressed.readableBytes)
        exact.writeImmutableBuffer(compressed)
        return exact
    }

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
    private let compressor: ZlibCompressor
    private let allocator: ByteBufferAllocator

    public init(level: Int, allocator: ByteBufferAllocator) throws {
        compressor = try ZlibCompressor(algorithm: .gzip, configuration: .init(compressionLevel: Int32(level)))
        self.allocator = allocator
    }

    /// The compressed bytes for this piece, flushed so the client can decode what it has so far.
    public func compress(_ piece: ByteBuffer) throws -> ByteBuffer {
        try run(piece, flush: .sync)
    }

    /// The end of the stream (the gzip trailer).
    public func finish() throws -> ByteBuffer {
        // An allocated (if empty) input: zlib is handed its base address.
        try run(allocator.buffer(capacity: 16), flush: .finish)
    }

    private func run(_ piece: ByteBuffer, flush: CompressNIOFlush) throws -> ByteBuffer {
        var input = piece
        var output = allocator.buffer(capacity: compressor.maxSize(from: piece) + 64)
        while true {
            do {
                try compressor.deflate(from: &input, to: &output, flush: flush)
                return output
            } catch let error as CompressNIOError where error == .bufferOverflow {
                output.reserveCapacity(minimumWritableBytes: max(4096, output.capacity))
            }
        }
    }
}
