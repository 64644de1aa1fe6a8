import Foundation
import HTTPWire
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

/// Our response decoder against NIO's `HTTPResponseDecoder` (llhttp), as `DifferentialTests` does
/// for requests: a corpus of upstream responses and seeded mutations of them, each stream read to
/// its end (EOF), answering GET requests.
@Suite struct ResponseDifferentialTests {
    struct Response: Equatable, CustomStringConvertible {
        var status: Int
        var fields: [[String]]
        var body: [UInt8]
        var trailers: [[String]]
        var description: String { "\(status) \(fields) body=\(body.count)B trailers=\(trailers)" }
    }

    struct Outcome: Equatable {
        var responses: [Response]
        var failed: Bool
        var error: WireError?
        /// The first response after which the connection is not reused (HTTP/1.0 without
        /// keep-alive, `Connection: close`, 101): llhttp refuses what follows (ours only).
        var firstClosing: Int? = nil
    }

    static let corpus: [String] = [
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\nCache-Control: max-age=60\r\n\r\n{\"ok\":true}",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nwiki\r\n5;x=y\r\npedia\r\n0\r\nX-Trailer: 1\r\n\r\n",
        "HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
        "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi",
        "HTTP/1.0 200 OK\r\nServer: old\r\n\r\nuntil the close",
        "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\nHTTP/1.1 500 Internal Server Error\r\nContent-Length: 3\r\nConnection: close\r\n\r\nbad",
        "HTTP/1.1 200 \r\nX-Empty:\r\nX-Spaces:  a b  \r\nContent-Length: 1\r\n\r\nz",
        "HTTP/1.1 301 Moved Permanently\r\nLocation: /b\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
    ]

    static func ours(_ bytes: [UInt8], splits: [Int] = []) -> Outcome {
        var decoder = ResponseStreamDecoder()
        for _ in 0..<4 { decoder.requestSent(isHEAD: false) }
        var buffer = ByteBuffer()
        var responses: [Response] = []
        var current: Response?
        var firstClosing: Int?
        var cuts = Array(Set(splits.filter { $0 > 0 && $0 < bytes.count } + [bytes.count])).sorted()
        if cuts.isEmpty { cuts = [0] }
        var from = 0
        func take(_ event: ResponseStreamDecoder.Event) {
            switch event {
            case .head(let head, let interim):
                // Interim heads: NIO hands them on too; compared as responses with no body.
                let r = Response(status: head.status, fields: head.fieldStrings.map { [$0.name, $0.value] }, body: [], trailers: [])
                if interim { responses.append(r) } else { current = r }
                if !interim, !head.keepAlive || head.status == 101, firstClosing == nil { firstClosing = responses.count }
            case .body(let data):
                current?.body += Array(data.readableBytesView)
            case .end(let trailers):
                if var r = current {
                    r.trailers = trailers.map { [$0.name, $0.value] }
                    responses.append(r)
                }
                current = nil
            }
        }
        do throws(WireError) {
            for cut in cuts {
                buffer.writeBytes(bytes[from..<cut])
                from = cut
                while let event = try decoder.next(&buffer) { take(event) }
            }
            if let event = try decoder.finish(unreadBytes: buffer.readableBytes) { take(event) }
        } catch {
            return Outcome(responses: responses, failed: true, error: error, firstClosing: firstClosing)
        }
        return Outcome(responses: responses, failed: false, error: nil, firstClosing: firstClosing)
    }

    static func nio(_ bytes: [UInt8]) -> Outcome {
        let channel = EmbeddedChannel()
        var responses: [Response] = []
        var current: Response?
        var failed = false
        do {
            try channel.pipeline.syncOperations.addHandler(HTTPRequestEncoder())
            try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(HTTPResponseDecoder(leftOverBytesStrategy: .dropBytes,
                                                                                                   informationalResponseStrategy: .forward)))
            for _ in 0..<4 {
                try channel.writeOutbound(HTTPClientRequestPart.head(HTTPRequestHead(version: .http1_1, method: .GET, uri: "/", headers: ["Host": "x"])))
                try channel.writeOutbound(HTTPClientRequestPart.end(nil))
            }
            while (try channel.readOutbound(as: ByteBuffer.self)) != nil {}
        } catch {
            return Outcome(responses: [], failed: true, error: nil)
        }
        func drain() {
            while let part = try? channel.readInbound(as: HTTPClientResponsePart.self) {
                switch part {
                case .head(let head):
                    let r = Response(status: Int(head.status.code), fields: head.headers.map { [$0.name, trimmed($0.value)] }, body: [], trailers: [])
                    if (100..<200).contains(r.status) && r.status != 101 { responses.append(r) } else { current = r }
                case .body(let data):
                    current?.body += Array(data.readableBytesView)
                case .end(let trailers):
                    if var r = current {
                        r.trailers = (trailers ?? [:]).map { [$0.name, trimmed($0.value)] }
                        responses.append(r)
                    }
                    current = nil
                }
            }
        }
        do {
            try channel.writeInbound(ByteBuffer(bytes: bytes))
        } catch {
            failed = true
        }
        drain()
        if !failed {
            do { _ = try channel.finish(acceptAlreadyClosed: true) } catch { failed = true }
            drain()
        }
        return Outcome(responses: responses, failed: failed, error: nil)
    }

