import Foundation

/// The `<loc>` entries of a sitemap (sitemaps.org 0.9), as paths and queries: an absolute
/// `http(s)` URL's host is left out (the paths are fetched through the upstream), a relative one
/// is kept as it is, anything else is skipped. XML's five predefined entities are decoded. Pure.
public enum Sitemap {
    public static func paths(in xml: String, limit: Int = 50_000) -> [String] {
        var paths: [String] = []
        var rest = Substring(xml)
        while paths.count < limit, let open = rest.range(of: "<loc>") {
            guard let close = rest[open.upperBound...].range(of: "</loc>") else { break }
            let text = decodeEntities(rest[open.upperBound..<close.lowerBound].trimmingSpaces)
            rest = rest[close.upperBound...]
            if let path = path(of: text), !paths.contains(path) { paths.append(path) }
        }
        return paths
    }

    static func path(of location: String) -> String? {
        if location.hasPrefix("/") { return location.hasPrefix("//") ? nil : LinkHints.withoutFragment(location) }
        let lowered = location.lowercased()
        for scheme in ["http://", "https://"] where lowered.hasPrefix(scheme) {
            let rest = location.dropFirst(scheme.count)
            let authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
            guard !authority.isEmpty else { return nil }
            let path = rest.dropFirst(authority.count)
            return LinkHints.withoutFragment(path.hasPrefix("/") ? String(path) : "/" + path)
        }
        return nil
    }

    static func decodeEntities(_ text: String) -> String {
        guard text.contains("&") else { return text }
        return text.replacingAll("&lt;", "<").replacingAll("&gt;", ">").replacingAll("&quot;", "\"").replacingAll("&apos;", "'")
            .replacingAll("&amp;", "&")
    }
}

extension String {
    func replacingAll(_ target: String, _ replacement: String) -> String {
        var out = ""
        var rest = Substring(self)
        while let range = rest.range(of: target) {
            out += rest[..<range.lowerBound]
            out += replacement
            rest = rest[range.upperBound...]
        }
        return out + rest
    }
}
