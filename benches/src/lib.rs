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

/// `batch` inputs of `seq` tokens as `anchors/bench_ort.py` makes them: ids in [1000, 30000),
/// `[CLS]` first and `[SEP]` last, one segment.
pub fn inputs(batch: usize, seq: usize) -> Vec<Input> {
    let mut s = 0x9E37_79B9_7F4A_7C15u64;
    (0..batch)
        .map(|_| {
            let mut ids: Vec<u32> = (0..seq)
                .map(|_| {
                    s ^= s << 13;
                    s ^= s >> 7;
                    s ^= s << 17;
                    (1000 + s % 29000) as u32
                })
                .collect();
            ids[0] = 101;
            ids[seq - 1] = 102;
            Input { ids, type_ids: vec![0; seq] }
        })
        .collect()
}
