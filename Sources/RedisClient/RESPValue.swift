import NIOCore

/// One Redis reply (RESP2), as hiredis's reader delivers it.
public enum RESPValue: Sendable, Equatable {
    case simpleString(String)
    case error(String)
    case integer(Int64)
    case bulk(ByteBuffer)
    case array([RESPValue])
    case null

    /// The text of a simple or bulk string.
    public var string: String? {
        switch self {
        case .simpleString(let s): return s
        case .bulk(let b): return String(buffer: b)
        default: return nil
        }
    }

    public var integer: Int64? {
        if case .integer(let i) = self { return i }
        return nil
    }

    public var array: [RESPValue]? {
        if case .array(let a) = self { return a }
        return nil
    }

    public var bytes: ByteBuffer? {
        if case .bulk(let b) = self { return b }
        return nil
    }
}

/// One command: its name and arguments as binary-safe byte strings.
public struct RedisCommand: Sendable, CustomStringConvertible {
    public private(set) var arguments: [ByteBuffer]

    public init(_ name: String, _ arguments: [String] = []) {
        self.arguments = [ByteBuffer(string: name)] + arguments.map { ByteBuffer(string: $0) }
    }

    public mutating func append(_ argument: String) {
        arguments.append(ByteBuffer(string: argument))
    }

    public mutating func append(_ argument: ByteBuffer) {
        arguments.append(argument)
    }

    public mutating func append(_ argument: Int) {
        arguments.append(ByteBuffer(string: String(argument)))
    }

    /// The command name only: arguments may be secrets (AUTH) or large values.
    public var description: String {
        arguments.first.map { String(buffer: $0).uppercased() } ?? "(empty)"
    }
}
