/// An IPv4 or IPv6 address as 16 bytes (IPv4 as the IPv4-mapped IPv6 form `::ffff:a.b.c.d`, so one
/// comparison covers both), parsed without the C library so the target stays pure.
public struct IPAddress: Sendable, Hashable, CustomStringConvertible {
    public let bytes: [UInt8]
    public let isIPv4: Bool

    public init?(_ text: some StringProtocol) {
        var text = Substring(text)
        // A zone (fe80::1%eth0) does not take part in matching.
        if let percent = text.firstIndex(of: "%") { text = text[..<percent] }
        if let v4 = Self.parseIPv4(text) {
            bytes = Array(repeating: 0, count: 10) + [0xff, 0xff] + v4
            isIPv4 = true
        } else if let v6 = Self.parseIPv6(text) {
            bytes = v6
            isIPv4 = v6[0..<12].elementsEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff])
        } else {
            return nil
        }
    }

    public var description: String {
        if isIPv4 { return bytes[12...].map(String.init).joined(separator: ".") }
        return stride(from: 0, to: 16, by: 2).map { String(UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]), radix: 16) }.joined(separator: ":")
    }

    static func parseIPv4(_ text: Substring) -> [UInt8]? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var out: [UInt8] = []
        for part in parts {
            guard (1...3).contains(part.count), part.allSatisfy({ $0.isASCII && $0.isNumber }), let v = UInt8(part) else { return nil }
            out.append(v)
        }
        return out
    }

    static func parseIPv6(_ text: Substring) -> [UInt8]? {
        guard text.contains(":") else { return nil }
        let gaps = text.ranges(of: "::")
        guard gaps.count <= 1 else { return nil }
        let halves = gaps.first.map { [text[..<$0.lowerBound], text[$0.upperBound...]] } ?? [text]
        func groups(_ part: Substring, allowV4Tail: Bool) -> [UInt8]? {
            if part.isEmpty { return [] }
            var out: [UInt8] = []
            let fields = part.split(separator: ":", omittingEmptySubsequences: false)
            for (i, field) in fields.enumerated() {
                if allowV4Tail, i == fields.count - 1, field.contains("."), let v4 = parseIPv4(field) {
                    out += v4
                    continue
                }
                guard (1...4).contains(field.count), let v = UInt16(field, radix: 16) else { return nil }
                out += [UInt8(v >> 8), UInt8(v & 0xff)]
            }
            return out
        }
        if halves.count == 1 {
            guard let all = groups(halves[0], allowV4Tail: true), all.count == 16 else { return nil }
            return all
        }
        guard let head = groups(halves[0], allowV4Tail: false), let tail = groups(halves[1], allowV4Tail: true),
              head.count + tail.count <= 14 else { return nil }
        return head + Array(repeating: 0, count: 16 - head.count - tail.count) + tail
    }
}

/// An address block such as `10.0.0.0/8` or `fd00::/8`; a bare address is a block of one.
public struct CIDRBlock: Sendable, Hashable, CustomStringConvertible, Encodable {
    public let network: IPAddress
    /// Prefix length over the 128-bit form (an IPv4 /8 is 104 here).
    public let prefixBits: Int
    public let description: String

    public init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = IPAddress(parts[0]) else { return nil }
        let width = address.isIPv4 ? 32 : 128
        var bits = width
        if parts.count == 2 {
            guard parts[1].allSatisfy({ $0.isASCII && $0.isNumber }), let b = Int(parts[1]), (0...width).contains(b) else { return nil }
            bits = b
        }
        prefixBits = bits + (address.isIPv4 ? 96 : 0)
        network = address
        description = text
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }

    public func contains(_ address: IPAddress) -> Bool {
        var left = prefixBits
        for i in 0..<16 where left > 0 {
            let take = min(8, left)
            let mask = UInt8(truncatingIfNeeded: 0xff << (8 - take))
            if address.bytes[i] & mask != network.bytes[i] & mask { return false }
            left -= take
        }
        return true
    }
}

/// Which address a request comes from, for per-client limits. `X-Forwarded-For` is believed only
/// as far as it was written by trusted proxies: starting from the peer, while the address at hand
/// is trusted, step to the address before it in the list (right to left). The first untrusted
/// address is the client; a client cannot forge its way past that, since anything it wrote itself
/// sits to the left of what the trusted proxies appended.
public enum ClientAddress {
    public static func resolve(peer: String, forwardedFor: [Substring], trusted: [CIDRBlock]) -> String {
        guard !trusted.isEmpty, let peerAddress = IPAddress(peer), trusted.contains(where: { $0.contains(peerAddress) }) else { return peer }
        var client = peer
        for field in forwardedFor.reversed() {
            for item in field.split(separator: ",").reversed() {
                let text = item.trimmingCharacters(in: " \t")
                guard let address = IPAddress(text) else { return client }
                client = address.description
                if !trusted.contains(where: { $0.contains(address) }) { return client }
            }
        }
        return client
    }
}

extension Substring {
    func trimmingCharacters(in set: String) -> Substring {
        var s = self
        while let f = s.first, set.contains(f) { s = s.dropFirst() }
        while let l = s.last, set.contains(l) { s = s.dropLast() }
        return s
    }
}
