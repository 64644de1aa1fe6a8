import NIOCore
import NIOHTTP1

/// The binary form of a stored entry in a shared tier (Redis): what another instance needs to serve
/// it with a correct `Age` and freshness, and nothing that is local to one process.
///
/// Layout (big-endian): magic "SCE", version byte, status u16, response time i64 ms, corrected
/// initial age i64 ms, freshness lifetime, stale-while-revalidate and stale-if-error i64 ms, flags
/// u8, origin Date i64 s, origin Age i64 s, headers (u16 count; u16 name length, name, u32 value
/// length, value), Vary names and values (u16 count; pairs as headers), tags (u16 count; u16
/// length, tag), body (u32 length, bytes); version 2 adds the gzip copy (u8 present, then u32
/// length, bytes), and version 3 lets that byte be 2: no copy yet, one may be made on demand.
/// Decoding must consume every byte; versions 1 and 2 are still read.
public enum CachedResponseCodec {
    public static let magic: [UInt8] = Array("SCE".utf8)
    public static let version: UInt8 = 3

    public enum DecodeError: Error, Equatable, CustomStringConvertible {
        case badMagic
        case unknownVersion(UInt8)
        case truncated
        case trailingBytes(Int)
        case invalidValue(String)

        public var description: String {
            switch self {
            case .badMagic: return "not a sidecache entry (bad magic)"
            case .unknownVersion(let v): return "entry encoding version \(v) is not \(CachedResponseCodec.version)"
            case .truncated: return "entry is truncated"
            case .trailingBytes(let n): return "entry has \(n) unexpected trailing bytes"
            case .invalidValue(let what): return "entry has an invalid \(what)"
            }
        }
    }

    private enum Flag {
        static let revalidateAlways: UInt8 = 1
        static let mayServeStale: UInt8 = 2
        static let hasOriginDate: UInt8 = 4
    }

    public static func encode(_ entry: CachedResponse) -> ByteBuffer {
        let headers = entry.headers  // parsed back from the encoded head: once
        var size = 104 + entry.body.readableBytes + (entry.gzip?.body.readableBytes ?? 0)
        for (name, value) in headers { size += name.utf8.count + value.utf8.count + 6 }
        for tag in entry.tags { size += tag.utf8.count + 2 }
        var out = ByteBuffer()
        out.reserveCapacity(size)
        out.writeBytes(magic)
        out.writeInteger(version)
        out.writeInteger(UInt16(truncatingIfNeeded: entry.status.code))
        out.writeInteger(entry.responseTime.milliseconds)
        out.writeInteger(entry.correctedInitialAge.milliseconds)
        let terms = entry.terms
        out.writeInteger(terms.freshnessLifetime.milliseconds)
        out.writeInteger(terms.staleWhileRevalidate.milliseconds)
        out.writeInteger(terms.staleIfError.milliseconds)
        var flags: UInt8 = 0
        if terms.revalidateAlways { flags |= Flag.revalidateAlways }
        if terms.mayServeStale { flags |= Flag.mayServeStale }
        if terms.originDate != nil { flags |= Flag.hasOriginDate }
        out.writeInteger(flags)
        out.writeInteger(terms.originDate ?? 0)
        out.writeInteger(terms.originAge)
        writePairs(headers.map { ($0.name, $0.value) }, to: &out)
        writePairs(Array(zip(entry.varyNames, entry.varyValues)), to: &out)
        out.writeInteger(UInt16(truncatingIfNeeded: entry.tags.count))
        for tag in entry.tags { writeShort(tag, to: &out) }
        out.writeInteger(UInt32(truncatingIfNeeded: entry.body.readableBytes))
        out.writeImmutableBuffer(entry.body)
        if let gzip = entry.gzip {
            out.writeInteger(UInt8(1))
            out.writeInteger(UInt32(truncatingIfNeeded: gzip.body.readableBytes))
            out.writeImmutableBuffer(gzip.body)
        } else {
            out.writeInteger(UInt8(entry.gzipPending ? 2 : 0))
        }
        return out
    }

