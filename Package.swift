// swift-tools-version:6.0
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

/// What the benchmark's small HTTP servers need.
let nioHTTPServer: [Target.Dependency] = [
    .product(name: "NIOCore", package: "swift-nio"),
    .product(name: "NIOPosix", package: "swift-nio"),
    .product(name: "NIOHTTP1", package: "swift-nio"),
]

let package = Package(
    name: "sidecache",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "sidecache", targets: ["sidecache"]),
        .executable(name: "bench-origin", targets: ["bench-origin"]),
        .executable(name: "bench-floor", targets: ["bench-floor"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/adam-fowler/compress-nio.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-http-structured-headers.git", from: "1.7.0"),
    ],
    targets: [
        // hiredis from Debian's libhiredis-dev (headers in /usr/include/hiredis, found through the
        // shim's <hiredis/hiredis.h>). Not through pkg-config: its hiredis.pc adds
        // -D_FILE_OFFSET_BITS=64, which SwiftPM refuses with a warning on every build.
        .systemLibrary(name: "CHiredis"),
        .target(
            name: "RedisClient",
            dependencies: [
                "CHiredis",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "HTTPCaching",
            dependencies: [
                "HTTPWire",
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "RawStructuredFieldValues", package: "swift-http-structured-headers"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        // Pure state machines for rate limiting, circuit breaking and retries: no sockets, no clocks.
        .target(name: "Resilience", swiftSettings: strict),
        // The HTTP/1 wire format under the strict profile: heads parsed into offsets, chunked bodies,
        // head writers. No sockets; NIO's decoder is its oracle in the tests.
        .target(name: "HTTPWire", dependencies: [.product(name: "NIOCore", package: "swift-nio")], swiftSettings: strict),
        // Pure parts of predictive warming: hotness, refresh timing, the background budget.
        .target(name: "Warming", swiftSettings: strict),
        .target(
            name: "SidecacheConfig",
            dependencies: [
                "HTTPCaching",
                "RedisClient",
                "Resilience",
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "Sidecache",
            dependencies: [
                "HTTPCaching",
                "HTTPWire",
                "SidecacheConfig",
                "RedisClient",
                "Resilience",
                "Warming",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "sidecache",
            dependencies: [
                "Sidecache",
                "SidecacheConfig",
                "HTTPCaching",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        // The load benchmark's origin (bench/run); not part of sidecache itself.
        .executableTarget(
            name: "bench-origin",
            dependencies: nioHTTPServer,
            path: "bench/origin",
            swiftSettings: strict
        ),
        // What SwiftNIO alone costs for a hit and for a relay: floors for the benchmark's figures.
        .executableTarget(
            name: "bench-floor",
            dependencies: nioHTTPServer + ["HTTPWire"],
            path: "bench/floor",
            swiftSettings: strict
        ),
        // Fixtures shared by the test targets: free ports and a real redis-server per test.
        .target(
            name: "TestSupport",
            dependencies: ["RedisClient", .product(name: "NIOCore", package: "swift-nio")],
            path: "Tests/TestSupport",
            swiftSettings: strict
        ),
        .testTarget(
            name: "RedisClientTests",
            dependencies: [
                "RedisClient",
                "TestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .testTarget(name: "HTTPCachingTests", dependencies: ["HTTPCaching", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "ResilienceTests", dependencies: ["Resilience", "TestSupport"], swiftSettings: strict),
        .testTarget(
            name: "HTTPWireTests",
            dependencies: [
                "HTTPWire",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        .testTarget(name: "WarmingTests", dependencies: ["Warming", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "SidecacheConfigTests", dependencies: ["SidecacheConfig", "RedisClient", "Resilience"], swiftSettings: strict),
        .testTarget(
            name: "SidecacheTests",
            dependencies: [
                "Sidecache",
                "SidecacheConfig",
                "HTTPCaching",
                "HTTPWire",
                "RedisClient",
                "TestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
    ],
    swiftLanguageModes: [.v6]
)
