import NIOConcurrencyHelpers

/// Request ids unique across restarts without a syscall per request: a random per-process prefix and
/// a counter.
final class RequestIDGenerator: Sendable {
    private let prefix: String
    private let counter = NIOLockedValueBox<UInt64>(0)

    init() {
        var rng = SystemRandomNumberGenerator()
        let raw = String(rng.next() as UInt64, radix: 16)
        prefix = String(repeating: "0", count: 16 - raw.count) + raw
    }

    func next() -> String {
        let n = counter.withLockedValue { value -> UInt64 in
            value &+= 1
            return value
        }
        return prefix + "-" + String(n, radix: 16)
    }

    /// Client-supplied ids are kept when they are short printable tokens, so a trace id from the
    /// edge survives; anything else is replaced (it would be injected into logs and upstream headers).
    static func isAcceptable(_ id: String) -> Bool {
        guard !id.isEmpty, id.utf8.count <= 128 else { return false }
        return id.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F && $0 != 0x22 && $0 != 0x5C }
    }
}
