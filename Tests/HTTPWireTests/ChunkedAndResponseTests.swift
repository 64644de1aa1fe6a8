import HTTPWire
import NIOCore
import Testing

@Suite struct ChunkedDecoderTests {
    static func body(_ chunked: String) -> DecodeOutcome {
        WireHarness.ours("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\(chunked)".wire)
    }

    @Test func chunksAndTrailers() {
        let o = Self.body("5\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-Sum: 1\r\n\r\n")
        #expect(o.messages.first?.body == Array("hello0123456789".utf8))
        #expect(o.messages.first?.trailers == [["X-Sum", "1"]])
    }

    @Test func chunkSizeIsOneToSixteenHexDigits() {
        #expect(Self.body("00000000000000005\r\nhello\r\n0\r\n\r\n").error == .badChunk)
        #expect(Self.body("0000000000000005\r\nhello\r\n0\r\n\r\n").messages.count == 1)
        #expect(Self.body("\r\nhello\r\n0\r\n\r\n").error == .badChunk)
        #expect(Self.body("-5\r\nhello\r\n0\r\n\r\n").error == .badChunk)
        #expect(Self.body("5 \r\nhello\r\n0\r\n\r\n").error == .badChunk)
        #expect(Self.body("FFFFFFFFFFFFFFFF\r\n").error == .badChunk)
        #expect(Self.body("5\nhello\r\n0\r\n\r\n").error == .badChunk)
    }

    @Test func extensionsFollowTheGrammar() {
        #expect(Self.body("5;a=b\r\nhello\r\n0\r\n\r\n").messages.count == 1)
        #expect(Self.body("5;a=\"q \\\" d\";c\r\nhello\r\n0;z\r\n\r\n").messages.count == 1)
        // RFC 9112 allows BWS around ";" and "="; the profile does not (nor does llhttp).
        #expect(Self.body("5 ;a\r\nhello\r\n0\r\n\r\n").error == .badChunk)
        #expect(Self.body("5;a = b\r\nhello\r\n0\r\n\r\n").error == .badChunk)
        #expect(Self.body("5;\r\nhello\r\n0\r\n\r\n").error == .badChunk)
        #expect(Self.body("5;a=\r\nhello\r\n0\r\n\r\n").error == .badChunk)
        #expect(Self.body("5;a=\"open\r\nhello\r\n0\r\n\r\n").error == .badChunk)
        #expect(Self.body("5;a b\r\nhello\r\n0\r\n\r\n").error == .badChunk)
        #expect(Self.body("5;a=b c\r\nhello\r\n0\r\n\r\n").error == .badChunk)
        #expect(Self.body("5;a\u{0}\r\nhello\r\n0\r\n\r\n").error == .badChunk)
    }

    @Test func chunkDataEndsInCRLF() {
        #expect(Self.body("5\r\nhelloX\r\n0\r\n\r\n").error == .badChunk)
        #expect(Self.body("5\r\nhello\n0\r\n\r\n").error == .badChunk)
    }

    @Test func oversizedExtensionsAndTrailersAreRefused() {
        let longExtension = ";e=" + String(repeating: "x", count: 5000)
        #expect(Self.body("5\(longExtension)\r\nhello\r\n0\r\n\r\n").error == .chunkMetadataTooLarge)
        #expect(Self.body("5\(longExtension)").error == .chunkMetadataTooLarge)
        let bigTrailer = "T: " + String(repeating: "v", count: 9000) + "\r\n"
        #expect(Self.body("0\r\n\(bigTrailer)\r\n").error == .chunkMetadataTooLarge)
        #expect(Self.body("0\r\nBad Name: v\r\n\r\n").error == .badTrailer)
        #expect(Self.body("0\r\n folded\r\n\r\n").error == .badTrailer)
    }

    @Test func aTruncatedBodyIsAnErrorAtEOF() {
        var decoder = RequestStreamDecoder()
        var buffer = ByteBuffer(string: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nab")
        while (try? decoder.next(&buffer)) != nil {}
        #expect(throws: WireError.truncated) { try decoder.finish(unreadBytes: buffer.readableBytes) }
    }
}

@Suite struct ResponseHeadParserTests {
    static func parse(_ text: String, head: Bool = false) throws(WireError) -> ParsedResponseHead? {
        var parser = ResponseHeadParser()
        var buffer = ByteBuffer(string: text)
        return try parser.parse(&buffer, requestMethodIsHEAD: head)
    }

