import Foundation
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// A real Chromium, headless, driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`:
/// the browser reads commands on fd 3 and writes answers on fd 4, each a JSON text ended by NUL).
/// One page; `evaluate` runs script in it, `screenshot` takes a PNG. Blocking pipe I/O runs on a
/// queue of its own, never on the tests' cooperative threads.
final class HeadlessBrowser: @unchecked Sendable {  // the pipe state is touched only on `queue`
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// Chromium's executable on PATH, nil when none is installed.
    static var executable: String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for dir in path.split(separator: ":") {
            for name in ["chromium", "chromium-browser", "google-chrome"] {
                let candidate = "\(dir)/\(name)"
                if access(candidate, X_OK) == 0 { return candidate }
            }
        }
        return nil
    }

    /// Under CI a missing browser fails the test; elsewhere the test is skipped.
    static var shouldRun: Bool {
        executable != nil || ProcessInfo.processInfo.environment["CI"] == "true"
    }

    private let child: ChildProcess
    private let commands: Int32
    private let answers: Int32
    private let profile: String
    private let queue = DispatchQueue(label: "headless-browser")
    private var nextID = 0
    private var pending: [UInt8] = []
    private var session = ""

    init(width: Int = 1400, height: Int = 1900) throws {
        guard let executable = Self.executable else {
            throw Failure(description: "no chromium on PATH: the README's test command installs Debian's chromium package")
        }
        profile = NSTemporaryDirectory() + "sidecache-browser-\(UUID().uuidString)"
        let toBrowser = try Self.pipeAbove4()
        let fromBrowser = try Self.pipeAbove4()
        // Niced, so that the browser's start (a second of both cores) does not starve the
        // timing-sensitive tests running beside this one; and given nothing else of this process
        // (an inherited socket of a test running beside this one would keep its port bound).
        let arguments = ["-n", "15", executable, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                         "--disable-extensions", "--disable-background-networking", "--remote-debugging-pipe",
                         "--user-data-dir=\(profile)", "--window-size=\(width),\(height)", "about:blank"]
        defer {
            Glibc.close(toBrowser[0])
            Glibc.close(fromBrowser[1])
        }
        do {
            child = try ChildProcess("/usr/bin/nice", arguments, descriptors: [3: toBrowser[0], 4: fromBrowser[1]])
        } catch {
            Glibc.close(toBrowser[1])
            Glibc.close(fromBrowser[0])
            throw Failure(description: "cannot start \(executable): \(error)")
        }
        commands = toBrowser[1]
        answers = fromBrowser[0]
    }

    /// A pipe whose ends are both above 4 (so that moving the child's ends onto 3 and 4 overwrites
    /// neither) and close on exec (so that no other child of this process gets them).
    private static func pipeAbove4() throws -> [Int32] {
        var ends: [Int32] = [0, 0]
        guard pipe(&ends) == 0 else { throw Failure(description: "pipe() failed: \(errno)") }
        return try ends.map { fd in
            let moved = fcntl(fd, F_DUPFD_CLOEXEC, 10)
            Glibc.close(fd)
            guard moved >= 0 else { throw Failure(description: "fcntl(F_DUPFD_CLOEXEC) failed: \(errno)") }
            return moved
        }
    }

    /// Opens `url` in a new page and attaches to it.
    func open(_ url: String) async throws {
        let target = try await send("Target.createTarget", ["url": url], inSession: false)
        guard let id = target["targetId"] as? String else { throw Failure(description: "no target for \(url): \(target)") }
        let attached = try await send("Target.attachToTarget", ["targetId": id, "flatten": true], inSession: false)
        guard let session = attached["sessionId"] as? String else { throw Failure(description: "cannot attach: \(attached)") }
        queue.sync { self.session = session }
        _ = try await send("Emulation.setDeviceMetricsOverride", ["width": 1400, "height": 1900, "deviceScaleFactor": 1, "mobile": false])
    }

    /// The value of `expression` in the page (a promise is awaited); script errors throw.
    func evaluate(_ expression: String) async throws -> Any? {
        let result = try await send("Runtime.evaluate", ["expression": expression, "returnByValue": true, "awaitPromise": true])
        if let exception = result["exceptionDetails"] { throw Failure(description: "script failed: \(exception)") }
        return (result["result"] as? [String: Any])?["value"]
    }

    func string(_ expression: String) async throws -> String? { try await evaluate(expression) as? String }

    /// Evaluates `expression` until it gives a value `accept` takes, for at most `seconds` (a
    /// script error, such as an element the page has not made yet, counts as no value).
    func waitFor<T>(_ expression: String, seconds: Int = 20, as type: T.Type = T.self, until accept: (T) -> Bool) async throws -> T {
        let last = await eventually(timeout: .seconds(seconds), interval: .milliseconds(200), { (try? await evaluate(expression)) as? T },
                                        until: { $0.map(accept) ?? false })
        guard let value = last, accept(value) else {
            throw Failure(description: "\(expression) was still \(String(describing: last)) after \(seconds) s")
        }
        return value
    }

    func screenshot(to path: String) async throws {
        let shot = try await send("Page.captureScreenshot", ["format": "png"])
        guard let text = shot["data"] as? String, let png = Data(base64Encoded: text) else { throw Failure(description: "no screenshot") }
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try png.write(to: URL(fileURLWithPath: path))
    }

    /// Closes the browser, and kills it if it does not exit within 5 s.
    func close() async {
        _ = try? await send("Browser.close", [:], inSession: false, seconds: 5)
        if await !eventually(timeout: .seconds(5), interval: .milliseconds(50), { !child.isRunning }) {
            child.signal(SIGKILL)
            child.wait()
        }
        Glibc.close(commands)
        Glibc.close(answers)
        try? FileManager.default.removeItem(atPath: profile)
    }

    // MARK: The protocol

    private func send(_ method: String, _ params: [String: Any], inSession: Bool = true, seconds: Double = 20) async throws -> [String: Any] {
        let message = UncheckedParams(value: params)
        return try await withCheckedThrowingContinuation { continuation in
            queue.async {
                do {
                    continuation.resume(returning: UncheckedParams(value: try self.exchange(method, message.value, inSession: inSession, seconds: seconds)))
                } catch {
                    continuation.resume(throwing: error)
                }
            }
        }.value
    }

    /// On `queue`: writes one command and reads until its answer, skipping events.
    private func exchange(_ method: String, _ params: [String: Any], inSession: Bool, seconds: Double) throws -> [String: Any] {
        nextID += 1
        var message: [String: Any] = ["id": nextID, "method": method, "params": params]
        if inSession { message["sessionId"] = session }
        var bytes = [UInt8](try JSONSerialization.data(withJSONObject: message))
        bytes.append(0)
        var written = 0
        while written < bytes.count {
            let n = bytes[written...].withUnsafeBytes { Glibc.write(commands, $0.baseAddress, $0.count) }
            guard n > 0 else { throw Failure(description: "the browser's pipe closed while sending \(method)") }
            written += n
        }
        let deadline = Date().addingTimeInterval(seconds)
        while true {
            while let end = pending.firstIndex(of: 0) {
                let text = Array(pending[..<end])
                pending.removeSubrange(...end)
                guard let answer = try JSONSerialization.jsonObject(with: Data(text)) as? [String: Any], answer["id"] as? Int == nextID else { continue }
                if let error = answer["error"] { throw Failure(description: "\(method) failed: \(error)") }
                return answer["result"] as? [String: Any] ?? [:]
            }
            let left = deadline.timeIntervalSinceNow
            guard left > 0 else { throw Failure(description: "no answer to \(method) within \(seconds) s") }
            var poller = pollfd(fd: answers, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, Int32(left * 1000)) > 0 else { continue }
            var chunk = [UInt8](repeating: 0, count: 1 << 16)
            let n = chunk.withUnsafeMutableBytes { Glibc.read(answers, $0.baseAddress, $0.count) }
            guard n > 0 else { throw Failure(description: "the browser exited while answering \(method)") }
            pending += chunk[..<n]
        }
    }
}

/// JSON values cross the queue boundary: they are plain Foundation containers, never shared.
private struct UncheckedParams<T>: @unchecked Sendable {
    let value: T
}
