import HTTPCaching
import NIOCore
import NIOHTTP1
import Testing
import Dispatch
import Synchronization

@Suite struct ContentCodingTests {
    @Test(arguments: [
        ("gzip", true), ("gzip, deflate, br", true), ("GZIP;Q=0.5", true), ("x-gzip", true),
        ("gzip;q=0", false), ("gzip; q=0.0", false), ("br, *", true), ("*;q=0", false), ("identity", false),
        ("br, gzip;q=0, *", false), ("deflate", false), ("", false),
    ])
    func acceptEncodingHonoursQValuesAndStar(_ value: String, _ expected: Bool) {
        #expect(ContentCoding.acceptsGzip(HTTPHeaders([("Accept-Encoding", value)])) == expected, "\(value)")
    }

    /// Issue 20 item 7: any coding, each of a list, by name or `*`, with q > 0; and the Vary
    /// dimension that keeps such an entry for the clients that accept it.
    @Test func otherCodingsAreAcceptedByNameOrStar() {
        #expect(ContentCoding.accepts("br", ["Accept-Encoding": "gzip, br"]))
        #expect(ContentCoding.accepts("br", ["Accept-Encoding": "BR;q=0.1"]))
        #expect(!ContentCoding.accepts("br", ["Accept-Encoding": "gzip, br;q=0"]))
        #expect(ContentCoding.accepts("zstd", ["Accept-Encoding": "*"]))
        #expect(!ContentCoding.accepts("zstd", ["Accept-Encoding": "zstd;q=0, *"]))
        #expect(!ContentCoding.accepts("br", [:]))
        #expect(ContentCoding.accepts("gzip, br", ["Accept-Encoding": "x-gzip, br"]))
        #expect(!ContentCoding.accepts("gzip, br", ["Accept-Encoding": "br"]))
        let name = ContentCoding.acceptanceVaryName(for: "br")
        #expect(CachedResponse.varyValue(name, in: ["Accept-Encoding": "br"]) != CachedResponse.varyValue(name, in: ["Accept-Encoding": "gzip"]))
    }

    @Test func noAcceptEncodingMeansIdentity() {
        #expect(!ContentCoding.acceptsGzip([:]))
    }

    @Test(arguments: [0, 1, 100, 4096, 65536, 300_000])
    func gzipRoundTripsByteExact(_ size: Int) throws {
        var generator = SystemRandomNumberGenerator()
        // Half random bytes, half repetitive text: both kinds of content.
        let bytes = (0..<size).map { i in i % 2 == 0 ? UInt8.random(in: 0...255, using: &generator) : UInt8(ascii: "a") }
        let body = ByteBuffer(bytes: bytes)
        let compressed = try ContentCoding.gzip(body, level: 6)
        #expect(compressed.getBytes(at: compressed.readerIndex, length: 2) == [0x1f, 0x8b])
        #expect(try ContentCoding.gunzip(compressed, limit: size + 1) == body)
    }

    @Test func decodingStopsAtTheLimitAndOnCorruptData() throws {
        let body = ByteBuffer(repeating: 0x41, count: 100_000)
        let compressed = try ContentCoding.gzip(body, level: 9)
        #expect(throws: ContentCoding.TooLarge.self) { try ContentCoding.gunzip(compressed, limit: 1000) }
        var corrupt = compressed
        corrupt.setInteger(UInt32(0xDEADBEEF), at: 20)
        #expect(throws: (any Error).self) { try ContentCoding.gunzip(corrupt, limit: 200_000) }
    }

    @Test func aStreamCompressedPieceByPieceDecodesToTheWhole() throws {
        let stream = try StreamingGzip(level: 6, allocator: ByteBufferAllocator())
        var whole = ByteBuffer()
        var compressed = ByteBuffer()
        for i in 0..<20 {
            let piece = ByteBuffer(string: String(repeating: "{\"piece\": \(i)}", count: 300 + i))
            whole.writeImmutableBuffer(piece)
            var out = try stream.compress(piece)
            compressed.writeBuffer(&out)
        }
        var trailer = try stream.finish()
        compressed.writeBuffer(&trailer)
        #expect(try ContentCoding.gunzip(compressed, limit: 1 << 20) == whole)
        #expect(compressed.readableBytes < whole.readableBytes / 4)
    }

    @Test func typesAndEntityTags() {
        let types = ["application/json", "text/*", "image/svg+xml"]
        #expect(ContentCoding.isCompressible(contentType: "application/json; charset=utf-8", types: types))
        #expect(ContentCoding.isCompressible(contentType: "Text/HTML", types: types))
        #expect(!ContentCoding.isCompressible(contentType: "image/png", types: types))
        #expect(!ContentCoding.isCompressible(contentType: nil, types: types))
        #expect(ContentCoding.etag("\"abc\"", suffix: "gzip") == "\"abc-gzip\"")
        #expect(ContentCoding.etag("W/\"abc\"", suffix: "gzip") == "W/\"abc-gzip\"")
    }
}