    public static func decode(_ input: ByteBuffer) throws(DecodeError) -> CachedResponse {
        var buffer = input
        guard let m = buffer.readBytes(length: magic.count) else { throw .truncated }
        guard m == magic else { throw .badMagic }
        guard let v: UInt8 = buffer.readInteger() else { throw .truncated }
        guard (1...version).contains(v) else { throw .unknownVersion(v) }
        let code: UInt16 = try read(&buffer)
        guard (100...999).contains(code) else { throw .invalidValue("status \(code)") }
        let responseTime: Int64 = try read(&buffer)
        let initialAge: Int64 = try read(&buffer)
        let lifetime: Int64 = try read(&buffer)
        let swr: Int64 = try read(&buffer)
        let sie: Int64 = try read(&buffer)
        let flags: UInt8 = try read(&buffer)
        let originDate: Int64 = try read(&buffer)
        let originAge: Int64 = try read(&buffer)
        guard initialAge >= 0, swr >= 0, sie >= 0, originAge >= 0 else { throw .invalidValue("timing field") }
        let headerPairs = try readPairs(&buffer)
        // The head is written to clients as stored: a field with CR, LF or NUL would split it, and a
        // name with a colon would not parse back from it.
        for (name, value) in headerPairs where name.isEmpty || name.utf8.contains(.colon) || !isFieldSafe(name) || !isFieldSafe(value) {
            throw .invalidValue("header field \"\(name)\"")
        }
        let varyPairs = try readPairs(&buffer)
        let tagCount: UInt16 = try read(&buffer)
        var tags: [String] = []
        tags.reserveCapacity(Int(tagCount))
        for _ in 0..<tagCount { tags.append(try readShort(&buffer)) }
        let bodyLength: UInt32 = try read(&buffer)
        guard let body = buffer.readSlice(length: Int(bodyLength)) else { throw .truncated }
        var gzipBody: ByteBuffer?
        var gzipPending = false
        if v >= 2 {
            let present: UInt8 = try read(&buffer)
            guard present <= (v >= 3 ? 2 : 1) else { throw .invalidValue("gzip flag \(present)") }
            gzipPending = present == 2
            if present == 1 {
                let length: UInt32 = try read(&buffer)
                guard let gz = buffer.readSlice(length: Int(length)) else { throw .truncated }
                gzipBody = gz
            }
        }
        guard buffer.readableBytes == 0 else { throw .trailingBytes(buffer.readableBytes) }
        let terms = StorageTerms(
            freshnessLifetime: .milliseconds(lifetime), staleWhileRevalidate: .milliseconds(swr), staleIfError: .milliseconds(sie),
            revalidateAlways: flags & Flag.revalidateAlways != 0, mayServeStale: flags & Flag.mayServeStale != 0,
            originDate: flags & Flag.hasOriginDate != 0 ? originDate : nil, originAge: originAge
        )
        return CachedResponse(
            status: HTTPResponseStatus(statusCode: Int(code)), headers: HTTPHeaders(headerPairs), body: body,
            responseTime: CacheInstant(milliseconds: responseTime), correctedInitialAge: .milliseconds(initialAge), terms: terms,
            varyNames: varyPairs.map(\.0), varyValues: varyPairs.map(\.1), tags: tags, gzipBody: gzipBody, gzipPending: gzipPending
        )
    }

    private static func isFieldSafe(_ text: String) -> Bool {
        !text.utf8.contains { $0 == 13 || $0 == 10 || $0 == 0 }
    }

    private static func writeShort(_ text: String, to out: inout ByteBuffer) {
        let count = min(text.utf8.count, Int(UInt16.max))
        out.writeInteger(UInt16(count))
        out.writeBytes(text.utf8.prefix(count))
    }

    private static func writePairs(_ pairs: [(String, String)], to out: inout ByteBuffer) {
        out.writeInteger(UInt16(truncatingIfNeeded: pairs.count))
        for (name, value) in pairs {
            writeShort(name, to: &out)
            out.writeInteger(UInt32(truncatingIfNeeded: value.utf8.count))
            out.writeString(value)
        }
    }

    private static func read<T: FixedWidthInteger>(_ buffer: inout ByteBuffer) throws(DecodeError) -> T {
        guard let value: T = buffer.readInteger() else { throw .truncated }
        return value
    }

    private static func readShort(_ buffer: inout ByteBuffer) throws(DecodeError) -> String {
        let length: UInt16 = try read(&buffer)
        guard let text = buffer.readString(length: Int(length)) else { throw .truncated }
        return text
    }

    private static func readPairs(_ buffer: inout ByteBuffer) throws(DecodeError) -> [(String, String)] {
        let count: UInt16 = try read(&buffer)
        var pairs: [(String, String)] = []
        pairs.reserveCapacity(Int(count))
        for _ in 0..<count {
            let name = try readShort(&buffer)
            let length: UInt32 = try read(&buffer)
            guard let value = buffer.readString(length: Int(length)) else { throw .truncated }
            pairs.append((name, value))
        }
        return pairs
    }
}
