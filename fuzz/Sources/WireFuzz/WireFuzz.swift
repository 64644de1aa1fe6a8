import HTTPWire
import NIOCore
import NIOEmbedded
import NIOHTTP1

/// One input, read as a request stream and as a response stream, each whole and split in two at a
/// point the input chooses. A crash, a trap (overflow, bounds) or a disagreement stops the fuzzer.
///
/// The disagreements checked are the ones that matter for relaying bytes safely: a request stream
/// we accept must be accepted by NIO's decoder (llhttp) with the same heads, targets, bodies and
/// number of requests, unless its method is one llhttp does not know; and the result must not
/// depend on where the bytes were split. (The full differential, with the list of what we refuse
/// and llhttp accepts, is `swift test`'s DifferentialTests.)
func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data else { return 0 }
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let split = size > 1 ? Int(bytes[0]) % size : 0

    let whole = Requests.ours(bytes, split: nil)
    let pieces = Requests.ours(bytes, split: split)
    guard whole == pieces else { fatalError("request split at \(split) changes the result: \(whole) vs \(pieces)") }
    // Every head decoded counts, complete or not (as in DifferentialTests): llhttp refuses a
    // method it does not know as soon as it reads it, before the message's body is there.
    if whole.error == nil, !whole.messages.isEmpty, !whole.heads.contains(where: Requests.nioRefuses), !Requests.lengthHasTrailingTab(bytes) {
        let nio = Requests.nio(bytes)
        // llhttp stops after a request that ends the connection; compare up to it.
        let n = whole.closesAfter.map { min($0 + 1, whole.messages.count) } ?? whole.messages.count
        // llhttp refuses some heads before they are complete; we must refuse them once they are.
        // (Or it is a method llhttp does not know, which it refuses at once.)
        let completed = nio.failed ? Requests.ours(bytes + Array("\r\n\r\n".utf8), split: nil) : whole
        let refusedWhenComplete = nio.failed
            && (completed.error != nil || completed.heads.contains(where: Requests.nioRefuses))
        guard nio.messages.count >= n, Array(nio.messages.prefix(n)) == Array(whole.messages.prefix(n)),
              !nio.failed || whole.closesAfter != nil || refusedWhenComplete else {
            fatalError("accepted requests NIO reads otherwise: ours \(whole.messages) nio \(nio.messages) failed \(nio.failed)")
        }
    }

    let response = Responses.ours(bytes, split: nil)
    guard response == Responses.ours(bytes, split: split) else { fatalError("response split at \(split) changes the result") }
    return 0
}

struct Message: Equatable {
    var method: String
    var target: String
    var fields: [String]
    var body: [UInt8]
}

struct Outcome: Equatable {
    var messages: [Message] = []
    /// Every head decoded (its method and target; no fields or body), complete message or not.
    var heads: [Message] = []
    var error: WireError?
    var failed = false
    /// Index of the first request after which the connection closes.
    var closesAfter: Int?
}

enum Requests {
    static let nioMethods: Set<String> = ["DELETE", "GET", "HEAD", "POST", "PUT", "OPTIONS", "PATCH", "TRACE"]

    /// What we accept and llhttp refuses, as in `swift test`'s DifferentialTests: a method it does
    /// not know (RFC 9110 §9.1 allows any token), an absolute-form scheme with digits, `+`, `-` or
    /// `.` (RFC 3986 §3.1).
    static func nioRefuses(_ m: Message) -> Bool {
        if !nioMethods.contains(m.method) { return true }
        guard m.target.first != "/", let colon = m.target.firstIndex(of: ":") else { return false }
        if m.target[..<colon].contains(where: { !$0.isLetter }) { return true }
        // llhttp allows fewer bytes in a host than RFC 3986's reg-name (sub-delims, "_", "~", "%").
        let authority = m.target[colon...].dropFirst(3).prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        return authority.contains { !($0.isLetter || $0.isNumber || ".-:[]@".contains($0)) }
    }

