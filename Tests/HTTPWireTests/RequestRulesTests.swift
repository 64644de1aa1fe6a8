import HTTPWire
import NIOCore
import Testing

/// Each rule of the strict profile (issue 21 §2) as a named test: an accepted form and the
/// rejected forms beside it, with the error (and so the status) each rejection gets.
@Suite struct RequestRulesTests {
    static func outcome(_ text: String) -> DecodeOutcome { WireHarness.ours(text.wire) }

    static func accepts(_ text: String) -> Bool {
        let o = outcome(text)
        return !o.failed && o.messages.count == 1
    }

    static func rejects(_ text: String, with error: WireError) -> Bool {
        outcome(text).error == error
    }

    @Test func requestLineIsMethodSpaceTargetSpaceVersion() {
        #expect(Self.accepts("GET /a?b=c HTTP/1.1\r\nHost: x\r\n\r\n"))
        #expect(Self.accepts("GET /a HTTP/1.0\r\n\r\n"))
        #expect(Self.rejects("GET  /a HTTP/1.1\r\nHost: x\r\n\r\n", with: .badRequestLine))
        #expect(Self.rejects("GET /a  HTTP/1.1\r\nHost: x\r\n\r\n", with: .badRequestLine))
        #expect(Self.rejects(" GET /a HTTP/1.1\r\nHost: x\r\n\r\n", with: .badRequestLine))
        #expect(Self.rejects("GET /a HTTP/1.1 \r\nHost: x\r\n\r\n", with: .badRequestLine))
        #expect(Self.rejects("GET\t/a HTTP/1.1\r\nHost: x\r\n\r\n", with: .badRequestLine))
        #expect(Self.rejects("GET /a\r\nHost: x\r\n\r\n", with: .badRequestLine))
        #expect(Self.rejects("GET /a http/1.1\r\nHost: x\r\n\r\n", with: .badRequestLine))
        #expect(Self.rejects("GET /a HTTP/1.x\r\nHost: x\r\n\r\n", with: .badRequestLine))
        #expect(Self.rejects("G(T /a HTTP/1.1\r\nHost: x\r\n\r\n", with: .badRequestLine))
    }

    @Test func onlyHTTP10And11AreSupported() {
        #expect(Self.rejects("GET / HTTP/2.0\r\nHost: x\r\n\r\n", with: .unsupportedVersion))
        #expect(Self.rejects("GET / HTTP/1.2\r\nHost: x\r\n\r\n", with: .unsupportedVersion))
        #expect(WireError.unsupportedVersion.status == 505)
    }

    @Test func targetBytesAreVisibleASCII() {
        #expect(Self.accepts("GET /a%20b!$&'()*+,;=:@~ HTTP/1.1\r\nHost: x\r\n\r\n"))
        #expect(Self.rejects("GET /a\u{7F}b HTTP/1.1\r\nHost: x\r\n\r\n", with: .badRequestLine))
        #expect(Self.rejects("GET /a\u{01}b HTTP/1.1\r\nHost: x\r\n\r\n", with: .badRequestLine))
        #expect(Self.rejects("GET /é HTTP/1.1\r\nHost: x\r\n\r\n", with: .badRequestLine))
    }

    @Test func targetIsOneOfTheFourForms() {
        #expect(Self.accepts("GET /a HTTP/1.1\r\nHost: x\r\n\r\n"))
        #expect(Self.accepts("GET http://x/a?b HTTP/1.1\r\nHost: x\r\n\r\n"))
        #expect(Self.accepts("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n"))
        #expect(Self.accepts("CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\n\r\n"))
        #expect(Self.rejects("GET * HTTP/1.1\r\nHost: x\r\n\r\n", with: .badRequestLine))
        #expect(Self.rejects("GET a/b HTTP/1.1\r\nHost: x\r\n\r\n", with: .badRequestLine))
        #expect(Self.rejects("GET ;/a HTTP/1.1\r\nHost: x\r\n\r\n", with: .badRequestLine))
        #expect(Self.rejects("GET 1http://x/ HTTP/1.1\r\nHost: x\r\n\r\n", with: .badRequestLine))
        #expect(Self.rejects("GET http://\"x/a HTTP/1.1\r\nHost: x\r\n\r\n", with: .badRequestLine))
        #expect(Self.rejects("GET http://x|y/a HTTP/1.1\r\nHost: x\r\n\r\n", with: .badRequestLine))
        #expect(Self.accepts("GET http://u@[::1]:80/a|b HTTP/1.1\r\nHost: x\r\n\r\n"))
        #expect(Self.rejects("GET http://a@b@c/ HTTP/1.1\r\nHost: x\r\n\r\n", with: .badRequestLine))
        #expect(Self.rejects("GET http://x:8o/ HTTP/1.1\r\nHost: x\r\n\r\n", with: .badRequestLine))
        #expect(Self.rejects("GET /a#frag HTTP/1.1\r\nHost: x\r\n\r\n", with: .badRequestLine))
        #expect(Self.rejects("GET http:///a HTTP/1.1\r\nHost: x\r\n\r\n", with: .badRequestLine))
        #expect(Self.rejects("CONNECT /a HTTP/1.1\r\nHost: x\r\n\r\n", with: .badRequestLine))
    }

