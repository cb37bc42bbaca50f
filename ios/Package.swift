// swift-tools-version:5.9
// The Bertling Swift package for iOS and macOS apps: the generated Swift API (Sources/Bertling)
// over the Rust runtime, linked statically from BertlingFFI.xcframework. Both are build outputs
// of build-xcframework.sh (run it first, on a Mac with Xcode); see README.md.
import PackageDescription

let package = Package(
    name: "Bertling",
    platforms: [.iOS(.v15), .macOS(.v12)],
    products: [
        .library(name: "Bertling", targets: ["Bertling"]),
    ],
    targets: [
        // libbertling_uniffi.a per platform + the C header and module map of `BertlingFFI`.
        .binaryTarget(name: "BertlingFFI", path: "BertlingFFI.xcframework"),
        .target(
            name: "Bertling",
            dependencies: ["BertlingFFI"],
            path: "Sources/Bertling",
            // The wgpu backend draws on Metal; the static library does not carry these links.
            linkerSettings: [
                .linkedFramework("Metal"),
                .linkedFramework("QuartzCore"),
                .linkedFramework("Foundation"),
            ]
        ),
    ]
)