    /// llhttp refuses a Content-Length or Transfer-Encoding followed by HTAB; it is OWS (RFC 9110 §5.5).
    static func lengthHasTrailingTab(_ bytes: [UInt8]) -> Bool {
        String(decoding: bytes, as: UTF8.self).split(separator: Character("\r\n")).contains { line in
            let name = line.lowercased()
            return (name.hasPrefix("content-length:") || name.hasPrefix("transfer-encoding:")) && line.last?.isWhitespace == true && line.contains("\t")
        }
    }

    static func ours(_ bytes: [UInt8], split: Int?) -> Outcome {
        var decoder = RequestStreamDecoder()
        var buffer = ByteBuffer()
        var outcome = Outcome()
        var current: Message?
        let cuts = split.map { [$0, bytes.count] } ?? [bytes.count]
        var from = 0
        do throws(WireError) {
            for cut in cuts where cut >= from {
                buffer.writeBytes(bytes[from..<cut])
                from = cut
                while let event = try decoder.next(&buffer) {
                    switch event {
                    case .head(let head):
                        current = Message(method: head.methodString, target: head.targetString,
                                          fields: head.fieldStrings.flatMap { [$0.name, $0.value] }, body: [])
                        outcome.heads.append(Message(method: head.methodString, target: head.targetString, fields: [], body: []))
                        if !head.keepAlive, outcome.closesAfter == nil { outcome.closesAfter = outcome.messages.count }
                    case .body(let b):
                        current?.body += Array(b.readableBytesView)
                    case .end:
                        if let m = current { outcome.messages.append(m) }
                        current = nil
                    }
                }
            }
        } catch {
            outcome.error = error
        }
        return outcome
    }

    static func nio(_ bytes: [UInt8]) -> Outcome {
        let channel = EmbeddedChannel()
        defer { _ = try? channel.finish(acceptAlreadyClosed: true) }
        var outcome = Outcome()
        var current: Message?
        do {
            try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(HTTPRequestDecoder()))
            try channel.writeInbound(ByteBuffer(bytes: bytes))
        } catch {
            outcome.failed = true
        }
        while let part = try? channel.readInbound(as: HTTPServerRequestPart.self) {
            switch part {
            case .head(let head):
                current = Message(method: head.method.rawValue, target: head.uri, fields: head.headers.flatMap { [$0.name, trimmed($0.value)] }, body: [])
            case .body(let b):
                current?.body += Array(b.readableBytesView)
            case .end:
                if let m = current { outcome.messages.append(m) }
                current = nil
            }
        }
        return outcome
    }

    static func trimmed(_ value: String) -> String {
        var bytes = Array(value.utf8)
        while let last = bytes.last, last == 0x20 || last == 0x09 { bytes.removeLast() }
        return String(decoding: bytes, as: UTF8.self)
    }
}

enum Responses {
    struct Result: Equatable {
        var statuses: [Int] = []
        var bodyBytes = 0
        var error: WireError?
    }

    static func ours(_ bytes: [UInt8], split: Int?) -> Result {
        var decoder = ResponseStreamDecoder()
        for _ in 0..<4 { decoder.requestSent(isHEAD: false) }
        var buffer = ByteBuffer()
        var result = Result()
        let cuts = split.map { [$0, bytes.count] } ?? [bytes.count]
        var from = 0
        do throws(WireError) {
            for cut in cuts where cut >= from {
                buffer.writeBytes(bytes[from..<cut])
                from = cut
                while let event = try decoder.next(&buffer) {
                    switch event {
                    case .head(let head, _): result.statuses.append(head.status)
                    case .body(let b): result.bodyBytes += b.readableBytes
                    case .end: break
                    }
                }
            }
            _ = try decoder.finish(unreadBytes: buffer.readableBytes)
        } catch {
            result.error = error
        }
        return result
    }
}
