// swift-tools-version: 6.0
import PackageDescription

// No unsafe build flags anywhere: SwiftPM would then refuse QuantKit as a versioned dependency. SIMD code selects
// its ISA per function (__attribute__((target))) and at run time, so a plain `swift build` is the fast library.
// OpenMP is opt-in from the command line: swift build -c release -Xcc -fopenmp -Xlinker -lomp5
let package = Package(
    name: "QuantKit",
    products: [
        .library(name: "QuantKit", targets: ["QuantKit"]),
        .executable(name: "quantkit", targets: ["QuantKitCLI"]),
        .executable(name: "quantkit-bench", targets: ["QuantKitBench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .target(
            name: "CKernels",
            path: "CKernels",
            sources: ["src"],
            publicHeadersPath: "include",
            cSettings: [.headerSearchPath("src"), .headerSearchPath("src/kernels")],
            linkerSettings: [.linkedLibrary("pthread", .when(platforms: [.linux])),
                             .linkedLibrary("m", .when(platforms: [.linux]))]),
        // System zlib for the gzipped datasets (Debian: zlib1g-dev; part of the Apple SDKs).
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", providers: [.apt(["zlib1g-dev"])]),
        // fp32 GEMM (float modules, training) goes through CBLAS: OpenBLAS on Linux, Accelerate on Apple platforms.
        .target(name: "QuantKit",
                dependencies: ["CKernels", "CZlib",
                               .target(name: "COpenBLAS", condition: .when(platforms: [.linux]))]),
        .executableTarget(
            name: "QuantKitCLI",
            dependencies: ["QuantKit", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Sources/quantkit"),
        .systemLibrary(
            name: "COpenBLAS", path: "Sources/COpenBLAS", pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"]), .brew(["openblas"])]),
        .executableTarget(
            name: "QuantKitBench",
            dependencies: ["QuantKit", "CKernels", "COpenBLAS",
                           .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Benchmarks/QuantKitBench"),
        .testTarget(name: "QuantKitTests", dependencies: ["QuantKit"], exclude: ["Fixtures"]),
    ]
)
