import HTTPWire
import NIOCore
import NIOHTTP1

/// Fetches one document from the upstream (a sitemap for `POST /warm`) and hands over its body:
/// a GET on a pooled connection, the body kept up to `maxBytes`, not cached. Runs on the pool's
/// event loop; `done` is called once there.
final class UpstreamDocumentFetch: UpstreamResponseDelegate {
    enum Failure: Error, CustomStringConvertible {
        case status(UInt)
        case tooLarge(Int)
        case upstream(UpstreamError)

        var description: String {
            switch self {
            case .status(let code): "the upstream answered \(code)"
            case .tooLarge(let limit): "larger than \(limit) bytes"
            case .upstream(let error): "\(error)"
            }
        }
    }

    static let maxBytes = 8 << 20

    private let done: (Result<ByteBuffer, Failure>) -> Void
    private var body = ByteBuffer()
    private var status: UInt = 0
    private var connection: UpstreamConnection?
    private var finished = false
    /// Held until the fetch ends (the pool's callbacks and the handler hold the delegate weakly).
    private var retainSelf: UpstreamDocumentFetch?

    private init(done: @escaping (Result<ByteBuffer, Failure>) -> Void) {
        self.done = done
    }

    static func get(_ uri: String, host: String, runtime: ProxyRuntime, on loop: any EventLoop,
                    _ done: @escaping (Result<ByteBuffer, Failure>) -> Void) {
        let fetch = UpstreamDocumentFetch(done: done)
        fetch.retainSelf = fetch
        guard let pool = runtime.pools.pool(for: loop) else {
            fetch.finish(.failure(.upstream(UpstreamError(.connectFailed, "no connection pool on this event loop"))))
            return
        }
        let settings = UpstreamSettings(runtime.config.configuration.upstream, loops: runtime.pools.loopCount)
        var bytes = ByteBuffer()
        HeadWriter.writeRequestHead(method: "GET", target: uri, fields: [("Host", host), ("Sec-Purpose", "prefetch"), ("Accept", "application/xml, text/xml")],
                                    into: &bytes)
        let head = UpstreamRequestHead(bytes: bytes, isHEAD: false, chunked: false)
        pool.acquire(settings) { result in
            switch result {
            case .success(let connection):
                fetch.connection = connection
                connection.handler.begin(head: head, delegate: fetch, responseTimeout: settings.responseTimeout)
                guard fetch.connection === connection else { return }
                connection.handler.sendEnd()
            case .failure(let error):
                fetch.upstreamFailed(error)
            }
        }
    }

    private func finish(_ result: Result<ByteBuffer, Failure>) {
        guard !finished else { return }
        finished = true
        done(result)
        retainSelf = nil
    }

    func upstreamInterimResponse(_ head: HTTPResponseHead) {}

    func upstreamResponseHead(_ head: HTTPResponseHead) {
        status = head.status.code
    }

    func upstreamResponseBody(_ buffer: ByteBuffer) {
        var buffer = buffer
        guard body.readableBytes + buffer.readableBytes <= Self.maxBytes else {
            connection?.handler.abort()
            connection = nil
            finish(.failure(.tooLarge(Self.maxBytes)))
            return
        }
        body.writeBuffer(&buffer)
    }

    func upstreamResponseEnd() {
        connection = nil
        finish((200..<300).contains(status) ? .success(body) : .failure(.status(status)))
    }

    func upstreamReadComplete() {}

    func upstreamFailed(_ error: UpstreamError) {
        connection = nil
        finish(.failure(.upstream(error)))
    }

    func upstreamWritabilityChanged(isWritable: Bool) {}
}
