// swift-tools-version:6.0
import PackageDescription

// libFuzzer harnesses for HTTPWire (issue 21 §4). Built on its own, from this folder:
//   swift build -c release -Xswiftc -sanitize=fuzzer --product wire-fuzz
//   .build/release/wire-fuzz -max_total_time=60 corpus/
// `scripts/fuzz.sh` does both; `make test` runs it for a minute.
let package = Package(
    name: "sidecache-fuzz",
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
    ],
    targets: [
        // The same sources as the main package's HTTPWire (Sources/HTTPWire is a symlink to them): a
        // path dependency on the main package would be named after the folder it was cloned into.
        .target(name: "HTTPWire", dependencies: [.product(name: "NIOCore", package: "swift-nio")], path: "Sources/HTTPWire"),
        .executableTarget(
            name: "wire-fuzz",
            dependencies: [
                "HTTPWire",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            path: "Sources/WireFuzz"
        ),
    ],
    swiftLanguageModes: [.v6]
)
