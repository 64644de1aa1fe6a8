#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore

/// Finds where a head ends (the empty line after its last field) in bytes that may still be
/// arriving: each call looks only at what the previous calls did not, so a head that comes in many
/// reads costs one pass. Every LF must follow a CR; the bytes within lines are checked by the parser
/// once the head is whole.
public struct HeadBoundary: Sendable {
    public struct Limits: Sendable, Equatable {
        /// The first line's bytes, CRLF excluded.
        public var maxFirstLineBytes: Int
        /// The head's bytes from its first line to the final CRLF.
        public var maxHeadBytes: Int
        /// Field lines.
        public var maxFields: Int

        public init(maxFirstLineBytes: Int, maxHeadBytes: Int, maxFields: Int) {
            self.maxFirstLineBytes = maxFirstLineBytes
            self.maxHeadBytes = maxHeadBytes
            self.maxFields = maxFields
        }
    }

    /// Where a whole head lies in the bytes given.
    public struct Found: Equatable, Sendable {
        /// One past the head's last byte (the LF of its final CRLF).
        public var end: Int
        /// Lines of the head, the first line included, the final empty line not.
        public var lines: Int
    }

    private var scanned = 0
    private var lineStart = 0
    private var lines = 0
    private let emptyFirstLine: WireError
    private let limits: Limits

    public init(limits: Limits, emptyFirstLine: WireError) {
        self.limits = limits
        self.emptyFirstLine = emptyFirstLine
    }

    /// No byte of the head has been looked at yet.
    public var isFresh: Bool { scanned == 0 }

    /// Skips CR and LF bytes before a head's first line, as llhttp does (they lie outside any
    /// message, so they cannot change where one ends); past `maxStrayLineBreaks` over the calls
    /// for one head (`skipped`), the peer is sending junk: `error`.
    public static func skipStrayLineBreaks(_ buffer: inout ByteBuffer, skipped: inout Int, error: WireError) throws(WireError) {
        while let byte = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self), byte == 0x0D || byte == 0x0A {
            skipped += 1
            guard skipped <= maxStrayLineBreaks else { throw error }
            buffer.moveReaderIndex(forwardBy: 1)
        }
    }

    /// RFC 9112 §2.2 asks a server to ignore at least one empty line before a request line.
    public static let maxStrayLineBreaks = 16

    /// The whole head in `bytes` (which start where the previous head's message ended, and hold at
    /// least what earlier calls were given), or nil while it is incomplete. Resets itself once found.
    public mutating func find(in bytes: UnsafeRawBufferPointer, tooLong: WireError = .requestLineTooLong) throws(WireError) -> Found? {
        guard let base = bytes.baseAddress else { return nil }
        let count = bytes.count
        while scanned < count {
            guard let hit = memchr(base + scanned, 0x0A, count - scanned) else {
                scanned = count
                break
            }
            let lf = base.distance(to: UnsafeRawPointer(hit))
            guard lf > lineStart, bytes[lf - 1] == 0x0D else { throw .bareLineBreak }
            let length = lf - 1 - lineStart
            if lines == 0, length > limits.maxFirstLineBytes { throw tooLong }
            scanned = lf + 1
            if length == 0 {
                // An empty first line: the caller skips those before a request, so it is an error here.
                guard lines > 0 else { throw emptyFirstLine }
                let found = Found(end: lf + 1, lines: lines)
                guard found.end - 2 <= limits.maxHeadBytes else { throw .headTooLarge }
                self = HeadBoundary(limits: limits, emptyFirstLine: emptyFirstLine)
                return found
            } else {
                lines += 1
                if lines > limits.maxFields + 1 { throw .headTooLarge }
            }
            lineStart = lf + 1
        }
        if lines == 0, count - lineStart > limits.maxFirstLineBytes + 1 { throw tooLong }
        if count > limits.maxHeadBytes + 2 { throw .headTooLarge }
        return nil
    }
}
