// swift-tools-version: 6.0
// A package that depends on QuantKit the way users do: by URL and version. SwiftPM refuses unsafeFlags in such a
// dependency, so building this proves QuantKit's manifest has none. check.sh tags a snapshot of the work tree as
// 0.1.0 in a temporary git repo and points QUANTKIT_PACKAGE_URL at it.
import PackageDescription

/// Default: the QuantKit repository this example lives in (Examples/Downstream -> ../..), which must have a
/// 0.1.0 tag.
func defaultQuantKitURL() -> String {
    var parts = Context.packageDirectory.split(separator: "/", omittingEmptySubsequences: false)
    parts.removeLast(2)
    return "file://" + parts.joined(separator: "/")
}

let quantKitURL = Context.environment["QUANTKIT_PACKAGE_URL"] ?? defaultQuantKitURL()

let package = Package(
    name: "Downstream",
    dependencies: [
        .package(url: quantKitURL, from: "0.1.0"),
    ],
    targets: [
        .executableTarget(name: "Downstream", dependencies: [.product(name: "QuantKit", package: "QuantKit")]),
    ]
)
