import Foundation
import HTTPCaching
import NIOCore

/// The body of `POST /purge`.
struct PurgeRequest: Equatable {
    enum Target: Equatable {
        case url(String)
        case tags([String])
        case pattern(PurgePattern)
        case all
    }

    let target: Target
    /// Mark stale instead of removing.
    let soft: Bool
    /// Refetch the hot entries it matches on routes that re-warm (`"rewarm": false` skips it).
    let rewarm: Bool

    struct Invalid: Error, CustomStringConvertible {
        let description: String
    }

    static let forms = ["all", "pattern", "regex", "tags", "url"]
    static let usage = #"{"url": "/path"}, {"pattern": "/api/*"}, {"regex": "^/api/[0-9]+$"}, {"tags": ["a"]} or {"all": true}, optionally with "soft": true and "rewarm": false"#

    init(json: ByteBuffer) throws(Invalid) {
        guard let object = try? JSONSerialization.jsonObject(with: Data(json.readableBytesView)), var fields = object as? [String: Any] else {
            throw Invalid(description: "the body must be a JSON object: \(Self.usage)")
        }
        if let unknown = fields.keys.sorted().first(where: { $0 != "soft" && $0 != "rewarm" && !Self.forms.contains($0) }) {
            throw Invalid(description: "unknown field \"\(unknown)\" (expected one of: \(Self.forms.joined(separator: ", ")), soft, rewarm)")
        }
        if let flag = fields.removeValue(forKey: "rewarm") {
            guard let rewarm = flag as? Bool else { throw Invalid(description: "rewarm must be true or false") }
            self.rewarm = rewarm
        } else {
            rewarm = true
        }
        if let flag = fields.removeValue(forKey: "soft") {
            guard let soft = flag as? Bool else { throw Invalid(description: "soft must be true or false") }
            self.soft = soft
        } else {
            soft = false
        }
        guard fields.count == 1, let (name, value) = fields.first else {
            throw Invalid(description: "give exactly one of \(Self.forms.joined(separator: ", "))")
        }
        target = try Self.target(name, value)
    }

    private static func target(_ name: String, _ value: Any) throws(Invalid) -> Target {
        switch name {
        case "url":
            guard let text = value as? String, let path = Self.path(of: text) else {
                throw Invalid(description: "url must be a path (\"/api/items/42\") or an http(s) URL")
            }
            return .url(path)
        case "tags":
            guard let list = value as? [String], !list.isEmpty, list.allSatisfy({ !$0.isEmpty }) else {
                throw Invalid(description: "tags must be a non-empty list of non-empty strings")
            }
            return .tags(list)
        case "pattern", "regex":
            guard let text = value as? String else { throw Invalid(description: "\(name) must be a string") }
            do throws(PurgePattern.Invalid) {
                return .pattern(name == "pattern" ? try PurgePattern(glob: text) : try PurgePattern(regex: text))
            } catch {
                throw Invalid(description: "\(name): \(error.description)")
            }
        default:
            guard let flag = value as? Bool, flag else { throw Invalid(description: "all must be true") }
            return .all
        }
    }
    /// The path of a path or absolute URL; its query does not matter (every variant goes).
    static func path(of text: String) -> String? {
        RequestTarget(text).map { String($0.path) }
    }
}
