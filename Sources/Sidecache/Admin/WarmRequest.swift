import Foundation
import NIOCore

/// The body of `POST /warm`: `{"urls": ["/a", "/b"]}` or `{"sitemap": "/sitemap.xml"}`, either
/// with `"headers": {"X-Tenant": "t1"}` sent with every fetch (never `Authorization` or `Cookie`).
struct WarmRequest: Equatable {
    enum Target: Equatable {
        case urls([String])
        case sitemap(String)
    }

    let target: Target
    let headers: [(String, String)]

    static func == (a: WarmRequest, b: WarmRequest) -> Bool {
        a.target == b.target && a.headers.map { [$0.0, $0.1] } == b.headers.map { [$0.0, $0.1] }
    }

    struct Invalid: Error, CustomStringConvertible {
        let description: String
    }

    static let usage = #"{"urls": ["/path", ...]} or {"sitemap": "/sitemap.xml"}, optionally with "headers": {"Name": "value"}"#
    static let maxURLs = 100_000

    init(json: ByteBuffer) throws(Invalid) {
        guard let object = try? JSONSerialization.jsonObject(with: Data(json.readableBytesView)), var fields = object as? [String: Any] else {
            throw Invalid(description: "the body must be a JSON object: \(Self.usage)")
        }
        var headers: [(String, String)] = []
        if let given = fields.removeValue(forKey: "headers") {
            guard let map = given as? [String: String] else { throw Invalid(description: "headers must be an object of names to string values") }
            for (name, value) in map.sorted(by: { $0.key < $1.key }) {
                guard !name.isEmpty, name.utf8.allSatisfy({ $0 > 32 && $0 < 127 && $0 != UInt8(ascii: ":") }),
                      !value.utf8.contains(where: { $0 == 13 || $0 == 10 || $0 == 0 }) else {
                    throw Invalid(description: "\"\(name)\" is not a header field a request may carry")
                }
                guard !Warmer.privateFields.contains(name.lowercased()) else {
                    throw Invalid(description: "\(name) is never sent with a background fetch (entries that depend on it are private)")
                }
                headers.append((name, value))
            }
        }
        self.headers = headers
        guard fields.count == 1, let (name, value) = fields.first else { throw Invalid(description: "give exactly one of urls, sitemap: \(Self.usage)") }
        switch name {
        case "urls":
            guard let list = value as? [String], !list.isEmpty else { throw Invalid(description: "urls must be a non-empty list of paths") }
            guard list.count <= Self.maxURLs else { throw Invalid(description: "at most \(Self.maxURLs) urls at once") }
            for url in list where !Self.isPath(url) {
                throw Invalid(description: "\"\(url)\" is not a path on this origin (\"/api/items/1\", with an optional query)")
            }
            target = .urls(list)
        case "sitemap":
            guard let path = value as? String, Self.isPath(path) else { throw Invalid(description: "sitemap must be a path on the upstream (\"/sitemap.xml\")") }
            target = .sitemap(path)
        default:
            throw Invalid(description: "unknown field \"\(name)\" (expected urls, sitemap, headers)")
        }
    }

    static func isPath(_ text: String) -> Bool {
        text.hasPrefix("/") && !text.hasPrefix("//") && text.utf8.allSatisfy { $0 > 32 && $0 < 127 && $0 != UInt8(ascii: "#") }
    }
}
