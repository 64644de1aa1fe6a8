import NIOCore
import NIOHTTP1

/// The dashboard's files by path, as the admin port serves them, and the fields that keep the page
/// to itself: only its own script and styles run, it fetches only from this port, and no other
/// site can frame it.
enum DashboardAssets {
    struct Asset: Sendable {
        let contentType: String
        let body: ByteBuffer
    }

    private static let page = Asset(contentType: "text/html; charset=utf-8", body: ByteBuffer(string: DashboardPage.html))
    private static let files: [String: Asset] = [
        "/": page,
        "/dashboard": page,
        "/dashboard.js": Asset(contentType: "text/javascript; charset=utf-8", body: ByteBuffer(string: DashboardScript.js)),
        "/dashboard.css": Asset(contentType: "text/css; charset=utf-8", body: ByteBuffer(string: DashboardPage.css)),
    ]

    static func asset(at path: String) -> Asset? { files[path] }

    static let contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
        + "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

    static let securityFields: [(String, String)] = [
        ("Content-Security-Policy", contentSecurityPolicy), ("X-Content-Type-Options", "nosniff"), ("X-Frame-Options", "DENY"),
        ("Referrer-Policy", "no-referrer"),
    ]
}