    /// Why we may refuse a response llhttp reads: the profile's limits and its stricter chunk and
    /// field grammar (as for requests), and status lines llhttp reads loosely.
    static func isStricterThanNIO(_ error: WireError) -> Bool {
        switch error {
        case .badChunk, .chunkMetadataTooLarge, .badTrailer, .badFieldValue, .badFieldName, .headTooLarge, .badStatusLine: true
        // A repeated or listed Content-Length of equal values, and Transfer-Encoding repeated:
        // outside the profile, refused as nginx refuses them.
        case .badContentLength, .badTransferEncoding: true
        // A head the upstream closed inside (llhttp sometimes completes one at EOF after bare CRs).
        case .truncated: true
        default: false
        }
    }

    static func disagreement(_ bytes: [UInt8]) -> String? {
        if DifferentialTests.lengthHasTrailingTab(bytes) { return nil }
        let ours = Self.ours(bytes)
        let nio = Self.nio(bytes)
        return Differential.disagreement(
            ours: .init(messages: ours.responses, failed: ours.failed, error: ours.error, firstClosing: ours.firstClosing),
            nio: .init(messages: nio.responses, failed: nio.failed),
            acceptedExemption: { false },
            stricter: isStricterThanNIO)
    }

    @Test(arguments: corpus)
    func corpusAgreesWithNIO(_ text: String) {
        #expect(Self.disagreement(text.wire) == nil, "\(text.debugDescription)")
    }

    @Test(arguments: corpus)
    func everySplitPointGivesTheSameResult(_ text: String) {
        let bytes = text.wire
        let whole = Self.ours(bytes)
        for split in 1..<bytes.count {
            #expect(Self.ours(bytes, splits: [split]) == whole, "split at \(split) of \(text.debugDescription)")
        }
    }

    @Test func mutationsAgreeWithNIO() {
        let env = ProcessInfo.processInfo.environment
        var rng = SplitMix64(seed: env["SIDECACHE_WIRE_SEED"].flatMap { UInt64($0) } ?? 0x5E5_90_5E)
        let cases = env["SIDECACHE_WIRE_CASES"].flatMap { Int($0) } ?? 3000
        var failures = 0
        var accepted = 0
        for n in 0..<cases {
            let base = Self.corpus[Int(rng.next() % UInt64(Self.corpus.count))].wire
            let bytes = Mutator.mutate(base, rounds: 1 + Int(rng.next() % 3), rng: &rng)
            if let problem = Self.disagreement(bytes) {
                failures += 1
                if failures <= 5 { Issue.record("case \(n): \(problem)\ninput: \(String(decoding: bytes, as: UTF8.self).debugDescription)") }
            }
            if !Self.ours(bytes).failed { accepted += 1 }
        }
        #expect(failures == 0)
        #expect(accepted > cases / 10, "\(accepted) of \(cases) accepted")
    }
}
