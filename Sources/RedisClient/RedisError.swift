/// Why a Redis command did not get a reply it could use.
public struct RedisError: Error, Sendable, CustomStringConvertible, Equatable {
    public enum Kind: String, Sendable {
        /// No connection is up (Redis down or reconnecting): the command was not sent.
        case unavailable
        case connectFailed
        /// The connection closed with the command in flight.
        case connectionClosed
        /// No reply within the command timeout; the connection is dropped and re-established.
        case timeout
        /// The bytes from the server were not valid RESP.
        case protocolError
        /// Redis answered with an error reply (e.g. `WRONGTYPE`, `NOAUTH`).
        case serverError
        /// The reply had a shape the caller did not expect.
        case unexpectedReply
        case shutdown
    }

    public let kind: Kind
    public let message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { "redis \(kind.rawValue): \(message)" }
}
