import NIOHTTP1

/// The tags an origin names in its response headers: those a stored response carries (purged
/// together by `POST /purge {"tags"}`) and those a write invalidates.
public enum ResponseTags {
    /// `declared` (the route's templates, filled), then the origin's `Surrogate-Key` (space
    /// separated, as Fastly) and `Cache-Tag` (comma separated, as Cloudflare); each tag once.
    public static func stored(declared: [String], headers: HTTPHeaders) -> [String] {
        var tags = declared
        for value in headers[canonicalForm: "surrogate-key"] {
            tags += value.split(separator: " ").map(String.init)
        }
        for value in headers[canonicalForm: "cache-tag"] {
            tags += value.split(separator: ",").map { $0.trimmingSpaces() }.filter { !$0.isEmpty }
        }
        return unique(tags)
    }

    /// `declared`, then the tags of `X-Invalidate-Tags` (comma, space or tab separated); each once.
    public static func invalidated(declared: [String], headers: HTTPHeaders) -> [String] {
        var tags = declared
        for value in headers[canonicalForm: "x-invalidate-tags"] {
            tags += value.split(whereSeparator: { $0 == "," || $0 == " " || $0 == "\t" }).map(String.init)
        }
        return unique(tags)
    }

    private static func unique(_ tags: [String]) -> [String] {
        var seen = Set<String>()
        return tags.filter { seen.insert($0).inserted }
    }
}
