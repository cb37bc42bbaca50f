// The shared library's soname: programs link against libbertling.so.0, so a compatible
// upgrade (same BERTLING_ABI_VERSION) replaces the file without relinking them.
// On Android, 16 KB page alignment: devices with 16 KB pages (Android 15+) cannot load a
// library whose segments are aligned to 4 KB, and Google Play requires it.
fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os == "linux" || os == "android" {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libbertling.so.0");
    }
    if os == "android" {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-z,max-page-size=16384");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