    @Test func anyTokenIsAMethod() {
        // RFC 9110 §9.1: methods are tokens; one sidecache does not know is forwarded.
        let o = Self.outcome("PURGE-ALL /a HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(o.messages.first?.method == "PURGE-ALL")
    }

    @Test func lineBreaksAreCRLF() {
        #expect(Self.rejects("GET / HTTP/1.1\nHost: x\r\n\r\n", with: .bareLineBreak))
        #expect(Self.rejects("GET / HTTP/1.1\r\nHost: x\n\r\n", with: .bareLineBreak))
        #expect(Self.rejects("GET / HTTP/1.1\r\nHost: x\r\n\n", with: .bareLineBreak))
        #expect(Self.rejects("GET / HTTP/1.1\r\nHost: x\rY: z\r\n\r\n", with: .bareLineBreak))
        #expect(Self.rejects("GET / HTTP/1.1\r\nHost: x\r\nA\r: b\r\n\r\n", with: .bareLineBreak))
    }

    @Test func emptyLinesBeforeARequestAreSkippedAFew() {
        #expect(Self.accepts("\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"))
        #expect(Self.rejects(String(repeating: "\r\n", count: 9) + "GET / HTTP/1.1\r\nHost: x\r\n\r\n", with: .badRequestLine))
        // Bare CR and LF there too, as llhttp (they lie outside any message); within a head they are errors.
        #expect(Self.accepts("\n\r\rGET / HTTP/1.1\r\nHost: x\r\n\r\n"))
        #expect(Self.rejects("GET / HTTP/1.1\r\n\nHost: x\r\n\r\n", with: .bareLineBreak))
    }

    @Test func noFoldingNoIndentedFields() {
        #expect(Self.rejects("GET / HTTP/1.1\r\nHost: x\r\nA: b\r\n c\r\n\r\n", with: .foldedOrIndentedField))
        #expect(Self.rejects("GET / HTTP/1.1\r\nHost: x\r\nA: b\r\n\tc\r\n\r\n", with: .foldedOrIndentedField))
        #expect(Self.rejects("GET / HTTP/1.1\r\n Host: x\r\n\r\n", with: .foldedOrIndentedField))
    }

    @Test func noWhitespaceBeforeTheColon() {
        #expect(Self.accepts("GET / HTTP/1.1\r\nHost:x\r\nA:  b \t\r\n\r\n"))
        #expect(Self.rejects("GET / HTTP/1.1\r\nHost : x\r\n\r\n", with: .whitespaceBeforeColon))
        #expect(Self.rejects("GET / HTTP/1.1\r\nHost\t: x\r\n\r\n", with: .whitespaceBeforeColon))
    }

    @Test func fieldNamesAreNonEmptyTokens() {
        #expect(Self.rejects("GET / HTTP/1.1\r\nHost: x\r\n: v\r\n\r\n", with: .badFieldName))
        #expect(Self.rejects("GET / HTTP/1.1\r\nHost: x\r\nA(b: v\r\n\r\n", with: .badFieldName))
        #expect(Self.rejects("GET / HTTP/1.1\r\nHost: x\r\nno-colon\r\n\r\n", with: .badFieldName))
        #expect(Self.rejects("GET / HTTP/1.1\r\nHost: x\r\nA\u{0}b: v\r\n\r\n", with: .badFieldName))
    }

    @Test func fieldValuesHoldNoControlBytesButHTAB() {
        #expect(Self.accepts("GET / HTTP/1.1\r\nHost: x\r\nA: b\tc é\r\n\r\n"))
        #expect(Self.rejects("GET / HTTP/1.1\r\nHost: x\r\nA: b\u{0}c\r\n\r\n", with: .badFieldValue))
        #expect(Self.rejects("GET / HTTP/1.1\r\nHost: x\r\nA: b\u{1B}c\r\n\r\n", with: .badFieldValue))
        #expect(Self.rejects("GET / HTTP/1.1\r\nHost: x\r\nA: b\u{7F}\r\n\r\n", with: .badFieldValue))
    }

    @Test func valuesLoseTheirSurroundingWhitespace() {
        let o = Self.outcome("GET / HTTP/1.1\r\nHost: \t x \t\r\nEmpty:\r\n\r\n")
        #expect(o.messages.first?.fields == [["Host", "x"], ["Empty", ""]])
    }

    @Test func http11NeedsExactlyOneHost() {
        #expect(Self.rejects("GET / HTTP/1.1\r\n\r\n", with: .hostCount))
        #expect(Self.rejects("GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", with: .hostCount))
        #expect(Self.accepts("GET / HTTP/1.0\r\n\r\n"))
        #expect(Self.rejects("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", with: .hostCount))
    }

    @Test func contentLengthIsOnePlainNumber() {
        #expect(Self.outcome("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc").messages.first?.body == Array("abc".utf8))
        #expect(Self.accepts("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 000\r\n\r\n"))
        for bad in ["+3", "-3", "3 3", "3,3", "0x3", "", "3a", "1234567890123456789"] {
            #expect(Self.rejects("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: \(bad)\r\n\r\nabc", with: .badContentLength), "\(bad)")
        }
        #expect(Self.rejects("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", with: .badContentLength))
        #expect(Self.rejects("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\ncontent-length: 4\r\n\r\nabcd", with: .badContentLength))
    }

    @Test func transferEncodingIsChunkedAloneOnHTTP11() {
        #expect(Self.outcome("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n").messages.first?.body == Array("abc".utf8))
        #expect(Self.rejects("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n3\r\nabc\r\n0\r\n\r\n", with: .badTransferEncoding))
        #expect(Self.rejects("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", with: .badTransferEncoding))
        #expect(Self.rejects("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", with: .badTransferEncoding))
        #expect(Self.rejects("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: \"chunked\"\r\n\r\n0\r\n\r\n", with: .badTransferEncoding))
        #expect(Self.rejects("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", with: .unknownTransferCoding))
        #expect(Self.rejects("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\n", with: .unknownTransferCoding))
        #expect(Self.rejects("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked,\r\n\r\n0\r\n\r\n", with: .badTransferEncoding))
        #expect(Self.rejects("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: ,chunked\r\n\r\n0\r\n\r\n", with: .badTransferEncoding))
        #expect(WireError.unknownTransferCoding.status == 501)
    }

    @Test func limitsOnLinesHeadsAndFields() {
        let limits = RequestHeadLimits(maxRequestLineBytes: 64, maxHeadBytes: 256, maxFields: 5)
        let longTarget = "/" + String(repeating: "a", count: 80)
        #expect(WireHarness.ours("GET \(longTarget) HTTP/1.1\r\nHost: x\r\n\r\n".wire, limits: limits).error == .requestLineTooLong)
        // Too long even before its end arrives.
        #expect(WireHarness.ours("GET \(longTarget)".wire, limits: limits).error == .requestLineTooLong)
        let bigField = "A: " + String(repeating: "b", count: 300)
        #expect(WireHarness.ours("GET / HTTP/1.1\r\nHost: x\r\n\(bigField)\r\n\r\n".wire, limits: limits).error == .headTooLarge)
        #expect(WireHarness.ours("GET / HTTP/1.1\r\nHost: x\r\n\(bigField)".wire, limits: limits).error == .headTooLarge)
        let six = (1...6).map { "F\($0): v\r\n" }.joined()
        #expect(WireHarness.ours("GET / HTTP/1.0\r\n\(six)\r\n".wire, limits: limits).error == .headTooLarge)
        let five = (1...4).map { "F\($0): v\r\n" }.joined()
        #expect(WireHarness.ours("GET / HTTP/1.1\r\nHost: x\r\n\(five)\r\n".wire, limits: limits).messages.count == 1)
        #expect(WireError.headTooLarge.status == 431)
        #expect(WireError.requestLineTooLong.status == 414)
    }

    @Test func pipelinedRequestsComeOutInOrder() {
        let o = Self.outcome("GET /1 HTTP/1.1\r\nHost: x\r\n\r\nPOST /2 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhiGET /3 HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(o.messages.map(\.target) == ["/1", "/2", "/3"])
        #expect(o.messages[1].body == Array("hi".utf8))
    }

    @Test func connectionOptionsDecideKeepAlive() throws {
        func head(_ text: String) throws -> ParsedRequestHead {
            var parser = RequestHeadParser()
            var buffer = ByteBuffer(string: text)
            return try #require(try parser.parse(&buffer))
        }
        #expect(try head("GET / HTTP/1.1\r\nHost: x\r\n\r\n").keepAlive)
        #expect(try !head("GET / HTTP/1.1\r\nHost: x\r\nConnection: foo, Close\r\n\r\n").keepAlive)
        #expect(try !head("GET / HTTP/1.0\r\n\r\n").keepAlive)
        #expect(try head("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").keepAlive)
        #expect(try head("GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n").connection.upgrade)
    }

    @Test func fieldLinesAreKeptAsReceived() throws {
        var parser = RequestHeadParser()
        var buffer = ByteBuffer(string: "GET /p HTTP/1.1\r\nHost:  x \r\nX-A:b\r\n\r\nrest")
        let head = try #require(try parser.parse(&buffer))
        #expect(head.string(head.fields[0].line) == "Host:  x ")
        #expect(head.string(head.fields[1].line) == "X-A:b")
        #expect(head.hostIndex == 0)
        #expect(buffer.readableBytes == 4)
    }
}
