import HTTPCaching
import SidecacheConfig
import Testing

@Suite struct MemoryPolicyConfigTests {
    static func yaml(_ memory: String) -> String {
        """
        upstream: { url: "http://127.0.0.1:3000" }
        cache:
          memory: \(memory)
        routes:
          - name: all
            match: { path: "/*" }
        """
    }

    @Test func theDefaultIsS3FIFOAndLRUCanBeChosen() throws {
        #expect(try parse(Self.yaml("{ max_bytes: 64MiB }")).cache.memory.policy == .s3fifo)
        #expect(try parse(Self.yaml("{ max_bytes: 64MiB, policy: lru }")).cache.memory.policy == .lru)
        #expect(try parse(Self.yaml("{ policy: s3fifo }")).cache.memory.policy == .s3fifo)
    }

    @Test func anUnknownPolicyNamesItsPathAndLine() {
        let found = errors(Self.yaml("{ max_bytes: 64MiB, policy: arc }"))
        #expect(found.count == 1)
        #expect(found.first?.path == "cache.memory.policy")
        #expect(found.first?.line == 3)
        #expect(found.first?.message.contains("s3fifo") == true)
    }
}

@Suite struct ApproximateSizeTests {
    @Test func sizesReadInTheirLargestUnitWithOneDecimal() {
        #expect(SizeText.approximate(561_277_715) == "535.3MiB")
        #expect(SizeText.approximate(1024) == "1.0KiB")
        #expect(SizeText.approximate(1023) == "1023B")
        #expect(SizeText.approximate(3 << 30) == "3.0GiB")
    }
}
