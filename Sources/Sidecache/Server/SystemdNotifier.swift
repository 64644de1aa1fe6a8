#if canImport(Glibc)
import Glibc
#endif

/// Sends `sd_notify` messages (READY=1, RELOADING=1, STOPPING=1) to `$NOTIFY_SOCKET` for systemd
/// `Type=notify` units. Plain datagram calls: NIO cannot address the abstract `@` sockets systemd
/// uses. Does nothing when the variable is unset (not under systemd).
public struct SystemdNotifier: Sendable {
    private let socketPath: String?

    public init(environment: [String: String]? = nil) {
        if let environment {
            socketPath = environment["NOTIFY_SOCKET"]
        } else {
            socketPath = getenv("NOTIFY_SOCKET").map { String(cString: $0) }
        }
    }

    public var isEnabled: Bool { socketPath?.isEmpty == false }

    public func ready(status: String? = nil) { send("READY=1" + (status.map { "\nSTATUS=\($0)" } ?? "")) }
    public func reloading() { send("RELOADING=1") }
    public func stopping() { send("STOPPING=1") }

    @discardableResult
    public func send(_ message: String) -> Bool {
        guard let path = socketPath, !path.isEmpty else { return false }
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(path.utf8)
        // An abstract socket is written "@name" and addressed with a leading NUL byte.
        if bytes.first == UInt8(ascii: "@") { bytes[0] = 0 }
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard bytes.count < capacity else { return false }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count)
        let sent = message.withCString { text in
            withUnsafePointer(to: &address) { ptr in
                ptr.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                    sendto(fd, text, strlen(text), Int32(MSG_NOSIGNAL), sa, length)
                }
            }
        }
        return sent >= 0
    }
}
