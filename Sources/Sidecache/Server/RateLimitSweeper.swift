import NIOCore

/// Forgets, every 10 s, the rate-limit keys that are back to a full burst, so a table holds only
/// the clients seen lately.
final class RateLimitSweeper: Sendable {
    private let task: RepeatedTask

    init(on loop: any EventLoop, clock: MonotonicClock, limiters: @escaping @Sendable () -> [RouteRateLimiter]) {
        task = loop.scheduleRepeatedTask(initialDelay: .seconds(10), delay: .seconds(10)) { _ in
            let now = clock.nanoseconds()
            for limiter in limiters() { limiter.local.removeIdle(now: now) }
        }
    }

    func stop() { task.cancel() }
}
