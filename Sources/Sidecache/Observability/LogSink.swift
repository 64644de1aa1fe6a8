import NIOConcurrencyHelpers

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes log lines to a file descriptor from its own thread, so an event loop never blocks on a
/// slow pipe or journal. Lines queue in memory up to `maxPendingBytes`; beyond that they are dropped
/// and counted (a full log pipe must not stall or grow the proxy without bound).
public final class LogSink: Sendable {
    private struct Queue: Sendable {
        var pending: [UInt8] = []
        var dropped = 0
        var closed = false
    }

    private let fd: Int32
    private let maxPendingBytes: Int
    /// value: 0 = nothing to write, 1 = something queued or closing.
    private let signal = ConditionLock(value: 0)
    private let queue = NIOLockedValueBox(Queue())
    private let done = ConditionLock(value: false)

    public init(fileDescriptor: Int32 = 1, maxPendingBytes: Int = 8 << 20) {
        self.fd = fileDescriptor
        self.maxPendingBytes = maxPendingBytes
        let thread = Thread { [self] in self.run() }
        thread.start()
    }

    /// Queues one line given as bytes (without its newline). Only the line that makes the queue
    /// non-empty wakes the writer; under load the writer finds many lines per wake-up instead of one
    /// futex wake per line.
    public func write(bytes: [UInt8]) {
        let wake = queue.withLockedValue { q -> Bool in
            guard !q.closed, q.pending.count + bytes.count < maxPendingBytes else {
                q.dropped += 1
                return false
            }
            let wasEmpty = q.pending.isEmpty
            q.pending.append(contentsOf: bytes)
            q.pending.append(0x0A)
            return wasEmpty
        }
        if wake {
            signal.lock()
            signal.unlock(withValue: 1)
        }
    }

    /// Lines dropped because the queue was full.
    public var droppedLines: Int { queue.withLockedValue { $0.dropped } }

    /// Writes what is queued and stops the writer thread.
    public func close() {
        queue.withLockedValue { $0.closed = true }
        signal.lock()
        signal.unlock(withValue: 1)
        _ = done.lock(whenValue: true, timeoutSeconds: 5)
        done.unlock()
    }

    /// Blocks until everything queued so far has been written (tests and shutdown).
    public func flush() {
        for _ in 0..<500 {
            if queue.withLockedValue({ $0.pending.isEmpty }) { return }
            usleep(2000)
        }
    }

    private func run() {
        var writing: [UInt8] = []
        while true {
            signal.lock(whenValue: 1)
            signal.unlock(withValue: 0)
            // Two buffers trade places: the one just written is emptied and kept, so batches reuse
            // memory already mapped instead of allocating (and faulting in) a new one each time.
            let closed = queue.withLockedValue { q -> Bool in
                swap(&q.pending, &writing)
                return q.closed
            }
            writeAll(writing)
            writing.removeAll(keepingCapacity: writing.capacity <= 1 << 20)
            if !closed {
                // Let lines gather for a moment: one write per batch, not per line.
                usleep(2000)
                if queue.withLockedValue({ !$0.pending.isEmpty }) {
                    signal.lock()
                    signal.unlock(withValue: 1)
                }
            }
            if closed {
                done.lock()
                done.unlock(withValue: true)
                return
            }
        }
    }

    private func writeAll(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return }
            var offset = 0
            while offset < raw.count {
                let n = Glibc.write(fd, base + offset, raw.count - offset)
                if n > 0 { offset += n } else if n < 0 && errno == EINTR { continue } else { return }
            }
        }
    }
}

/// A plain thread (Foundation is not needed for this).
final class Thread: @unchecked Sendable {
    private let body: @Sendable () -> Void
    init(_ body: @escaping @Sendable () -> Void) { self.body = body }

    func start() {
        let box = Unmanaged.passRetained(self)
        var tid = pthread_t()
        let rc = pthread_create(&tid, nil, { raw in
            guard let raw else { return nil }
            let me = Unmanaged<Thread>.fromOpaque(raw).takeRetainedValue()
            me.body()
            return nil
        }, box.toOpaque())
        if rc == 0 { pthread_detach(tid) } else { box.release() }
    }
}
