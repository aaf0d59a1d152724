// swift-tools-version:5.9
// The Swift package of overlay-mobile: `Overlay` (the uniffi-generated Swift API) over
// `OverlayFFI` (its C header, linking liboverlay_mobile). bindings-mobile/test.sh puts
// the generated sources in place (Sources/Overlay/Overlay.swift,
// Sources/OverlayFFI/include/OverlayFFI.h); link with `-Xlinker -L<dir of the library>`.
// docs/mobile.md says how an iOS app wraps the library in an XCFramework instead.
import PackageDescription

let package = Package(
    name: "Overlay",
    products: [
        .library(name: "Overlay", targets: ["Overlay"]),
    ],
    targets: [
        .systemLibrary(name: "OverlayFFI", path: "Sources/OverlayFFI"),
        .target(name: "Overlay", dependencies: ["OverlayFFI"]),
        // The tests against `overlay` peers (bindings-mobile/test.sh runs them).
        .executableTarget(name: "OverlayCheck", dependencies: ["Overlay"]),
    ]
)