    @Test func framingFollowsRFC9112Section63() throws {
        #expect(try Self.parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")?.framing == .length(5))
        #expect(try Self.parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", head: true)?.framing == ResponseFraming.none)
        #expect(try Self.parse("HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n")?.framing == ResponseFraming.none)
        #expect(try Self.parse("HTTP/1.1 304 Not Modified\r\n\r\n")?.framing == ResponseFraming.none)
        #expect(try Self.parse("HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n")?.framing == ResponseFraming.none)
        #expect(try Self.parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")?.framing == .chunked)
        #expect(try Self.parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n")?.framing == .untilClose)
        #expect(try Self.parse("HTTP/1.0 200 OK\r\n\r\n")?.framing == .untilClose)
    }

    @Test func transferEncodingOverridesContentLengthAndBreaksTheProfile() throws {
        let head = try #require(try Self.parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"))
        #expect(head.framing == .chunked)
        #expect(head.breaksProfile)
        #expect(head.ignoredLengthField == 0)
        #expect(!head.keepAlive)
    }

    @Test func lengthsMustAgree() throws {
        let equal = try #require(try Self.parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n"))
        #expect(equal.framing == .length(5))
        #expect(equal.breaksProfile)
        #expect(throws: WireError.badContentLength) { try Self.parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n") }
        #expect(throws: WireError.badContentLength) { try Self.parse("HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\n") }
        #expect(throws: WireError.badContentLength) { try Self.parse("HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n") }
        #expect(throws: WireError.badContentLength) { try Self.parse("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n") }
        #expect(try Self.parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")?.breaksProfile == false)
    }

    @Test func statusLine() throws {
        #expect(try Self.parse("HTTP/1.1 200 \r\n\r\n")?.status == 200)
        #expect(try Self.parse("HTTP/1.1 404\r\n\r\n")?.status == 404)
        let head = try #require(try Self.parse("HTTP/1.1 418 I'm a teapot\r\nA: b\r\n\r\n"))
        #expect(head.string(head.reason) == "I'm a teapot")
        #expect(head.fieldStrings.map { [$0.name, $0.value] } == [["A", "b"]])
        #expect(throws: WireError.badStatusLine) { try Self.parse("HTTP/1.0 103 Early Hints\r\n\r\n") }
        #expect(try Self.parse("\r\n\nHTTP/1.1 200 OK\r\n\r\n")?.status == 200)
        for bad in ["HTTP/1.1 20 OK", "HTTP/2 200 OK", "HTTP/1.1  200 OK", "HTTP/1.1 2000 OK", "http/1.1 200 OK", "HTTP/1.1 099 X"] {
            #expect(throws: WireError.badStatusLine, "\(bad)") { try Self.parse("\(bad)\r\n\r\n") }
        }
    }

    @Test func foldedOrBrokenResponseFieldsAreErrors() {
        #expect(throws: WireError.foldedOrIndentedField) { try Self.parse("HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n") }
        #expect(throws: WireError.badFieldValue) { try Self.parse("HTTP/1.1 200 OK\r\nA: b\u{0}\r\n\r\n") }
        #expect(throws: WireError.bareLineBreak) { try Self.parse("HTTP/1.1 200 OK\nA: b\r\n\r\n") }
    }

    @Test func incompleteUntilTheEmptyLine() throws {
        var parser = ResponseHeadParser()
        var buffer = ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Len")
        #expect(try parser.parse(&buffer, requestMethodIsHEAD: false) == nil)
        buffer.writeString("gth: 2\r\n\r\nhi")
        let head = try #require(try parser.parse(&buffer, requestMethodIsHEAD: false))
        #expect(head.framing == .length(2))
        #expect(buffer.readableBytes == 2)
    }
}

@Suite struct HeadWriterTests {
    @Test func relayKeepsChosenLinesAndAppends() throws {
        var parser = RequestHeadParser()
        var input = ByteBuffer(string: "GET /a?b HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\nX-Y:  z\r\n\r\n")
        let head = try #require(try parser.parse(&input))
        var out = ByteBuffer()
        HeadWriter.relay(head, keep: { head.string(head.fields[$0].name).lowercased() != "connection" }, appending: [("Via", "1.1 sidecache")], into: &out)
        #expect(String(buffer: out) == "GET /a?b HTTP/1.1\r\nHost: x\r\nX-Y:  z\r\nVia: 1.1 sidecache\r\n\r\n")
    }

