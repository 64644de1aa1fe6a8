/// The targets a response announces for prefetching: `Link` field values (RFC 8288) whose `rel`
/// includes `prefetch` or `preload`, reduced to same-origin paths (a relative reference, or an
/// absolute `http(s)` URL on `host`). Pure: field values in, paths out.
public enum LinkHints {
    public static func prefetchTargets(_ values: [String], host: String?) -> [String] {
        var targets: [String] = []
        for value in values {
            for link in splitLinks(value) {
                guard let target = sameOrigin(link.reference, host: host), link.relations.contains(where: { $0 == "prefetch" || $0 == "preload" }),
                      !targets.contains(target) else { continue }
                targets.append(target)
            }
        }
        return targets
    }

    /// `<ref>; param=value; ...` links, split on commas outside `<...>` and quotes.
    static func splitLinks(_ value: String) -> [(reference: String, relations: [String])] {
        var links: [(String, [String])] = []
        var rest = Substring(value)
        while let open = rest.firstIndex(of: "<") {
            guard let close = rest[open...].firstIndex(of: ">") else { break }
            let reference = String(rest[rest.index(after: open)..<close])
            var after = rest[rest.index(after: close)...]
            // The parameters run to the next comma outside a quoted string.
            var inQuotes = false
            var end = after.endIndex
            for i in after.indices {
                let c = after[i]
                if c == "\"" { inQuotes.toggle() } else if c == ",", !inQuotes { end = i; break }
            }
            let parameters = after[..<end]
            after = end < after.endIndex ? after[after.index(after: end)...] : after[after.endIndex...]
            var relations: [String] = []
            for parameter in parameters.split(separator: ";") {
                let pair = parameter.split(separator: "=", maxSplits: 1).map { $0.trimmingSpaces }
                guard pair.count == 2, pair[0].lowercased() == "rel" else { continue }
                let unquoted = pair[1].hasPrefix("\"") && pair[1].hasSuffix("\"") && pair[1].count >= 2 ? String(pair[1].dropFirst().dropLast()) : pair[1]
                relations += unquoted.lowercased().split(separator: " ").map(String.init)
            }
            links.append((reference, relations))
            rest = after
        }
        return links
    }

    /// The path and query of `reference` when it names the same origin, else nil.
    static func sameOrigin(_ reference: String, host: String?) -> String? {
        if reference.hasPrefix("/") { return reference.hasPrefix("//") ? nil : withoutFragment(reference) }
        let lowered = reference.lowercased()
        for scheme in ["http://", "https://"] where lowered.hasPrefix(scheme) {
            let rest = reference.dropFirst(scheme.count)
            let authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
            guard let host, authority.lowercased() == host.lowercased() else { return nil }
            let path = rest.dropFirst(authority.count)
            return withoutFragment(path.hasPrefix("/") ? String(path) : "/" + path)
        }
        return nil
    }

    static func withoutFragment(_ target: String) -> String {
        String(target.prefix { $0 != "#" })
    }
}

extension Substring {
    var trimmingSpaces: String {
        String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }
}
