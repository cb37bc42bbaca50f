//! Shared helpers of the benchmarks: where the test model is, and benchmark inputs.

use std::path::PathBuf;

use bertling_runtime::Input;

/// The all-MiniLM-L6-v2 directory (`BERTLING_TEST_MODEL`, else the cache that
/// `scripts/fetch_model.sh` fills), if present.
pub fn minilm_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("BERTLING_TEST_MODEL").map(PathBuf::from).unwrap_or_else(|| {
        let cache = std::env::var_os("BERTLING_CACHE")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/bertling"));
        cache.join("models/all-MiniLM-L6-v2")
    });
    dir.join("model.safetensors").is_file().then_some(dir)
}

/// `batch` inputs of `seq` tokens as `anchors/bench_ort.py` makes them (see `Input::synthetic`).
pub fn inputs(batch: usize, seq: usize) -> Vec<Input> {
    Input::synthetic(batch, seq, 30522)
}
