import Foundation
import SidecacheConfig

/// The admin port's bearer token: `SIDECACHE_ADMIN_TOKEN`, else the first line of `admin.token_file`.
enum AdminToken {
    struct Missing: Error, CustomStringConvertible {
        let description: String
    }

    /// Nil when no token is configured, which is allowed only on a loopback address.
    static func resolve(_ admin: SidecacheConfiguration.Admin, environment: [String: String]) throws -> String? {
        var token: String?
        if let value = environment["SIDECACHE_ADMIN_TOKEN"], !value.isEmpty {
            token = value
        } else if let file = admin.tokenFile {
            let text: String
            do {
                text = try String(contentsOfFile: file, encoding: .utf8)
            } catch {
                throw Missing(description: "admin.token_file \(file) cannot be read: \(error.localizedDescription)")
            }
            let line = text.split(whereSeparator: \.isNewline).first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
            guard !line.isEmpty else { throw Missing(description: "admin.token_file \(file) is empty") }
            token = line
        }
        if token == nil && !admin.isLoopback {
            throw Missing(description: "admin.listen \(admin.listen) is not a loopback address: set admin.token_file or SIDECACHE_ADMIN_TOKEN")
        }
        return token
    }

    /// Compares without an early exit, so the time taken does not tell how much of a guess was right.
    static func matches(_ given: Substring, _ expected: String) -> Bool {
        let a = Array(given.utf8)
        let b = Array(expected.utf8)
        var difference = UInt8(a.count == b.count ? 0 : 1)
        for i in 0..<max(a.count, b.count) {
            difference |= (i < a.count ? a[i] : 0) ^ (i < b.count ? b[i] : 0)
        }
        return difference == 0
    }
}
