/// One mistake in a config file, located by its YAML path (`routes[2].ttl`) and line.
public struct ConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    public var path: String
    public var line: Int?
    public var message: String

    public init(path: String, line: Int?, message: String) {
        self.path = path
        self.line = line
        self.message = message
    }

    public var description: String {
        let location = path.isEmpty ? "(top level)" : path
        if let line { return "line \(line): \(location): \(message)" }
        return "\(location): \(message)"
    }
}

/// Every mistake found in one config file; loading never stops at the first.
public struct ConfigErrors: Error, Sendable, CustomStringConvertible {
    public var file: String
    public var errors: [ConfigError]

    public init(file: String, errors: [ConfigError]) {
        self.file = file
        self.errors = errors
    }

    public var description: String {
        errors.map { "\(file): \($0)" }.joined(separator: "\n")
    }
}
