// The shared library's soname: programs link against libbertling.so.0, so a compatible
// upgrade (same BERTLING_ABI_VERSION) replaces the file without relinking them.
fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os == "linux" || os == "android" {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libbertling.so.0");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
