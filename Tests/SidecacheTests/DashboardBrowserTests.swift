import Foundation
import NIOConcurrencyHelpers
import Sidecache
import TestSupport
import Testing

/// The dashboard in a real headless Chromium, against a real sidecache under a small load: the
/// token form, the numbers and charts it renders, and a purge through its form. Under `CI=true` a
/// missing browser fails; elsewhere the test is skipped without one.
@Suite struct DashboardBrowserTests {
    /// Where the screenshot goes: `SIDECACHE_TEST_OUTPUT`, else `.build/test-output` of the package.
    static var outputDirectory: String {
        if let dir = ProcessInfo.processInfo.environment["SIDECACHE_TEST_OUTPUT"], !dir.isEmpty { return dir }
        let package = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return package.appendingPathComponent(".build/test-output").path
    }

    /// What the page shows, read in one evaluation.
    static let readPage = """
    JSON.stringify({
      tokenAsked: !document.getElementById('token-form').hidden,
      hitRatio: document.getElementById('tile-hit-ratio').getAttribute('data-value'),
      hitRatioText: document.getElementById('tile-hit-ratio').textContent,
      requestPoints: Number(document.getElementById('chart-requests').getAttribute('data-points') || 0),
      outcomePoints: Number(document.getElementById('chart-outcomes').getAttribute('data-points') || 0),
      legend: document.getElementById('chart-requests').querySelector('.legend') ? document.getElementById('chart-requests').querySelector('.legend').textContent : '',
      routes: Array.from(document.querySelectorAll('#routes-table tbody td:first-child')).map(td => td.textContent),
      status: document.getElementById('status').textContent
    })
    """

    struct PageState: Decodable {
        let tokenAsked: Bool
        let hitRatio: String?
        let hitRatioText: String
        let requestPoints: Int
        let outcomePoints: Int
        let legend: String
        let routes: [String]
        let status: String
    }

    static func state(_ browser: HeadlessBrowser) async throws -> PageState {
        let text = try #require(try await browser.string(readPage))
        return try JSONDecoder().decode(PageState.self, from: Data(text.utf8))
    }

    @Test(.enabled(if: HeadlessBrowser.shouldRun, "no chromium on PATH (CI=true makes this a failure)"), .timeLimit(.minutes(2)))
    func theDashboardShowsWhatStatsSaysAndPurgesThroughItsForm() async throws {
        try await DashboardTests.withDashboard { origin, proxy, admin in
            // A small load in the background on one keep-alive connection (the other tests' free
            // ports stay free): 20 items, so nearly every request is a hit.
            let running = NIOLockedValueBox(true)
            let port = proxy.port
            let load = Task {
                _ = try? await offloaded {
                    let connection = try TestConnection(port: port)
                    defer { connection.close() }
                    var sent = 0
                    while running.withLockedValue({ $0 }) && sent < 5_000 {
                        try connection.send("GET /api/items/\(sent % 20) HTTP/1.1\r\nHost: test.local\r\n\r\n")
                        _ = try connection.readResponse()
                        sent += 1
                        usleep(5_000)
                    }
                }
            }
            let browser = try HeadlessBrowser()
            do {
                try await browser.open("http://127.0.0.1:\(admin)/")
                // The page asks for the token once; it keeps it in the tab's session storage.
                _ = try await browser.waitFor("!document.getElementById('token-form').hidden", as: Bool.self) { $0 }
                _ = try await browser.evaluate("""
                    document.getElementById('token-input').value = '\(DashboardTests.token)';
                    document.getElementById('token-form').requestSubmit(); true
                    """)
                #expect(try await browser.string("sessionStorage.getItem('sidecache-admin-token')") == DashboardTests.token)
                _ = try await browser.waitFor("Number(document.getElementById('chart-requests').getAttribute('data-points') || 0)", as: Int.self) { $0 >= 2 }
                let live = try await Self.state(browser)
                #expect(!live.tokenAsked && live.routes.contains("items") && live.outcomePoints > 0, "\(live)")
                #expect(live.legend.contains("items"))

                // Once the load stops, the page's hit ratio is /stats' (within rounding, one refresh later).
                running.withLockedValue { $0 = false }
                await load.value
                let stats = try DashboardTests.json(try await get(admin, "/stats", DashboardTests.bearer))
                let expected = try #require((stats["totals"] as? [String: Any])?["hit_ratio"] as? Double)
                let shown = try await eventually(timeout: .seconds(10), interval: .milliseconds(250), { try await Self.state(browser) },
                                                 until: { abs((Double($0.hitRatio ?? "") ?? -1) - expected) < 0.001 })
                #expect(abs((Double(shown.hitRatio ?? "") ?? -1) - expected) < 0.001, "\(shown)")
                #expect(shown.hitRatioText == String(format: "%.1f%%", (Double(shown.hitRatio ?? "") ?? -1) * 100))
                #expect(expected > 0)

                // A purge through the form: nothing happens before the confirmation.
                #expect(try await get(proxy.port, "/api/items/3").xCache == "HIT")
                let fetched = origin.count("/api/items/3")
                _ = try await browser.evaluate("""
                    document.getElementById('purge-kind').value = 'url';
                    document.getElementById('purge-value').value = '/api/items/3';
                    document.getElementById('purge-form').requestSubmit(); true
                    """)
                let question = try #require(try await browser.string("document.getElementById('purge-confirm').hidden ? '' : document.getElementById('purge-question').textContent"))
                #expect(question.contains("/api/items/3"))
                #expect(try await get(proxy.port, "/api/items/3").xCache == "HIT")
                _ = try await browser.evaluate("document.getElementById('purge-confirm-yes').click(); true")
                let answer = try await browser.waitFor("document.getElementById('purge-result').textContent", as: String.self) { $0.contains("removed") }
                #expect(answer.hasPrefix("200") && answer.contains("\"memory\": 1"), "\(answer)")
                let after = try await get(proxy.port, "/api/items/3")
                #expect(after.xCache == "MISS" && origin.count("/api/items/3") == fetched + 1)

                let shot = Self.outputDirectory + "/dashboard.png"
                try await browser.screenshot(to: shot)
                #expect(FileManager.default.fileExists(atPath: shot))
            } catch {
                running.withLockedValue { $0 = false }
                await load.value
                await browser.close()
                throw error
            }
            await browser.close()
        }
    }
}
