import HTTPWire
import NIOCore
import Foundation
import Testing

/// Our decoder against NIO's `HTTPRequestDecoder` (llhttp) as the oracle, over a corpus of
/// hand-written requests and seeded random mutations of them: whatever we accept, NIO accepts with
/// the same method, target, version, fields, body and trailers, across pipelined requests; whatever
/// we reject and NIO accepts is rejected for one of the reasons in `stricterThanNIO`.
@Suite struct DifferentialTests {
    static let corpus: [String] = [
        "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
        "GET /api/items/1?lang=en&x=%20y HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip, br\r\nUser-Agent: curl/8.0\r\nAccept: */*\r\n\r\n",
        "HEAD /a HTTP/1.1\r\nHost: x\r\nIf-None-Match: \"v1\", W/\"v2\"\r\n\r\n",
        "GET /a HTTP/1.0\r\n\r\n",
        "GET /a HTTP/1.0\r\nConnection: keep-alive\r\nHost: x\r\n\r\n",
        "POST /items HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{\"name\":\"a\"}\n",
        "PUT /items/4 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n",
        "POST /t HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-Checksum: 9\r\nX-Other: y\r\n\r\n",
        "GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "POST /1 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET /2 HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET http://x/abs?q HTTP/1.1\r\nHost: x\r\n\r\n",
        "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
        "DELETE /items/9 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
        "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nCookie: a=b; c=d\r\nX-Empty:\r\nX-Spaces:   v   \r\nX-Tab:\tv\t\r\n\r\n",
        "PATCH /p HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\nhi",
        "\r\nGET /after-crlf HTTP/1.1\r\nHost: x\r\n\r\n",
        "POST /2 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\na\r\n0123456789\r\n0\r\n\r\nGET /3 HTTP/1.1\r\nHost: x\r\n\r\n",
        // Rejected by both.
        "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        "GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
        "GET / HTTP/1.1\r\nHost : x\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nA: b\r\n c\r\n\r\n",
        "GET / HTTP/1.1\nHost: x\n\n",
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
    ]

    /// Why we may refuse what NIO's llhttp accepts. Each is a rule of the strict profile that llhttp,
    /// built lenient or following an older reading, does not enforce.
    static func isStricterThanNIO(_ error: WireError) -> Bool {
        switch error {
        // RFC 9112 §3.2: a 1.1 request without Host, or with two, gets 400; llhttp does not look.
        case .hostCount: true
        // Our limits (8 KiB line, max_header_bytes, 100 fields, 8 leading empty lines) are below llhttp's 80 KiB.
        case .requestLineTooLong, .headTooLarge: true
        // llhttp accepts versions we answer 505 (HTTP/1.2, 0.9-style digits).
        case .unsupportedVersion: true
        // Target bytes outside 0x21-0x7E (obs-text, some punctuation llhttp lets through), leading
        // empty lines past 8, and methods llhttp reads loosely.
        case .badRequestLine: true
        // Transfer-Encoding on 1.0, repeated, or not a token list: llhttp merges or ignores these.
        case .badTransferEncoding, .unknownTransferCoding: true
        // Chunk extensions outside the token / quoted-string grammar, and our size limits on them.
        case .badChunk, .chunkMetadataTooLarge, .badTrailer: true
        // Values with control bytes llhttp allows (it checks only a few), and lengths with leading
        // zeros past 18 digits.
        case .badFieldValue, .badContentLength: true
        // Names with bytes llhttp's lenient table allows.
        case .badFieldName: true
        case .bareLineBreak, .foldedOrIndentedField, .whitespaceBeforeColon, .truncated, .badStatusLine: false
        }
    }

