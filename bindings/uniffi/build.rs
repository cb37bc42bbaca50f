// On Android, 16 KB page alignment: devices with 16 KB pages (Android 15+) cannot load a
// library whose segments are aligned to 4 KB, and Google Play requires it.
// android/build-jni-libs.sh checks the result with readelf.
fn main() {
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("android") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-z,max-page-size=16384");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
