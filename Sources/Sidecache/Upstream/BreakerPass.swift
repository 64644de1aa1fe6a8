import CoreMetrics
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import Resilience
import SidecacheConfig

/// Leave to send one request to the upstream. Its outcome is reported once; a probe whose request
/// never gets an answer (the client left) gives its place back, at the latest when the pass is freed.
final class BreakerPass {
    private let breaker: UpstreamBreaker
    private let probe: Bool
    private var settled = false

    init(_ breaker: UpstreamBreaker, probe: Bool) {
        self.breaker = breaker
        self.probe = probe
    }

    func record(status: UInt) {
        guard !settled else { return }
        settled = true
        breaker.record(success: !breaker.isFailure(status: status))
    }

    func record(_ error: UpstreamError) {
        guard !settled else { return }
        guard error.isUpstreamFault else { return abandon() }
        settled = true
        breaker.record(success: false)
    }

    func abandon() {
        guard !settled else { return }
        settled = true
        if probe { breaker.abandonProbe() }
    }

    deinit {
        if !settled, probe { breaker.abandonProbe() }
    }
}