    /// Methods llhttp knows; a request with another token as its method is one NIO refuses and we
    /// forward (RFC 9110 §9.1 allows any token).
    static let nioMethods: Set<String> = [
        "DELETE", "GET", "HEAD", "POST", "PUT", "CONNECT", "OPTIONS", "TRACE", "COPY", "LOCK", "MKCOL", "MOVE",
        "PROPFIND", "PROPPATCH", "SEARCH", "UNLOCK", "BIND", "REBIND", "UNBIND", "ACL", "REPORT", "MKACTIVITY",
        "CHECKOUT", "MERGE", "M-SEARCH", "NOTIFY", "SUBSCRIBE", "UNSUBSCRIBE", "PATCH", "PURGE", "MKCALENDAR",
        "LINK", "UNLINK", "SOURCE", "QUERY",
    ]

    /// What we accept and llhttp refuses: a method that is a token llhttp does not know (RFC 9110
    /// §9.1 allows any), and an absolute-form scheme with digits, `+`, `-` or `.` (RFC 3986 §3.1).
    static func weAcceptWhatNIORefuses(method: String, target: String) -> Bool {
        if !nioMethods.contains(method) { return true }
        guard let colon = target.firstIndex(of: ":"), target.first != "/" else { return false }
        if target[..<colon].contains(where: { !$0.isLetter }) { return true }
        // llhttp allows fewer bytes in a host than RFC 3986's reg-name (sub-delims, "_", "~", "%").
        let authority = target[colon...].dropFirst(3).prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        return authority.contains { !($0.isLetter || $0.isNumber || ".-:[]@".contains($0)) }
    }

    /// llhttp refuses a Content-Length or Transfer-Encoding followed by HTAB; RFC 9110 §5.5 makes
    /// it OWS, not part of the value.
    static func lengthHasTrailingTab(_ bytes: [UInt8]) -> Bool {
        String(decoding: bytes, as: UTF8.self).components(separatedBy: "\r\n").contains { line in
            let name = line.lowercased()
            return (name.hasPrefix("content-length:") || name.hasPrefix("transfer-encoding:")) && line.last?.isWhitespace == true && line.contains("\t")
        }
    }

    /// One comparison; a message describing the disagreement, or nil.
    static func disagreement(_ bytes: [UInt8], splits: [Int] = []) -> String? {
        let ours = WireHarness.ours(bytes, splits: splits)
        let nio = WireHarness.nio(bytes, splits: splits)
        func exempt(_ outcome: DecodeOutcome) -> Bool {
            outcome.heads.contains { weAcceptWhatNIORefuses(method: $0[0], target: $0[1]) }
        }
        return Differential.disagreement(
            ours: .init(messages: ours.messages, failed: ours.failed, error: ours.error, firstClosing: ours.firstClosing),
            nio: .init(messages: nio.messages, failed: nio.failed),
            // A method or scheme llhttp refuses, or a length field it reads otherwise.
            unjudged: exempt(ours) || lengthHasTrailingTab(bytes),
            acceptedExemption: {
                // llhttp refuses some heads (a bare CR, say) before they are complete; we find the
                // same fault once the head is: completing the head must make us refuse it too.
                guard nio.failed, nio.messages.count == ours.messages.count else { return false }
                let completed = WireHarness.ours(bytes + "\r\n\r\n".wire)
                return completed.failed || exempt(completed)
            },
            stricter: isStricterThanNIO)
    }

    @Test(arguments: corpus)
    func corpusAgreesWithNIO(_ text: String) {
        #expect(Self.disagreement(text.wire) == nil, "\(text.debugDescription)")
    }

    @Test(arguments: corpus)
    func everySplitPointGivesTheSameResult(_ text: String) {
        let bytes = text.wire
        let whole = WireHarness.ours(bytes)
        for split in 1..<bytes.count {
            #expect(WireHarness.ours(bytes, splits: [split]) == whole, "split at \(split) of \(text.debugDescription)")
        }
        #expect(WireHarness.ours(bytes, splits: Array(1..<bytes.count)) == whole, "byte by byte: \(text.debugDescription)")
    }

