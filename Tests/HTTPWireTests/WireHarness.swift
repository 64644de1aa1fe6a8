import HTTPWire
import NIOCore
import NIOEmbedded
import NIOHTTP1

/// One complete request as a decoder saw it, in a form both decoders can be compared in.
struct DecodedMessage: Equatable, CustomStringConvertible {
    var method: String
    var target: String
    var minorVersion: Int
    var fields: [[String]]
    var body: [UInt8]
    var trailers: [[String]]

    var description: String {
        "\(method) \(target) HTTP/1.\(minorVersion) \(fields) body=\(body.count)B trailers=\(trailers)"
    }
}

/// What a decoder made of a byte stream: the requests it completed, and whether it stopped on an error.
struct DecodeOutcome: Equatable {
    var messages: [DecodedMessage]
    var error: WireError?
    /// NIO's decoder reports its errors as `HTTPParserError`; only their presence is compared.
    var failed: Bool
    /// The method and target of every head decoded, complete or not (ours only).
    var heads: [[String]] = []
    /// The index of the first message after which the connection closes (ours only).
    var firstClosing: Int?
}

enum WireHarness {
    /// Our decoder over `bytes`, delivered in pieces cut at `splits` (offsets, ascending).
    static func ours(_ bytes: [UInt8], splits: [Int] = [], limits: RequestHeadLimits = RequestHeadLimits()) -> DecodeOutcome {
        var decoder = RequestStreamDecoder(limits: limits)
        var buffer = ByteBuffer()
        var messages: [DecodedMessage] = []
        var heads: [[String]] = []
        var firstClosing: Int?
        var current: DecodedMessage?
        var cuts = splits.filter { $0 > 0 && $0 < bytes.count } + [bytes.count]
        cuts = Array(Set(cuts)).sorted()
        var from = 0
        do throws(WireError) {
            for cut in cuts {
                buffer.writeBytes(bytes[from..<cut])
                from = cut
                while let event = try decoder.next(&buffer) {
                    switch event {
                    case .head(let head):
                        heads.append([head.methodString, head.targetString])
                        if !head.keepAlive, firstClosing == nil { firstClosing = heads.count - 1 }
                        current = DecodedMessage(method: head.methodString, target: head.targetString, minorVersion: head.minorVersion,
                                                 fields: head.fieldStrings.map { [$0.name, $0.value] }, body: [], trailers: [])
                    case .body(let data):
                        current?.body += Array(data.readableBytesView)
                    case .end(let trailers):
                        if var m = current {
                            m.trailers = trailers.map { [$0.name, $0.value] }
                            messages.append(m)
                        }
                        current = nil
                    }
                }
                buffer.discardReadBytes()
            }
        } catch {
            return DecodeOutcome(messages: messages, error: error, failed: true, heads: heads, firstClosing: firstClosing)
        }
        return DecodeOutcome(messages: messages, error: nil, failed: false, heads: heads, firstClosing: firstClosing)
    }

    /// NIO's `HTTPRequestDecoder` (llhttp) over the same bytes, through an `EmbeddedChannel`.
    static func nio(_ bytes: [UInt8], splits: [Int] = []) -> DecodeOutcome {
        let channel = EmbeddedChannel()
        defer { _ = try? channel.finish(acceptAlreadyClosed: true) }
        do {
            try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)))
        } catch {
            return DecodeOutcome(messages: [], error: nil, failed: true)
        }
        var messages: [DecodedMessage] = []
        var current: DecodedMessage?
        var failed = false
        var cuts = splits.filter { $0 > 0 && $0 < bytes.count } + [bytes.count]
        cuts = Array(Set(cuts)).sorted()
        var from = 0
        func drain() {
            while let part = try? channel.readInbound(as: HTTPServerRequestPart.self) {
                switch part {
                case .head(let head):
                    // llhttp keeps a value's trailing whitespace, which is not part of it (RFC 9110 §5.5).
                    current = DecodedMessage(method: head.method.rawValue, target: head.uri, minorVersion: head.version.minor,
                                             fields: head.headers.map { [$0.name, trimmed($0.value)] }, body: [], trailers: [])
                case .body(let data):
                    current?.body += Array(data.readableBytesView)
                case .end(let trailers):
                    if var m = current {
                        m.trailers = (trailers ?? [:]).map { [$0.name, trimmed($0.value)] }
                        messages.append(m)
                    }
                    current = nil
                }
            }
        }
        for cut in cuts where !failed {
            var buffer = channel.allocator.buffer(capacity: cut - from)
            buffer.writeBytes(bytes[from..<cut])
            from = cut
            do { try channel.writeInbound(buffer) } catch { failed = true }
            drain()
        }
        return DecodeOutcome(messages: messages, error: nil, failed: failed)
    }
}

func trimmed(_ value: String) -> String {
    var bytes = Array(value.utf8)
    while let last = bytes.last, last == 0x20 || last == 0x09 { bytes.removeLast() }
    return String(decoding: bytes, as: UTF8.self)
}

extension String {
    var wire: [UInt8] { Array(utf8) }
}

/// The comparison both differential suites make, over what each decoder completed.
enum Differential {
    /// One decoder's reading of a stream.
    struct Reading<Message: Equatable> {
        var messages: [Message]
        var failed: Bool
        /// Ours only: why we stopped, and the first message after which the connection closes.
        var error: WireError? = nil
        var firstClosing: Int? = nil
    }

    /// A message describing how the two readings disagree beyond what is allowed, or nil.
    /// - `unjudged`: the messages both completed are compared, but not which side refused more
    ///   (input with something one side is known to read otherwise);
    /// - `acceptedExemption`: we accept and NIO refuses, for a reason on the suite's list;
    /// - `stricter`: a reason we may refuse what NIO accepts.
    static func disagreement<Message>(ours: Reading<Message>, nio: Reading<Message>, unjudged: Bool = false,
                                      acceptedExemption: () -> Bool, stricter: (WireError) -> Bool) -> String? {
        var ours = ours, nio = nio
        // After a message that ends its connection llhttp refuses what follows; we go on parsing,
        // and the proxy closes after answering it. Only what comes before the close is compared.
        if let last = ours.firstClosing, ours.messages.count > last {
            ours.messages = Array(ours.messages.prefix(last + 1))
            ours.failed = false
            ours.error = nil
            if nio.messages.count > last { nio.messages = Array(nio.messages.prefix(last + 1)) }
            nio.failed = false
        }
        let shared = min(ours.messages.count, nio.messages.count)
        if Array(ours.messages.prefix(shared)) != Array(nio.messages.prefix(shared)) {
            return "messages differ: ours \(ours.messages) nio \(nio.messages)"
        }
        if unjudged { return nil }
        if !ours.failed {
            guard nio.failed || nio.messages.count != ours.messages.count else { return nil }
            if acceptedExemption() { return nil }
            return "we accept, NIO \(nio.failed ? "rejects" : "differs"): ours \(ours.messages) nio \(nio.messages)"
        }
        // We refused: NIO may refuse too, or accept only for a listed reason.
        if !nio.failed || nio.messages.count > ours.messages.count {
            guard let error = ours.error, stricter(error) else {
                return "we reject (\(ours.error.map { "\($0)" } ?? "?")) what NIO accepts: nio \(nio.messages)"
            }
        }
        return nil
    }
}
