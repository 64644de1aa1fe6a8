import HTTPWire
import NIOCore
import Synchronization

/// Request ids unique across restarts without a syscall per request: a random per-process prefix and
/// a counter.
final class RequestIDGenerator: Sendable {
    private let prefix: UInt64
    private let counter = Atomic<UInt64>(0)

    init() {
        var rng = SystemRandomNumberGenerator()
        prefix = rng.next()
    }

    func next() -> RequestID {
        RequestID(prefix: prefix, counter: counter.wrappingAdd(1, ordering: .relaxed).newValue)
    }

    /// Client-supplied ids are kept when they are short printable tokens, so a trace id from the
    /// edge survives; anything else is replaced (it would be injected into logs and upstream headers).
    static func isAcceptable(_ id: String) -> Bool {
        guard !id.isEmpty, id.utf8.count <= 128 else { return false }
        return id.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F && $0 != 0x22 && $0 != 0x5C }
    }
}

/// A request's id: the client's own `X-Request-ID` (an acceptable one), or a generated
/// `<16 hex digits of the prefix>-<the counter in hex>`, kept as two numbers until it is written, so
/// a request whose id only goes into its response head and log line never makes a string of it.
/// Neither form holds a quote, a backslash or a control character: both are written as they are.
struct RequestID: Sendable, Equatable {
    private enum Storage: Equatable {
        case client(String)
        case generated(prefix: UInt64, counter: UInt64)
    }

    private let storage: Storage

    init(client: String) { storage = .client(client) }

    init(prefix: UInt64, counter: UInt64) { storage = .generated(prefix: prefix, counter: counter) }

    var utf8Count: Int {
        switch storage {
        case .client(let id): id.utf8.count
        case .generated(_, let counter): 17 + Self.hexDigits(counter)
        }
    }

    var text: String {
        switch storage {
        case .client(let id):
            return id
        case .generated(let prefix, let counter):
            return String(unsafeUninitializedCapacity: utf8Count) { out in
                Self.write(prefix: prefix, counter: counter, into: UnsafeMutableRawBufferPointer(out))
            }
        }
    }

    func write(to out: inout HeadBytes) {
        switch storage {
        case .client(let id):
            out.put(id)
        case .generated(let prefix, let counter):
            out.put(count: utf8Count) { _ = Self.write(prefix: prefix, counter: counter, into: $0) }
        }
    }

    func append(to bytes: inout [UInt8]) {
        switch storage {
        case .client(let id):
            bytes.append(contentsOf: id.utf8)
        case .generated(let prefix, let counter):
            let count = utf8Count
            let start = bytes.count
            bytes.append(contentsOf: repeatElement(0, count: count))
            bytes.withUnsafeMutableBytes { raw in
                _ = Self.write(prefix: prefix, counter: counter, into: UnsafeMutableRawBufferPointer(rebasing: raw[start..<start + count]))
            }
        }
    }

    private static func hexDigits(_ n: UInt64) -> Int {
        n == 0 ? 1 : (64 - n.leadingZeroBitCount + 3) / 4
    }

    private static func write(prefix: UInt64, counter: UInt64, into out: UnsafeMutableRawBufferPointer) -> Int {
        let digits = hexDigits(counter)
        hex(prefix, digits: 16, into: out, at: 0)
        out[16] = 0x2D  // "-"
        hex(counter, digits: digits, into: out, at: 17)
        return 17 + digits
    }

    private static func hex(_ value: UInt64, digits: Int, into out: UnsafeMutableRawBufferPointer, at start: Int) {
        var v = value
        for i in stride(from: start + digits - 1, through: start, by: -1) {
            let d = UInt8(truncatingIfNeeded: v & 0xF)
            out[i] = d < 10 ? 0x30 + d : 0x57 + d
            v >>= 4
        }
    }
}