    /// Seeded mutations (`SIDECACHE_WIRE_SEED`, `SIDECACHE_WIRE_CASES`): each case is checked against
    /// NIO whole, and against itself split at a random point.
    @Test func mutationsAgreeWithNIOAndAreSplitInvariant() {
        let env = ProcessInfo.processInfo.environment
        var rng = SplitMix64(seed: env["SIDECACHE_WIRE_SEED"].flatMap { UInt64($0) } ?? 0x21_57_1C7)
        let cases = env["SIDECACHE_WIRE_CASES"].flatMap { Int($0) } ?? 4000
        var failures = 0
        var accepted = 0
        for n in 0..<cases {
            let base = Self.corpus[Int(rng.next() % UInt64(Self.corpus.count))].wire
            let bytes = Mutator.mutate(base, rounds: 1 + Int(rng.next() % 3), rng: &rng)
            if let problem = Self.disagreement(bytes) {
                failures += 1
                if failures <= 5 { Issue.record("case \(n): \(problem)\ninput: \(String(decoding: bytes, as: UTF8.self).debugDescription)") }
            }
            let whole = WireHarness.ours(bytes)
            if !whole.failed { accepted += 1 }
            let split = 1 + Int(rng.next() % UInt64(max(1, bytes.count - 1)))
            let pieces = WireHarness.ours(bytes, splits: [split])
            if pieces != whole {
                failures += 1
                if failures <= 5 { Issue.record("case \(n) split at \(split) differs: \(String(decoding: bytes, as: UTF8.self).debugDescription)") }
            }
        }
        #expect(failures == 0)
        // The mutations must leave a fair share valid, or the comparison of accepted input means little.
        #expect(accepted > cases / 10, "\(accepted) of \(cases) accepted")
    }
}

/// A small seeded generator, so that a failing case can be replayed.
struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// The mutations of issue 21 §4: byte flips, inserted CR / LF / SP / HTAB / NUL, duplicated and
/// reordered field lines, case changes.
enum Mutator {
    static func mutate(_ input: [UInt8], rounds: Int, rng: inout SplitMix64) -> [UInt8] {
        var bytes = input
        for _ in 0..<rounds where !bytes.isEmpty {
            let at = Int(rng.next() % UInt64(bytes.count))
            switch rng.next() % 7 {
            case 0:
                bytes[at] ^= UInt8(1 << (rng.next() % 8))
            case 1:
                let inserts: [UInt8] = [0x0D, 0x0A, 0x20, 0x09, 0x00, 0x0D, 0x0A]
                bytes.insert(inserts[Int(rng.next() % UInt64(inserts.count))], at: at)
            case 2:
                bytes.remove(at: at)
            case 3:
                let c = bytes[at]
                if c >= 0x61 && c <= 0x7A { bytes[at] = c - 0x20 } else if c >= 0x41 && c <= 0x5A { bytes[at] = c + 0x20 }
            case 4, 5:
                bytes = shuffleLines(bytes, duplicate: rng.next() % 7 == 4, rng: &rng)
            default:
                let interesting: [[UInt8]] = [Array(",".utf8), Array(";".utf8), Array("\"".utf8), Array(":".utf8), [0x7F], [0x80], [0xFF]]
                bytes.insert(contentsOf: interesting[Int(rng.next() % UInt64(interesting.count))], at: at)
            }
        }
        return bytes
    }

    /// Duplicates or swaps two field lines of the first head.
    static func shuffleLines(_ bytes: [UInt8], duplicate: Bool, rng: inout SplitMix64) -> [UInt8] {
        var lines: [[UInt8]] = []
        var start = 0
        var i = 0
        while i + 1 < bytes.count {
            if bytes[i] == 0x0D, bytes[i + 1] == 0x0A {
                lines.append(Array(bytes[start..<i + 2]))
                start = i + 2
                i += 2
                if lines.last == [0x0D, 0x0A] { break }
                continue
            }
            i += 1
        }
        guard lines.count > 3 else { return bytes }
        let rest = Array(bytes[start...])
        let a = 1 + Int(rng.next() % UInt64(lines.count - 2)), b = 1 + Int(rng.next() % UInt64(lines.count - 2))
        if duplicate { lines.insert(lines[a], at: b) } else { lines.swapAt(a, b) }
        return lines.flatMap { $0 } + rest
    }
}

