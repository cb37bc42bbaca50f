//! WGSL kernels of the bertling wgpu backend, one file per op family, embedded at build time.
//!
//! Kernels are specialised with pipeline-overridable constants (weight format, bit width,
//! group size, activation bits, epilogue, pooling mode). `weights.wgsl` (the weight decoding
//! shared by every kernel that reads a matrix or an embedding table) and `activations.wgsl`
//! (erf, GELU) are prepended to the kernels that need them: WGSL has no includes.

/// Weight decoding: f32, f16 pairs, packed signed codes of any width 2..8 with steps per row
/// or per group.
pub const WEIGHTS: &str = include_str!("../wgsl/weights.wgsl");

/// Dequant-matmul `y = epilogue(act(x)·Wᵀ + b)`: entry points `main` (tiled) and `matvec`.
pub const MATMUL: &str = concat!(
    include_str!("../wgsl/weights.wgsl"),
    include_str!("../wgsl/activations.wgsl"),
    include_str!("../wgsl/matmul.wgsl")
);

/// Integer dequant-matmul for quantized activations, with `dot4I8Packed`.
pub const MATMUL_INT_PACKED: &str = concat!(
    include_str!("../wgsl/weights.wgsl"),
    include_str!("../wgsl/activations.wgsl"),
    include_str!("../wgsl/dot4_packed.wgsl"),
    include_str!("../wgsl/matmul_int.wgsl")
);

/// Integer dequant-matmul for quantized activations, exact fallback without `dot4I8Packed`.
pub const MATMUL_INT_EXACT: &str = concat!(
    include_str!("../wgsl/weights.wgsl"),
    include_str!("../wgsl/activations.wgsl"),
    include_str!("../wgsl/dot4_exact.wgsl"),
    include_str!("../wgsl/matmul_int.wgsl")
);

/// Embedding gather-add from float or quantized tables (chunked for large tables).
pub const EMBED: &str = concat!(include_str!("../wgsl/weights.wgsl"), include_str!("../wgsl/embed.wgsl"));

/// Residual add + LayerNorm.
pub const LAYERNORM: &str = include_str!("../wgsl/layernorm.wgsl");

/// Fused multi-head attention over ragged sentences.
pub const ATTENTION: &str = include_str!("../wgsl/attention.wgsl");

/// Depthwise convolution + GELU (the first half of a separable convolution).
pub const SEPCONV: &str = concat!(include_str!("../wgsl/activations.wgsl"), include_str!("../wgsl/sepconv.wgsl"));

/// CLS / mean pooling with optional L2 normalisation.
pub const POOL: &str = include_str!("../wgsl/pool.wgsl");

/// Every kernel source with its name, for validation and tooling.
pub const ALL: [(&str, &str); 8] = [
    ("matmul", MATMUL),
    ("matmul_int_packed", MATMUL_INT_PACKED),
    ("matmul_int_exact", MATMUL_INT_EXACT),
    ("embed", EMBED),
    ("layernorm", LAYERNORM),
    ("attention", ATTENTION),
    ("sepconv", SEPCONV),
    ("pool", POOL),
];
