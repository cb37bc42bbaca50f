//! Options of the wgpu backend, defined whether or not the `gpu` feature is built, so that
//! [`crate::LoadOptions`] has the same fields in every build.

/// Which optional GPU features the kernels may use. A feature is used only where the adapter
/// has it; turning one off forces the fallback variant (tests run both).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GpuOptions {
    /// `dot4I8Packed` in the integer matmul of students with quantized activations.
    pub packed_dot: bool,
    /// Subgroup operations in reductions (LayerNorm, attention softmax, pooling, matvec).
    pub subgroups: bool,
    /// f16 arithmetic in the tiled matmul (SHADER_F16). Off by default: it trades about 1e-3
    /// relative accuracy for bandwidth.
    pub f16: bool,
    /// Split embedding tables into chunks of at most this many bytes (default: the device's
    /// largest storage binding). Tables larger than one binding are always split.
    pub max_table_chunk: Option<u64>,
}

impl Default for GpuOptions {
    fn default() -> Self {
        GpuOptions { packed_dot: true, subgroups: true, f16: false, max_table_chunk: None }
    }
}

impl GpuOptions {
    /// Every optional feature off: the variants that run on any adapter.
    pub fn portable() -> GpuOptions {
        GpuOptions { packed_dot: false, subgroups: false, f16: false, max_table_chunk: None }
    }
}
