//! Peak memory of loading a package, from its file or from bytes the caller holds (an app's
//! asset): `cargo run --release --example load_rss -- file|bytes PACKAGE`. Prints one JSON line
//! with the file's size, the loaded weights' in-memory size and the process's peak resident set
//! (VmHWM, Linux) before and after loading. Run each mode in its own process.

use bertling_runtime::{LoadOptions, Model};

fn status_kib(key: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status.lines().find_map(|l| l.strip_prefix(key).map(|v| v.trim().trim_end_matches("kB").trim().parse().unwrap_or(0))).unwrap_or(0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (mode, path) = match args.as_slice() {
        [_, m, p] if m == "file" || m == "bytes" => (m.as_str(), p.as_str()),
        _ => return Err("usage: load_rss file|bytes PACKAGE".into()),
    };
    let file_bytes = std::fs::metadata(path)?.len();
    let options = LoadOptions { threads: Some(1), ..Default::default() };
    let before = status_kib("VmHWM:");
    let (model, held) = if mode == "file" {
        (Model::load(path, &options)?, None)
    } else {
        let bytes = std::fs::read(path)?;
        (Model::from_package_bytes(&bytes, &options)?, Some(bytes))
    };
    let peak = status_kib("VmHWM:");
    let rss = status_kib("VmRSS:");
    println!(
        "{{\"mode\":\"{mode}\",\"file_mb\":{:.1},\"model_mb\":{:.1},\"peak_rss_mb_before\":{:.1},\"peak_rss_mb\":{:.1},\"rss_mb_after\":{:.1},\"caller_bytes_held\":{}}}",
        file_bytes as f64 / 1e6,
        model.info().bytes as f64 / 1e6,
        before as f64 * 1024.0 / 1e6,
        peak as f64 * 1024.0 / 1e6,
        rss as f64 * 1024.0 / 1e6,
        held.is_some()
    );
    Ok(())
}
