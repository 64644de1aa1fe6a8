import Foundation
import NIOCore
import NIOEmbedded
@testable import Sidecache
import TestSupport
import Testing

/// RFC 9112 §9.6 over real sockets: a connection sidecache ends after an error is closed in
/// stages, so the answer reaches a client that is still sending (issue 21 §3).
@Suite struct LingeringCloseTests {
    /// A head sent a field line at a time grows past `max_header_bytes` (16 KiB) while the client
    /// is still sending: the 431 is written at once. Closed at once, the connection resets on the
    /// client's next segment, and the client's send fails before it reads the answer (measured by
    /// hand with lingering off: 0 of 50 answers read, every client got ECONNRESET or EPIPE).
    static func oversizedHeadLineByLine(_ port: Int) throws -> Int {
        let c = try TestConnection(port: port)
        defer { c.close() }
        try c.send("GET /api/items/1 HTTP/1.1\r\nHost: x\r\n")
        let value = String(repeating: "v", count: 1000)
        for k in 0..<40 {
            try c.send("X-H\(k): \(value)\r\n")
            usleep(200)
        }
        try c.send("\r\n")
        return try c.readResponse().status
    }

    @Test func theErrorAnswerArrivesWhileTheClientIsStillSending() async throws {
        try await withProxy({ _ in .ok("x") }) { origin, proxy in
            let statuses = try await offloaded { () -> [Int] in
                (0..<30).map { _ in (try? Self.oversizedHeadLineByLine(proxy.port)) ?? 0 }
            }
            #expect(statuses == [Int](repeating: 431, count: 30))
            #expect(origin.requests.isEmpty)
            #expect(try await get(proxy.port, "/api/items/1").status == 200)
        }
    }

    /// The same with lingering off: answers are lost (so the test above can fail).
    @Test func withoutLingeringTheAnswersAreLost() async throws {
        try await withProxy(extra: "limits: { lingering_time: 0s }", { _ in .ok("x") }) { _, proxy in
            let statuses = try await offloaded { () -> [Int] in
                (0..<30).map { _ in (try? Self.oversizedHeadLineByLine(proxy.port)) ?? 0 }
            }
            #expect(statuses.filter { $0 == 431 }.count < 30)
        }
    }

    /// After the answer, a client that sends nothing more is closed once it was silent for
    /// `lingering_timeout`; one that goes on sending, once `lingering_time` is over. The client
    /// reads EOF at once (the sending side is shut first); that the connection was then closed
    /// whole shows as a reset when it sends again.
    @Test func lingeringEndsOnSilenceOrAfterItsTime() async throws {
        try await withProxy(extra: "limits: { lingering_time: 1500ms, lingering_timeout: 300ms }", { _ in .ok("x") }) { _, proxy in
            let result = try await offloaded { () -> (earlyOK: Bool, lateReset: Bool, talkerResetAfter: Double) in
                func answered(_ c: TestConnection) throws {
                    try c.send("GET / HTTP/2.0\r\nHost: x\r\n\r\n")
                    #expect(try c.readResponse().status == 505)
                }
                /// Sends twice, 50 ms apart: the second send fails once the peer reset the connection.
                func resets(_ c: TestConnection) -> Bool {
                    guard (try? c.send("x")) != nil else { return true }
                    usleep(50_000)
                    return (try? c.send("x")) == nil
                }
                let early = try TestConnection(port: proxy.port)
                try answered(early)
                usleep(100_000)
                let earlyOK = !resets(early)

                let late = try TestConnection(port: proxy.port)
                try answered(late)
                usleep(1_000_000)
                let lateReset = resets(late)

                let talker = try TestConnection(port: proxy.port)
                try answered(talker)
                let start = Date()
                var resetAfter = 99.0
                while Date().timeIntervalSince(start) < 10 {
                    if (try? talker.send("more bytes\r\n")) == nil {
                        resetAfter = Date().timeIntervalSince(start)
                        break
                    }
                    usleep(50_000)
                }
                return (earlyOK, lateReset, resetAfter)
            }
            #expect(result.earlyOK, "still lingering 100 ms after the answer")
            #expect(result.lateReset, "closed after 1 s of silence")
            // Generous upper bound for a loaded machine; the lower bound shows it did linger.
            #expect(result.talkerResetAfter >= 1.2 && result.talkerResetAfter < 5, "\(result.talkerResetAfter)")
        }
    }

    /// The handler alone: what arrives is dropped, and the connection closes when the client
    /// closes, sends too much, falls silent, or the time is over.
    @Test func theHandlerDropsWhatArrivesAndClosesOnEachEnding() throws {
        func channel(time: Int64 = 10, timeout: Int64 = 2, maxBytes: Int = 100) throws -> EmbeddedChannel {
            let channel = EmbeddedChannel()
            try channel.pipeline.syncOperations.addHandler(
                LingeringClose(settings: .init(time: .seconds(time), timeout: .seconds(timeout), maxBytes: maxBytes)))
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
            return channel
        }
        let closes = try channel()
        try closes.writeInbound(ByteBuffer(string: "late body bytes"))
        #expect(try closes.readInbound(as: ByteBuffer.self) == nil)
        #expect(closes.isActive)
        closes.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        #expect(!closes.isActive)

        let floods = try channel(maxBytes: 10)
        try floods.writeInbound(ByteBuffer(string: "0123456789abc"))
        #expect(!floods.isActive)

        let silent = try channel(timeout: 2)
        silent.embeddedEventLoop.advanceTime(by: .milliseconds(1500))
        try silent.writeInbound(ByteBuffer(string: "x"))
        silent.embeddedEventLoop.advanceTime(by: .milliseconds(1500))
        #expect(silent.isActive)  // the read 1.5 s in restarted the silence
        silent.embeddedEventLoop.advanceTime(by: .milliseconds(600))
        #expect(!silent.isActive)

        let talker = try channel(time: 3, timeout: 1)
        for _ in 0..<5 {
            talker.embeddedEventLoop.advanceTime(by: .milliseconds(500))
            if talker.isActive { try talker.writeInbound(ByteBuffer(string: "x")) }
        }
        #expect(talker.isActive)  // 2.5 s
        talker.embeddedEventLoop.advanceTime(by: .milliseconds(600))
        #expect(!talker.isActive)
    }
}