    @Test func relayReplacesTheMethodAndTargetWhenAsked() throws {
        var parser = RequestHeadParser()
        var input = ByteBuffer(string: "HEAD http://x/a HTTP/1.1\r\nHost: x\r\n\r\n")
        let head = try #require(try parser.parse(&input))
        var out = ByteBuffer()
        HeadWriter.relay(head, method: "GET", target: "/a", keep: { _ in true }, appending: [], into: &out)
        #expect(String(buffer: out) == "GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
    }

    /// A head sidecache makes itself has the spans the parser would give its bytes; a field that
    /// could not be sent is left out.
    @Test func aMadeHeadReadsAsIfParsed() throws {
        let made = ParsedRequestHead(method: "GET", target: "/w?x=1", fields: [("Host", "h"), ("Bad Name", "v"), ("X-Crlf", "a\r\nInjected: 1"),
                                                                              ("Connection", "close"), ("Accept", "*/*")])
        #expect(String(buffer: made.bytes) == "GET /w?x=1 HTTP/1.1\r\nHost: h\r\nConnection: close\r\nAccept: */*\r\n\r\n")
        var parser = RequestHeadParser()
        var bytes = made.bytes
        let parsed = try #require(try parser.parse(&bytes))
        #expect(made.method == parsed.method && made.target == parsed.target && made.minorVersion == parsed.minorVersion)
        #expect(made.fields == parsed.fields && made.hostIndex == parsed.hostIndex && made.connection == parsed.connection)
        #expect(made.framing == parsed.framing && !made.keepAlive)
    }

    @Test func writtenHeadsParseBack() throws {
        var out = ByteBuffer()
        HeadWriter.writeResponseHead(status: 201, reason: "Created", fields: [("Location", "/x"), ("Content-Length", "0")], into: &out)
        #expect(String(buffer: out) == "HTTP/1.1 201 Created\r\nLocation: /x\r\nContent-Length: 0\r\n\r\n")
        var parser = ResponseHeadParser()
        let head = try #require(try parser.parse(&out, requestMethodIsHEAD: false))
        #expect(head.status == 201 && head.framing == .length(0))
        var request = ByteBuffer()
        HeadWriter.writeRequestHead(method: "PUT", target: "/p", fields: [("Host", "h")], into: &request)
        #expect(WireHarness.ours(Array(request.readableBytesView)).messages.first?.method == "PUT")
    }
}

@Suite struct HeadBytesTests {
    /// A piece that does not fit is not written, and `writeHead` writes the whole head again in
    /// more room: the bytes are the same whatever the first guess.
    @Test func aHeadThatOutgrowsItsGuessIsWrittenWhole() {
        let expected = "HTTP/1.1 200 OK\r\nX-Long: " + String(repeating: "v", count: 300) + "\r\nAge: -42\r\n\r\n"
        for guess in [0, 1, 20, 64, 65, 200, 340, 4096] {
            var buffer = ByteBuffer(string: "kept:")
            buffer.writeHead(capacity: guess) { out in
                out.put("HTTP/1.1 200 OK\r\n")
                out.put("X-Long: " + String(repeating: "v", count: 300))
                out.put(UInt8(ascii: "\r"))
                out.put(UInt8(ascii: "\n"))
                out.put("Age: ")
                out.putDecimal(-42)
                out.put("\r\n\r\n")
            }
            #expect(String(buffer: buffer) == "kept:" + expected, "guess \(guess)")
        }
    }

    @Test func aPieceThatDoesNotFitIsNotWrittenInPart() {
        let room = UnsafeMutableRawBufferPointer.allocate(byteCount: 8, alignment: 1)
        defer { room.deallocate() }
        var out = HeadBytes(room)
        out.put("abcde")
        out.put("fghij")
        out.put("k")
        #expect(out.overflowed && out.count == 5)
        out.putDecimal(7)
        out.put(count: 1) { $0[0] = 0x21 }
        #expect(out.count == 5 && String(decoding: UnsafeRawBufferPointer(rebasing: room[0..<5]), as: UTF8.self) == "abcde")
    }
}
