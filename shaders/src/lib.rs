//! WGSL kernels of the bertling wgpu backend, one file per op family, embedded at build time.
//!
//! Kernels are specialised with pipeline-overridable constants (weight format, bit width,
//! group size, activation bits, epilogue, pooling mode). WGSL has no includes, so shared pieces
//! are prepended at build time: `weights.wgsl` (weight decoding for every kernel that reads a
//! matrix or an embedding table), `activations.wgsl` (erf, GELU), and a reduction file —
//! `reduce_shared.wgsl` (workgroup memory, every adapter) or `reduce_subgroup.wgsl` (subgroup
//! operations, where the adapter has them). Capability variants that WGSL cannot express with
//! override constants (an `enable` directive, a built-in the adapter may lack) are separate
//! compositions; the runtime picks one per adapter, and every variant has a fallback.

macro_rules! wgsl {
    ($($file:literal),+) => {
        concat!($(include_str!(concat!("../wgsl/", $file))),+)
    };
}

/// Dequant-matmul `y = epilogue(x·Wᵀ + b)`: entry points `main` (tiled) and `matvec`.
pub const MATMUL: &str = wgsl!("tile_f32.wgsl", "reduce_shared.wgsl", "weights.wgsl", "activations.wgsl", "matmul_common.wgsl", "matmul.wgsl");
/// [`MATMUL`] with subgroup reductions in `matvec`.
pub const MATMUL_SUBGROUP: &str = wgsl!("tile_f32.wgsl", "reduce_subgroup.wgsl", "weights.wgsl", "activations.wgsl", "matmul_common.wgsl", "matmul.wgsl");
/// [`MATMUL`] with f16 tiles and arithmetic in `main` (SHADER_F16).
pub const MATMUL_F16: &str = wgsl!("tile_f16.wgsl", "reduce_shared.wgsl", "weights.wgsl", "activations.wgsl", "matmul_common.wgsl", "matmul.wgsl");

/// Integer dequant-matmul for quantized activations, with `dot4I8Packed`.
pub const MATMUL_INT_PACKED: &str = wgsl!("weights.wgsl", "activations.wgsl", "matmul_common.wgsl", "dot4_packed.wgsl", "matmul_int.wgsl");
/// Integer dequant-matmul for quantized activations, exact fallback without `dot4I8Packed`.
pub const MATMUL_INT_EXACT: &str = wgsl!("weights.wgsl", "activations.wgsl", "matmul_common.wgsl", "dot4_exact.wgsl", "matmul_int.wgsl");

/// Embedding gather-add from float or quantized tables (chunked for large tables).
pub const EMBED: &str = wgsl!("weights.wgsl", "embed.wgsl");

/// Residual add + LayerNorm.
pub const LAYERNORM: &str = wgsl!("reduce_shared.wgsl", "layernorm.wgsl");
/// [`LAYERNORM`] with subgroup reductions.
pub const LAYERNORM_SUBGROUP: &str = wgsl!("reduce_subgroup.wgsl", "layernorm.wgsl");

/// Fused multi-head attention over ragged sentences.
pub const ATTENTION: &str = wgsl!("reduce_shared.wgsl", "attention.wgsl");
/// [`ATTENTION`] with subgroup reductions.
pub const ATTENTION_SUBGROUP: &str = wgsl!("reduce_subgroup.wgsl", "attention.wgsl");

/// Depthwise convolution + GELU (the first half of a separable convolution).
pub const SEPCONV: &str = wgsl!("activations.wgsl", "sepconv.wgsl");

/// CLS / mean pooling with optional L2 normalisation.
pub const POOL: &str = wgsl!("reduce_shared.wgsl", "pool.wgsl");
/// [`POOL`] with subgroup reductions.
pub const POOL_SUBGROUP: &str = wgsl!("reduce_subgroup.wgsl", "pool.wgsl");

/// Every composition with its name, for validation and tooling.
pub const ALL: [(&str, &str); 13] = [
    ("matmul", MATMUL),
    ("matmul_subgroup", MATMUL_SUBGROUP),
    ("matmul_f16", MATMUL_F16),
    ("matmul_int_packed", MATMUL_INT_PACKED),
    ("matmul_int_exact", MATMUL_INT_EXACT),
    ("embed", EMBED),
    ("layernorm", LAYERNORM),
    ("layernorm_subgroup", LAYERNORM_SUBGROUP),
    ("attention", ATTENTION),
    ("attention_subgroup", ATTENTION_SUBGROUP),
    ("sepconv", SEPCONV),
    ("pool", POOL),
    ("pool_subgroup", POOL_SUBGROUP),
];
