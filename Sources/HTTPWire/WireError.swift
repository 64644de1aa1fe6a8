/// Why bytes from a peer are not a message of the strict profile. Each request error carries the
/// status it is answered with; the connection closes after it (the stream cannot be resynchronised).
public enum WireError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The request line is not `method SP target SP HTTP/1.x CRLF`.
    case badRequestLine
    /// A version that is well formed but not HTTP/1.0 or HTTP/1.1.
    case unsupportedVersion
    /// A request line longer than the parser reads (`RequestHeadLimits.maxRequestLineBytes`).
    case requestLineTooLong
    /// A CR that is not followed by LF, or an LF that is not preceded by CR.
    case bareLineBreak
    /// A field line that starts with whitespace: obs-fold, or whitespace before the first field.
    case foldedOrIndentedField
    /// Whitespace between a field name and its colon.
    case whitespaceBeforeColon
    /// An empty field name, a name with a non-token byte, or a line without a colon.
    case badFieldName
    /// A control byte other than HTAB (NUL among them) or DEL in a field value.
    case badFieldValue
    /// More bytes of head than `max_header_bytes`, or more fields than allowed.
    case headTooLarge
    /// HTTP/1.1 without `Host`, or more than one `Host`.
    case hostCount
    /// A `Content-Length` that is not plain digits, overflows, is a list or appears twice.
    case badContentLength
    /// `Transfer-Encoding` together with `Content-Length`, on HTTP/1.0, more than once, or not a list of tokens.
    case badTransferEncoding
    /// A transfer coding other than `chunked`.
    case unknownTransferCoding
    /// A chunk-size line that is not 1-16 hex digits, extensions of the grammar, and CRLF; or a
    /// chunk's data not followed by CRLF.
    case badChunk
    /// A chunk-size line or trailer section over its limit.
    case chunkMetadataTooLarge
    /// A trailer field that breaks the field rules.
    case badTrailer
    /// The peer ended the stream inside a message.
    case truncated
    /// A response status line that is not `HTTP/1.x SP 3DIGIT [SP reason] CRLF`.
    case badStatusLine

    /// The status a request error is answered with.
    public var status: Int {
        switch self {
        case .headTooLarge: 431
        case .requestLineTooLong: 414
        case .unknownTransferCoding: 501
        case .unsupportedVersion: 505
        default: 400
        }
    }

    public var description: String {
        switch self {
        case .badRequestLine: "malformed request line"
        case .unsupportedVersion: "HTTP version not supported"
        case .requestLineTooLong: "request line too long"
        case .bareLineBreak: "bare CR or LF"
        case .foldedOrIndentedField: "folded or indented field line"
        case .whitespaceBeforeColon: "whitespace between a field name and its colon"
        case .badFieldName: "malformed field name"
        case .badFieldValue: "control character in a field value"
        case .headTooLarge: "request header fields too large"
        case .hostCount: "exactly one Host header is required"
        case .badContentLength: "malformed or repeated Content-Length"
        case .badTransferEncoding: "malformed Transfer-Encoding"
        case .unknownTransferCoding: "transfer coding not implemented"
        case .badChunk: "malformed chunked body"
        case .chunkMetadataTooLarge: "chunk extensions or trailers too large"
        case .badTrailer: "malformed trailer field"
        case .truncated: "message truncated"
        case .badStatusLine: "malformed status line"
        }
    }
}
