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

    /// `<16 hex digits of the prefix>-<the counter in hex>`, written into one string allocation.
    func next() -> String {
        let n = counter.wrappingAdd(1, ordering: .relaxed).newValue
        let digits = n == 0 ? 1 : (64 - n.leadingZeroBitCount + 3) / 4
        return String(unsafeUninitializedCapacity: 17 + digits) { out in
            Self.hex(prefix, digits: 16, into: out, at: 0)
            out[16] = 0x2D  // "-"
            Self.hex(n, digits: digits, into: out, at: 17)
            return 17 + digits
        }
    }

    private static func hex(_ value: UInt64, digits: Int, into out: UnsafeMutableBufferPointer<UInt8>, at start: Int) {
        var v = value
        for i in stride(from: start + digits - 1, through: start, by: -1) {
            let d = UInt8(truncatingIfNeeded: v & 0xF)
            out[i] = d < 10 ? 0x30 + d : 0x57 + d
            v >>= 4
        }
    }

    /// Client-supplied ids are kept when they are short printable tokens, so a trace id from the
    /// edge survives; anything else is replaced (it would be injected into logs and upstream headers).
    static func isAcceptable(_ id: String) -> Bool {
        guard !id.isEmpty, id.utf8.count <= 128 else { return false }
        return id.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F && $0 != 0x22 && $0 != 0x5C }
    }
}
