import CompressNIO
import NIOConcurrencyHelpers
import NIOCore

/// zlib compressors kept between responses. Making one per stored entry (or per response gzipped
/// on the fly) allocated and freed about 256 KiB of zlib state each time, which glibc handed back to
/// the kernel and faulted in again: page faults and `madvise` were 7% of a miss that fills the cache.
final class GzipCompressorPool: Sendable {
    /// A compressor is used by one thread at a time: the one that took it out of the pool.
    final class Compressor: @unchecked Sendable {
        let level: Int
        let zlib: ZlibCompressor

        init(level: Int) throws {
            self.level = level
            zlib = try ZlibCompressor(algorithm: .gzip, configuration: .init(compressionLevel: Int32(level)))
        }
    }

    /// Enough for every event loop and a background task compressing at once; more are made and
    /// dropped when they are busy.
    private let capacity: Int
    private let idle = NIOLockedValueBox<[Compressor]>([])

    init(capacity: Int = 8) {
        self.capacity = capacity
    }

    /// The whole body gzipped at `level` (1-9), in a buffer of the worst case's size.
    func gzip(_ body: ByteBuffer, level: Int) throws -> ByteBuffer {
        let compressor = try take(level: level)
        var input = body
        var output = ByteBufferAllocator().buffer(capacity: compressor.zlib.maxSize(from: body))
        try compressor.zlib.deflate(from: &input, to: &output, flush: .finish)
        // A compressor that failed is dropped; one that finished starts over clean.
        try compressor.zlib.reset()
        give(compressor)
        return output
    }

    /// A compressor at `level` in its initial state: an idle one, or a new one.
    func take(level: Int) throws -> Compressor {
        let found = idle.withLockedValue { idle -> Compressor? in
            guard let i = idle.lastIndex(where: { $0.level == level }) else { return nil }
            return idle.remove(at: i)
        }
        return try found ?? Compressor(level: level)
    }

    /// Takes back a compressor that finished a stream and was reset.
    func give(_ compressor: Compressor) {
        idle.withLockedValue { idle in
            if idle.count >= capacity { idle.removeFirst() }
            idle.append(compressor)
        }
    }
}
