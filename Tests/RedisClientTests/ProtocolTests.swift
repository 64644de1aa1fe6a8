import NIOCore
import RedisClient
import Testing

@Suite struct ProtocolTests {
    @Test func commandsAreEncodedAsArraysOfBulkStrings() {
        var buffer = ByteBuffer()
        var command = RedisCommand("SET", ["key", ""])
        command.append(ByteBuffer(bytes: [0, 13, 10, 255]))
        RedisCommandEncoder.encode(command, into: &buffer)
        let expected: [UInt8] = Array("*4\r\n$3\r\nSET\r\n$3\r\nkey\r\n$0\r\n\r\n$4\r\n".utf8) + [0, 13, 10, 255] + Array("\r\n".utf8)
        #expect(Array(buffer.readableBytesView) == expected)
    }

    static let sample: [UInt8] = Array(
        "+OK\r\n-ERR wrong\r\n:-42\r\n$5\r\nhe\r\no\r\n$-1\r\n*3\r\n:1\r\n*2\r\n$1\r\na\r\n$-1\r\n+x\r\n*0\r\n$0\r\n\r\n".utf8
    )

    static let expected: [RESPValue] = [
        .simpleString("OK"), .error("ERR wrong"), .integer(-42), .bulk(ByteBuffer(string: "he\r\no")), .null,
        .array([.integer(1), .array([.bulk(ByteBuffer(string: "a")), .null]), .simpleString("x")]), .array([]),
        .bulk(ByteBuffer()),
    ]

    @Test func repliesOfEveryTypeAreDecoded() throws {
        let reader = RedisReplyReader()
        try reader.feed(ByteBuffer(bytes: Self.sample))
        var replies: [RESPValue] = []
        while let reply = try reader.next() { replies.append(reply) }
        #expect(replies == Self.expected)
    }

    @Test func framesSplitAtEveryByteDecodeTheSame() throws {
        for split in 1..<Self.sample.count {
            let reader = RedisReplyReader()
            var replies: [RESPValue] = []
            try reader.feed(ByteBuffer(bytes: Self.sample[..<split]))
            while let reply = try reader.next() { replies.append(reply) }
            try reader.feed(ByteBuffer(bytes: Self.sample[split...]))
            while let reply = try reader.next() { replies.append(reply) }
            #expect(replies == Self.expected, "split at \(split)")
        }
    }

    @Test func byteAtATimeDecodes() throws {
        let reader = RedisReplyReader()
        var replies: [RESPValue] = []
        for byte in Self.sample {
            try reader.feed(ByteBuffer(bytes: [byte]))
            while let reply = try reader.next() { replies.append(reply) }
        }
        #expect(replies == Self.expected)
    }

    @Test func garbageIsAProtocolError() throws {
        let reader = RedisReplyReader()
        try reader.feed(ByteBuffer(string: "?what\r\n"))
        #expect(throws: RedisError.self) { try reader.next() }
    }

    @Test func urlsAreParsed() throws {
        let plain = try RedisURL(parsing: "redis://127.0.0.1:6380/2")
        #expect(plain == RedisURL(address: .tcp(host: "127.0.0.1", port: 6380), database: 2))
        let auth = try RedisURL(parsing: "redis://app:p%40ss@cache.internal")
        #expect(auth == RedisURL(address: .tcp(host: "cache.internal", port: 6379), user: "app", password: "p@ss"))
        #expect(auth.description == "redis://app:***@cache.internal:6379/0")
        let passwordOnly = try RedisURL(parsing: "redis://:secret@[::1]:7000")
        #expect(passwordOnly == RedisURL(address: .tcp(host: "::1", port: 7000), password: "secret"))
        let unix = try RedisURL(parsing: "unix:///run/redis/redis.sock?db=3&password=x")
        #expect(unix == RedisURL(address: .unix(path: "/run/redis/redis.sock"), password: "x", database: 3))
        for bad in ["http://x", "redis://host:99999", "redis://host/abc", "redis://", "unix://relative", "unix:///s?color=red"] {
            #expect(throws: RedisURL.ParseError.self, "\(bad)") { try RedisURL(parsing: bad) }
        }
    }

    @Test func backoffGrowsIsCappedAndJittered() {
        let backoff = RedisBackoff(base: .milliseconds(50), cap: .seconds(2))
        #expect(backoff.ceiling(attempt: 1) == .milliseconds(50))
        #expect(backoff.ceiling(attempt: 3) == .milliseconds(200))
        #expect(backoff.ceiling(attempt: 7) == .seconds(2))
        #expect(backoff.ceiling(attempt: 500) == .seconds(2))
        var rng = SystemRandomNumberGenerator()
        var seen = Set<Int64>()
        for attempt in 1...10 {
            for _ in 0..<50 {
                let d = backoff.delay(attempt: attempt, using: &rng)
                let ceiling = backoff.ceiling(attempt: attempt)
                #expect(d <= ceiling && d.nanoseconds >= ceiling.nanoseconds / 2)
                seen.insert(d.nanoseconds)
            }
        }
        #expect(seen.count > 100)  // jitter: not one fixed delay per attempt
    }
}
