import CHiredis
import NIOCore

/// Encodes commands with hiredis's `redisFormatCommandArgv` (RESP arrays of bulk strings).
public enum RedisCommandEncoder {
    public static func encode(_ command: RedisCommand, into buffer: inout ByteBuffer) {
        // hiredis takes one pointer and one length per argument; the arguments are laid out in one
        // contiguous array so a single pointer stays valid for the whole call.
        var joined: [UInt8] = []
        joined.reserveCapacity(command.arguments.reduce(0) { $0 + $1.readableBytes })
        var offsets: [Int] = []
        var lengths: [Int] = []
        offsets.reserveCapacity(command.arguments.count)
        lengths.reserveCapacity(command.arguments.count)
        for argument in command.arguments {
            offsets.append(joined.count)
            lengths.append(argument.readableBytes)
            joined.append(contentsOf: argument.readableBytesView)
        }
        joined.append(0)  // a valid address for a trailing empty argument
        var target: UnsafeMutablePointer<CChar>?
        let length = joined.withUnsafeBufferPointer { bytes -> Int32 in
            bytes.withMemoryRebound(to: CChar.self) { chars -> Int32 in
                guard let base = chars.baseAddress else { return -1 }
                var argv: [UnsafePointer<CChar>?] = offsets.map { UnsafePointer(base + $0) }
                return argv.withUnsafeMutableBufferPointer { argvPointer in
                    lengths.withUnsafeBufferPointer { lengthPointer in
                        redisFormatCommandArgv(&target, Int32(argvPointer.count), argvPointer.baseAddress, lengthPointer.baseAddress)
                    }
                }
            }
        }
        guard length > 0, let target else { return }
        defer { redisFreeCommand(target) }
        buffer.writeBytes(UnsafeRawBufferPointer(start: target, count: Int(length)))
    }
}

/// Parses replies by feeding bytes to hiredis's `redisReader`, which keeps partial frames until
/// they complete. One reader per connection; not thread-safe.
public final class RedisReplyReader {
    private let reader: UnsafeMutablePointer<redisReader>

    public init() {
        // redisReaderCreate only fails when out of memory.
        guard let reader = redisReaderCreate() else { fatalError("hiredis: out of memory creating a reader") }
        self.reader = reader
    }

    deinit {
        redisReaderFree(reader)
    }

    /// Hands bytes to the reader; it keeps what does not yet form a whole reply.
    public func feed(_ buffer: ByteBuffer) throws(RedisError) {
        let status = buffer.withUnsafeReadableBytes { bytes -> Int32 in
            guard let base = bytes.baseAddress, bytes.count > 0 else { return REDIS_OK }
            return redisReaderFeed(reader, base.assumingMemoryBound(to: CChar.self), bytes.count)
        }
        if status != REDIS_OK { throw protocolError() }
    }

    /// The next complete reply, or nil when more bytes are needed.
    public func next() throws(RedisError) -> RESPValue? {
        var raw: UnsafeMutableRawPointer?
        guard redisReaderGetReply(reader, &raw) == REDIS_OK else { throw protocolError() }
        guard let raw else { return nil }
        // Only the root reply is freed: it owns its elements.
        defer { freeReplyObject(raw) }
        return Self.convert(raw.assumingMemoryBound(to: redisReply.self))
    }

    private func protocolError() -> RedisError {
        let message = withUnsafePointer(to: &reader.pointee.errstr) { tuple in
            tuple.withMemoryRebound(to: CChar.self, capacity: 128) { String(cString: $0) }
        }
        return RedisError(.protocolError, "hiredis reader: \(message)")
    }

    private static func convert(_ reply: UnsafeMutablePointer<redisReply>) -> RESPValue {
        let r = reply.pointee
        switch r.type {
        case REDIS_REPLY_STRING:
            var buffer = ByteBuffer()
            buffer.reserveCapacity(r.len)
            if let str = r.str, r.len > 0 { buffer.writeBytes(UnsafeRawBufferPointer(start: str, count: r.len)) }
            return .bulk(buffer)
        case REDIS_REPLY_STATUS:
            return .simpleString(text(r))
        case REDIS_REPLY_ERROR:
            return .error(text(r))
        case REDIS_REPLY_INTEGER:
            return .integer(Int64(r.integer))
        case REDIS_REPLY_ARRAY:
            var elements: [RESPValue] = []
            elements.reserveCapacity(r.elements)
            if let element = r.element {
                for i in 0..<r.elements {
                    if let child = element[i] { elements.append(convert(child)) } else { elements.append(.null) }
                }
            }
            return .array(elements)
        default:
            return .null
        }
    }

    private static func text(_ r: redisReply) -> String {
        guard let str = r.str, r.len > 0 else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: str, count: r.len), as: UTF8.self)
    }
}
