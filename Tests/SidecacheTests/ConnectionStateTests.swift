import HTTPWire
import NIOHTTP1
@testable import Sidecache
import Testing

/// The connection's state machine as a value: each event's action, with no channel.
@Suite struct ConnectionStateTests {
    final class Request {}
    typealias State = ConnectionState<Request, String>

    /// Drains until the state machine waits, returning the steps taken (parts by name).
    static func drain(_ state: inout State, starting: (String) -> Request? = { _ in nil }) -> [String] {
        var steps: [String] = []
        guard state.beginDraining() else { return ["busy"] }
        defer { state.endDraining() }
        while true {
            switch state.nextStep() {
            case .process(let part):
                steps.append(part)
                if let r = starting(part) { state.begin(r) }
            case .resumeReading: steps.append("resume")
            case .respondMalformed(let e): steps.append("malformed \(e)"); return steps
            case .close: steps.append("close"); return steps
            case .wait: return steps
            }
        }
    }

    @Test func aRequestWithNothingInProgressIsProcessedAtOnce() {
        var state = State()
        let r1 = state.read("head1", isHead: true)
        #expect(r1 == .process)
        state.begin(Request())
        let r2 = state.read("body1", isHead: false)
        #expect(r2 == .process)
    }

    @Test func aPipelinedHeadWaitsAndReadingPausesOnce() {
        var state = State()
        let first = Request()
        _ = state.read("head1", isHead: true)
        state.begin(first)
        let r3 = state.read("head2", isHead: true)
        #expect(r3 == .hold(pauseReading: true))
        let r4 = state.read("end2", isHead: false)
        #expect(r4 == .hold(pauseReading: false))
        #expect(state.readingPaused)
        // The first request's own parts may still arrive (they go to it, behind the queue).
        let r5 = state.complete(first)
        #expect(r5)
        let second = Request()
        #expect(Self.drain(&state, starting: { $0 == "head2" ? second : nil }) == ["head2", "end2", "resume"])
        #expect(state.isCurrent(second) && !state.readingPaused)
    }

    @Test func theNextHeadWaitsForTheRequestItStartedBehind() {
        var state = State()
        let first = Request()
        _ = state.read("head1", isHead: true)
        state.begin(first)
        _ = state.read("head2", isHead: true)
        _ = state.read("head3", isHead: true)
        let r6 = state.complete(first)
        #expect(r6)
        let second = Request()
        // head3 stays queued while head2's request is in progress; reading stays paused.
        #expect(Self.drain(&state, starting: { $0 == "head2" ? second : nil }) == ["head2"])
        #expect(state.readingPaused)
    }

    @Test func aReEntrantDrainReturnsAtOnce() {
        var state = State()
        let r7 = state.beginDraining()
        #expect(r7)
        let r8 = state.beginDraining()
        #expect(!r8)
        state.endDraining()
        let r9 = state.beginDraining()
        #expect(r9)
    }

    @Test func anAdmissionWaitHoldsTheRequestsOwnPartsAndBlocksDraining() {
        var state = State()
        let r = Request()
        _ = state.read("head", isHead: true)
        state.begin(r)
        state.awaitAdmission()
        let r10 = state.read("end", isHead: false)
        #expect(r10 == .hold(pauseReading: true))
        #expect(Self.drain(&state) == ["busy"])
        state.admissionDecided()
        #expect(Self.drain(&state) == ["end", "resume"])
    }

    @Test func quiescingClosesAnIdleConnectionAtOnceAndABusyOneAfterItsResponse() {
        var idle = State()
        let r11 = idle.quiesce()
        #expect(r11)
        var busy = State()
        let r = Request()
        busy.begin(r)
        let r12 = busy.quiesce()
        #expect(!r12)
        #expect(busy.closesAfter(keepAlive: true))
        let r13 = busy.complete(r)
        #expect(r13)
        #expect(Self.drain(&busy) == ["close"])
    }

    @Test func aHalfCloseAnswersWhatWasSentThenCloses() {
        var idle = State()
        let r14 = idle.inputClosed(abandons: { _ in false })
        #expect(r14 == .close)

        var busy = State()
        let r = Request()
        busy.begin(r)
        _ = busy.read("head2", isHead: true)
        let r15 = busy.inputClosed(abandons: { _ in false })
        #expect(r15 == .none)
        // A queued request follows: the current response does not close the connection.
        #expect(!busy.closesAfter(keepAlive: true))
        let r16 = busy.complete(r)
        #expect(r16)
        let second = Request()
        #expect(Self.drain(&busy, starting: { _ in second }) == ["head2"])
        #expect(busy.closesAfter(keepAlive: true))
        let r17 = busy.complete(second)
        #expect(r17)
        #expect(Self.drain(&busy) == ["close"])
    }

    @Test func aHalfCloseThatAbandonsDropsTheQueue() {
        var state = State()
        state.begin(Request())
        _ = state.read("head2", isHead: true)
        let r18 = state.inputClosed(abandons: { _ in true })
        #expect(r18 == .abandonAndClose)
        #expect(state.closesAfter(keepAlive: true))
    }

    @Test func aMalformedRequestIsAnsweredInItsTurn() {
        var idle = State()
        let r19 = idle.malformed(.badFieldName, currentRequestEnded: true)
        #expect(r19 == .respond)

        var busy = State()
        let r = Request()
        busy.begin(r)
        let r20 = busy.malformed(.badFieldName, currentRequestEnded: true)
        #expect(r20 == .deferred)
        // Owed an answer, the connection is not closed by the current response.
        #expect(!busy.closesAfter(keepAlive: true) || busy.quiescing)
        let r21 = busy.complete(r)
        #expect(r21)
        #expect(Self.drain(&busy) == ["malformed \(WireError.badFieldName)"])
    }

    @Test func malformedBytesInsideTheCurrentBodyAbandonIt() {
        var state = State()
        let r = Request()
        state.begin(r)
        _ = state.read("head2", isHead: true)
        let r22 = state.malformed(.badChunk, currentRequestEnded: false)
        #expect(r22 == .abandonCurrent)
        // The queued request is dropped with it: nothing is left to process.
        _ = state.complete(r)
        #expect(Self.drain(&state) == ["resume"])
    }

    @Test func aCallbackForARequestThatEndedIsNotCurrent() {
        var state = State()
        let r = Request()
        state.begin(r)
        let r23 = state.complete(r)
        #expect(r23)
        #expect(!state.isCurrent(r))
        let r24 = state.complete(r)
        #expect(!r24)
    }
}

extension ConnectionStateTests {
    @Test func afterAClosingResponseNothingReadIsProcessed() {
        var state = State()
        let r = Request()
        state.begin(r)
        let queued = state.read("head2", isHead: true)
        #expect(queued == .hold(pauseReading: true))
        state.willClose()
        let late = state.read("end1", isHead: false)
        #expect(late == .discard)
        _ = state.complete(r)
        #expect(Self.drain(&state) == [])
    }
}