extension ContentCodingTests {
    @Test func acceptEncodingMayTakeSeveralFieldLinesAndSpacing() {
        #expect(ContentCoding.acceptsGzip(HTTPHeaders([("Accept-Encoding", "br"), ("accept-encoding", " \tgzip ;q=1 , deflate")])))
        #expect(!ContentCoding.acceptsGzip(HTTPHeaders([("Accept-Encoding", "gzipped, xgzip, gzip-x")])))
        #expect(!ContentCoding.acceptsGzip(HTTPHeaders([("X-Accept-Encoding", "gzip")])))
        // The first gzip member decides, as before; a later star does not override it.
        #expect(!ContentCoding.acceptsGzip(HTTPHeaders([("Accept-Encoding", "gzip;q=0, *;q=1")])))
    }

    @Test(arguments: [
        ([("Content-Type", "text/plain")], nil), ([("Content-Encoding", "gzip")], "gzip"), ([("content-encoding", " GZip ")], "gzip"),
        ([("Content-Encoding", "identity")], nil), ([("Content-Encoding", "Identity, ,")], nil),
        ([("Content-Encoding", "gzip, br")], "gzip, br"), ([("Content-Encoding", "gzip"), ("Content-Encoding", "br")], "gzip, br"),
    ] as [([(String, String)], String?)])
    func theCodingOfAResponseIsItsListLowercasedWithoutIdentity(_ fields: [(String, String)], _ expected: String?) {
        #expect(ContentCoding.encoding(of: HTTPHeaders(fields)) == expected)
    }

    @Test(arguments: [
        ([], true), ([("Vary", "Accept-Language")], true), ([("Vary", "accept-language, ACCEPT-ENCODING")], false),
        ([("Vary", "Origin"), ("vary", " accept-encoding ")], false), ([("Vary", "*")], false), ([("Vary", "Accept-Encodings")], true),
    ] as [([(String, String)], Bool)])
    func varyAcceptEncodingIsAddedOnlyWhenNotListedAlready(_ fields: [(String, String)], _ adds: Bool) {
        var headers = HTTPHeaders(fields)
        ContentCoding.addVaryAcceptEncoding(&headers)
        #expect(headers.count == fields.count + (adds ? 1 : 0))
        if adds { #expect(headers.first(name: "vary").map { _ in headers[canonicalForm: "vary"].contains("Accept-Encoding") } == true) }
    }
}

extension ContentCodingTests {
    /// Compressors are reused between entries: each one must start from a clean state, so the same
    /// input gives the same bytes whatever was compressed before it, at any level.
    @Test func reusedCompressorsGiveTheSameBytesAsFreshOnes() throws {
        let a = ByteBuffer(string: String(repeating: "{\"id\": 1, \"name\": \"alpha\"}", count: 40))
        let b = ByteBuffer(bytes: (0..<5000).map { UInt8(truncatingIfNeeded: $0 &* 7919) })
        let first = try ContentCoding.gzip(a, level: 6)
        for level in [6, 1, 9, 6] {
            _ = try ContentCoding.gzip(b, level: level)
            #expect(try ContentCoding.gunzip(try ContentCoding.gzip(b, level: level), limit: 10_000) == b)
        }
        #expect(try ContentCoding.gzip(a, level: 6) == first)
        #expect(try ContentCoding.gunzip(first, limit: 10_000) == a)
        // Concurrent use takes a compressor each.
        let same = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            if (try? ContentCoding.gzip(a, level: 6)) == first { same.add(1, ordering: .relaxed) }
        }
        #expect(same.load(ordering: .relaxed) == 8)
    }
}

extension ContentCodingTests {
    /// A finished stream hands its compressor to the next one: that one starts clean, and the
    /// finished stream refuses further pieces instead of sharing it.
    @Test func aStreamAfterAFinishedOneGivesTheSameBytes() throws {
        func run(_ text: String) throws -> (ByteBuffer, StreamingGzip) {
            let stream = try StreamingGzip(level: 6, allocator: ByteBufferAllocator())
            var out = try stream.compress(ByteBuffer(string: text))
            var trailer = try stream.finish()
            out.writeBuffer(&trailer)
            return (out, stream)
        }
        let (first, finished) = try run(String(repeating: "alpha beta ", count: 100))
        _ = try run(String(repeating: "something else entirely ", count: 50))
        let (again, _) = try run(String(repeating: "alpha beta ", count: 100))
        #expect(again == first)
        #expect(throws: StreamingGzip.Finished.self) { try finished.compress(ByteBuffer(string: "late")) }
    }
}

extension ContentCodingTests {
    @Test(arguments: [
        (" TEXT/plain ;charset=x", true), ("text/", true), ("text", false), ("texts/plain", false), ("application/jsonx", false),
        ("application/JSON", true), ("image/SVG+xml", true), ("", false), (" ; charset=utf-8", false), ("application/json\t", true),
    ])
    func mediaTypesMatchWholeOrByTheirTopLevelType(_ contentType: String, _ expected: Bool) {
        #expect(ContentCoding.isCompressible(contentType: contentType, types: ["application/json", "text/*", "image/svg+xml"]) == expected)
    }
}
