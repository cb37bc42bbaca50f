//! The wgpu backend: the whole encoder as WGSL compute dispatches (`bertling-shaders`).
//!
//! At load, every weight is uploaded once (quantized matrices stay packed; tables larger than
//! one storage binding are split into row chunks) and every pipeline the model needs is
//! created once. A forward pass is a fixed list of steps recorded into one command encoder
//! and one submission; per-call sizes (tokens, sentences) go into a uniform buffer read with
//! dynamic offsets, so batch and sequence length vary without new pipelines or bind groups.
//! Activation buffers grow (powers of two) and are reused across calls.
//!
//! Like the CPU backend, batches are ragged: sentences are concatenated without padding and
//! attention and convolution read per-token sentence bounds.

pub mod context;

use std::collections::HashMap;
use std::num::NonZeroU64;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use half::f16;
use wgpu::util::DeviceExt;

pub use crate::model::Want;
pub use crate::options::GpuOptions;
pub use context::{AdapterChoice, Capabilities, GpuContext};

use crate::cpu::Input;
use crate::data::{ActQuant, ModelData, TensorData};
use crate::error::{Error, Result};
use crate::spec::{names, BlockSpec, ModelSpec, PoolingMode};

/// Bytes between consecutive dispatches' parameters in the uniform buffer.
const SLOT: u64 = 256;
/// Bytes of one dispatch's parameters.
const PARAM_BYTES: u64 = 32;
/// Sentences longer than this do not fit the attention kernel's workgroup memory.
pub const MAX_GPU_SEQ: usize = 512;
/// Attention heads wider than this do not fit the attention kernel's workgroup memory.
pub const MAX_GPU_HEAD_DIM: usize = 256;

/// A compute kernel with its specialisation constants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Kernel {
    /// `f16`: the tiled form in f16 arithmetic (never with `matvec`).
    Matmul {
        matvec: bool,
        f16: bool,
        format: u32,
        bits: u32,
        group: u32,
        epilogue: u32,
    },
    /// Quantized weights and activations: integer products (`packed`: with dot4I8Packed).
    MatmulInt {
        packed: bool,
        bits: u32,
        group: u32,
        act_bits: u32,
        epilogue: u32,
        /// Per-input-channel smoothing factors follow the weight steps in the scales buffer.
        smooth: bool,
        /// Each row's activation step from the row itself (per-token steps).
        per_token: bool,
    },
    Embed {
        format: u32,
        bits: u32,
        group: u32,
        field: u32,
    },
    LayerNorm {
        residual: bool,
    },
    Attention,
    SepConv,
    Pool {
        cls: bool,
        normalize: bool,
    },
}

const GELU: u32 = 1;
const TANH: u32 = 2;

impl Kernel {
    /// The shader composition, with subgroup reductions when `subgroups`.
    fn source(&self, subgroups: bool) -> (&'static str, &'static str) {
        use bertling_shaders as sh;
        match (self, subgroups) {
            (Kernel::Matmul { f16: true, .. }, _) => ("matmul_f16", sh::MATMUL_F16),
            (Kernel::Matmul { .. }, false) => ("matmul", sh::MATMUL),
            (Kernel::Matmul { .. }, true) => ("matmul_subgroup", sh::MATMUL_SUBGROUP),
            (Kernel::MatmulInt { packed: true, .. }, _) => ("matmul_int_packed", sh::MATMUL_INT_PACKED),
            (Kernel::MatmulInt { packed: false, .. }, _) => ("matmul_int_exact", sh::MATMUL_INT_EXACT),
            (Kernel::Embed { .. }, _) => ("embed", sh::EMBED),
            (Kernel::LayerNorm { .. }, false) => ("layernorm", sh::LAYERNORM),
            (Kernel::LayerNorm { .. }, true) => ("layernorm_subgroup", sh::LAYERNORM_SUBGROUP),
            (Kernel::Attention, false) => ("attention", sh::ATTENTION),
            (Kernel::Attention, true) => ("attention_subgroup", sh::ATTENTION_SUBGROUP),
            (Kernel::SepConv, _) => ("sepconv", sh::SEPCONV),
            (Kernel::Pool { .. }, false) => ("pool", sh::POOL),
            (Kernel::Pool { .. }, true) => ("pool_subgroup", sh::POOL_SUBGROUP),
        }
    }

    fn entry(&self) -> &'static str {
        match self {
            Kernel::Matmul { matvec: true, .. } => "matvec",
            _ => "main",
        }
    }

    fn constants(&self) -> Vec<(&'static str, f64)> {
        match *self {
            Kernel::Matmul { format, bits, group, epilogue, .. } => {
                vec![("WFORMAT", format as f64), ("BITS", bits as f64), ("GROUP", group as f64), ("EPILOGUE", epilogue as f64)]
            }
            Kernel::MatmulInt { bits, group, act_bits, epilogue, smooth, per_token, .. } => vec![
                ("WFORMAT", 2.0),
                ("BITS", bits as f64),
                ("GROUP", group as f64),
                ("ACT_BITS", act_bits as f64),
                ("EPILOGUE", epilogue as f64),
                ("SMOOTH", smooth as u32 as f64),
                ("PER_TOKEN", per_token as u32 as f64),
            ],
            Kernel::Embed { format, bits, group, field } => {
                vec![("WFORMAT", format as f64), ("BITS", bits as f64), ("GROUP", group as f64), ("FIELD", field as f64)]
            }
            Kernel::LayerNorm { residual } => vec![("RESIDUAL", residual as u32 as f64)],
            Kernel::Pool { cls, normalize } => vec![("MODE", (!cls) as u32 as f64), ("NORMALIZE", normalize as u32 as f64)],
            Kernel::Attention | Kernel::SepConv => vec![],
        }
    }

    /// Storage bindings (index, read-only); binding 0 is always the parameters.
    fn bindings(&self) -> &'static [(u32, bool)] {
        match self {
            Kernel::Matmul { .. } | Kernel::MatmulInt { .. } => &[(1, true), (2, true), (3, true), (4, true), (5, false)],
            Kernel::Embed { .. } => &[(1, true), (2, true), (3, true), (5, false)],
            Kernel::LayerNorm { .. } => &[(1, true), (2, true), (3, true), (5, false)],
            Kernel::Attention => &[(1, true), (2, true), (5, false)],
            Kernel::SepConv => &[(1, true), (2, true), (3, true), (4, true), (5, false)],
            Kernel::Pool { .. } => &[(1, true), (2, true), (5, false)],
        }
    }

    /// A short name for profiles.
    fn name(&self) -> String {
        match *self {
            Kernel::Matmul { matvec, f16, format, bits, group, epilogue } => {
                let w = match format {
                    0 => "f32".to_string(),
                    1 => "f16".to_string(),
                    _ => format!("w{bits}{}", if group > 0 { format!("g{group}") } else { String::new() }),
                };
                let e = ["", "+gelu", "+tanh"][epilogue as usize];
                format!(
                    "{}[{w}{e}]",
                    if matvec {
                        "matvec"
                    } else if f16 {
                        "matmul_f16"
                    } else {
                        "matmul"
                    }
                )
            }
            Kernel::MatmulInt { packed, bits, group, act_bits, epilogue, smooth, per_token } => {
                let g = if group > 0 { format!("g{group}") } else { String::new() };
                let e = ["", "+gelu", "+tanh"][epilogue as usize];
                let s = if smooth { ",smooth" } else { "" };
                let t = if per_token { ",token" } else { "" };
                format!("matmul_int[w{bits}{g}a{act_bits}{e}{}{s}{t}]", if packed { ",dot4" } else { ",exact" })
            }
            Kernel::Embed { .. } => "embed".into(),
            Kernel::LayerNorm { residual } => if residual { "add_layernorm" } else { "layernorm" }.into(),
            Kernel::Attention => "attention".into(),
            Kernel::SepConv => "depthwise_conv".into(),
            Kernel::Pool { .. } => "pool".into(),
        }
    }
}

/// Buffers a step binds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Buf {
    /// Per token (id, segment, sentence start, sentence length).
    Tokens,
    /// Per sentence (start, length).
    Sents,
    /// Token states, ping-pong pair (projections write the other one).
    X(u8),
    /// q/k/v, feed-forward hidden units, convolution output.
    Big,
    /// Attention context.
    Mid,
    /// Block output before the residual LayerNorm.
    Out,
    /// One vector per sentence.
    Pooled,
    /// The head's pooler output.
    Head,
    Logits,
    Dummy,
    /// An uploaded weight or vector.
    Static(usize),
}

/// How a step's rows are counted.
#[derive(Clone, Copy, Debug)]
enum Rows {
    Tokens,
    Sentences,
    /// Two rows per token: a `bi_conv` block's streams, each row half a token's state.
    Streams,
}

#[derive(Clone, Debug)]
enum Dims {
    Matmul { rows: Rows, n: usize, k: usize, wpr: usize, gpr: usize, act_step: f32 },
    Embed { width: usize, row0: usize, rows: usize, wpr: usize, gpr: usize },
    /// `streams`: two rows of `width` per token (a `bi_conv` block's streams).
    LayerNorm { width: usize, eps: f32, streams: bool },
    Attention { heads: usize, head_dim: usize },
    SepConv { width: usize, kernel: usize },
    Pool { width: usize },
}

#[derive(Clone, Debug)]
struct Dispatch {
    label: String,
    kernel: Kernel,
    binds: Vec<(u32, Buf)>,
    dims: Dims,
}

#[derive(Clone, Debug)]
enum Step {
    Dispatch(Dispatch),
    /// Zero a buffer.
    Clear(Buf),
    /// With hidden states requested: copy the current token states (`width` columns) out.
    Snapshot {
        buf: Buf,
        width: usize,
    },
}

/// Widths that size the activation buffers.
#[derive(Clone, Copy, Debug, Default)]
struct Widths {
    x: usize,
    big: usize,
    mid: usize,
}

/// Buffers sized for a number of tokens and sentences, with the bind groups that use them.
struct Workspace {
    tokens: usize,
    sents: usize,
    bufs: HashMap<Buf, wgpu::Buffer>,
    uniform: wgpu::Buffer,
    /// Read-back buffer for results, grown as needed.
    staging: Mutex<Option<wgpu::Buffer>>,
    /// Bind groups of `encoder`, `pool` and `head` steps, by step index (None for non-dispatches).
    groups: [Vec<Option<wgpu::BindGroup>>; 3],
}

impl GpuOptions {
    /// The options the adapter can honour.
    pub fn effective(&self, caps: &Capabilities) -> GpuOptions {
        GpuOptions {
            packed_dot: self.packed_dot && caps.packed_dot,
            subgroups: self.subgroups && caps.subgroups,
            f16: self.f16 && caps.shader_f16,
            max_table_chunk: Some(self.max_table_chunk.unwrap_or(caps.max_storage_binding).min(caps.max_storage_binding)),
        }
    }
}

/// What a forward pass read back.
pub struct GpuOutput {
    pub data: Vec<f32>,
    /// Hidden states: per snapshot, its width (row-major `tokens × width` each, in order).
    pub widths: Vec<usize>,
}

/// The encoder on a GPU.
pub struct GpuEncoder {
    ctx: Arc<GpuContext>,
    spec: ModelSpec,
    statics: Vec<wgpu::Buffer>,
    pipelines: HashMap<Kernel, wgpu::ComputePipeline>,
    layouts: HashMap<&'static [(u32, bool)], wgpu::BindGroupLayout>,
    encoder: Vec<Step>,
    pool: Vec<Step>,
    head: Vec<Step>,
    widths: Widths,
    out_width: usize,
    labels: usize,
    /// The kernel variants in use (what the adapter honours of the options asked for).
    options: GpuOptions,
    workspace: Mutex<Option<Workspace>>,
}

/// Uploads tensors and collects the steps of the forward pass.
struct Builder<'a> {
    ctx: &'a GpuContext,
    opts: GpuOptions,
    tensors: &'a std::collections::BTreeMap<String, TensorData>,
    eps: f32,
    statics: Vec<wgpu::Buffer>,
}

/// An uploaded matrix (or a chunk of rows of a table).
struct Uploaded {
    format: u32,
    bits: u32,
    group: u32,
    wpr: usize,
    gpr: usize,
    data: Buf,
    scales: Buf,
    act: Option<ActQuant>,
}

impl Builder<'_> {
    fn upload(&mut self, label: &str, bytes: &[u8]) -> Buf {
        let contents = if bytes.is_empty() { &[0u8; 4][..] } else { bytes };
        let buf = self.ctx.device.create_buffer_init(&wgpu::util::BufferInitDescriptor { label: Some(label), contents, usage: wgpu::BufferUsages::STORAGE });
        self.statics.push(buf);
        Buf::Static(self.statics.len() - 1)
    }

    fn vector(&mut self, name: &str) -> Result<Buf> {
        let t = self.tensors.get(name).ok_or_else(|| Error::tensor(name, "is missing"))?;
        Ok(self.upload(name, bytemuck::cast_slice(&t.to_f32())))
    }

    /// Uploads rows `r0..r1` of a matrix in its stored format.
    fn matrix(&mut self, name: &str, r0: usize, r1: usize) -> Result<Uploaded> {
        let t = self.tensors.get(name).ok_or_else(|| Error::tensor(name, "is missing"))?;
        let cols = t.shape()[1];
        Ok(match t {
            TensorData::F32 { data, .. } => {
                let data = self.upload(name, bytemuck::cast_slice(&data[r0 * cols..r1 * cols]));
                Uploaded { format: 0, bits: 32, group: 0, wpr: cols, gpr: 1, data, scales: Buf::Dummy, act: None }
            }
            TensorData::F16 { data, .. } => {
                let words: Vec<u32> = data[r0 * cols..r1 * cols]
                    .chunks(2)
                    .map(|p| p[0].to_bits() as u32 | (p.get(1).copied().unwrap_or(f16::ZERO).to_bits() as u32) << 16)
                    .collect();
                let data = self.upload(name, bytemuck::cast_slice(&words));
                Uploaded { format: 1, bits: 16, group: 0, wpr: cols, gpr: 1, data, scales: Buf::Dummy, act: None }
            }
            TensorData::Quant { matrix, act } => {
                let (wpr, gpr) = (matrix.words_per_row(), matrix.groups_per_row());
                let data = self.upload(&names::codes(name), bytemuck::cast_slice(&matrix.codes[r0 * wpr..r1 * wpr]));
                // Smoothing factors (whole matrices only) follow the steps: matmul_int.wgsl.
                let mut steps = matrix.scales[r0 * gpr..r1 * gpr].to_vec();
                if let Some(m) = act.as_ref().and_then(|a| a.smooth.as_ref()) {
                    if (r0, r1) != (0, matrix.rows) {
                        return Err(Error::tensor(name, "has activation smoothing but is split into chunks of rows"));
                    }
                    steps.extend_from_slice(m);
                }
                let scales = self.upload(&names::scales(name), bytemuck::cast_slice(&steps));
                Uploaded { format: 2, bits: matrix.bits as u32, group: matrix.group.unwrap_or(0) as u32, wpr, gpr, data, scales, act: act.clone() }
            }
        })
    }

    /// A linear layer `dst = epilogue(src · Wᵀ + b)`.
    fn linear(&mut self, prefix: &str, src: Buf, dst: Buf, rows: Rows, epilogue: u32) -> Result<Dispatch> {
        let name = names::weight(prefix);
        let shape = self.tensors.get(&name).ok_or_else(|| Error::tensor(&name, "is missing"))?.shape();
        let (n, k) = (shape[0], shape[1]);
        let w = self.matrix(&name, 0, n)?;
        let bias = self.vector(&names::bias(prefix))?;
        let (kernel, act_step) = match &w.act {
            Some(a) => {
                let (smooth, step) = (a.smooth.is_some(), a.tensor_step());
                let (packed, bits, group, act_bits) = (self.opts.packed_dot, w.bits, w.group, a.bits as u32);
                // Per-token steps come from the rows in the shader; the uniform's step is unused.
                (Kernel::MatmulInt { packed, bits, group, act_bits, epilogue, smooth, per_token: step.is_none() }, step.unwrap_or(1.0))
            }
            None => (Kernel::Matmul { matvec: false, f16: self.opts.f16, format: w.format, bits: w.bits, group: w.group, epilogue }, 1.0),
        };
        Ok(Dispatch {
            label: prefix.to_string(),
            kernel,
            binds: vec![(1, src), (2, w.data), (3, w.scales), (4, bias), (5, dst)],
            dims: Dims::Matmul { rows, n, k, wpr: w.wpr, gpr: w.gpr, act_step },
        })
    }

    fn layer_norm(&mut self, prefix: &str, x: Buf, residual: Option<Buf>, width: usize) -> Result<Dispatch> {
        self.norm_rows(prefix, x, residual, width, false)
    }

    /// [`Builder::layer_norm`] of rows of `width`, two per token with `streams`.
    fn norm_rows(&mut self, prefix: &str, x: Buf, residual: Option<Buf>, width: usize, streams: bool) -> Result<Dispatch> {
        let gamma = self.vector(&names::weight(prefix))?;
        let beta = self.vector(&names::bias(prefix))?;
        Ok(Dispatch {
            label: prefix.to_string(),
            kernel: Kernel::LayerNorm { residual: residual.is_some() },
            binds: vec![(1, residual.unwrap_or(Buf::Dummy)), (2, gamma), (3, beta), (5, x)],
            dims: Dims::LayerNorm { width, eps: self.eps, streams },
        })
    }
}

fn step(d: Dispatch) -> Step {
    Step::Dispatch(d)
}

impl GpuEncoder {
    /// Uploads a model and creates its pipelines.
    pub fn new(ctx: Arc<GpuContext>, model: &ModelData, options: &GpuOptions) -> Result<GpuEncoder> {
        model.validate()?;
        let spec = model.spec.clone();
        for b in &spec.blocks {
            if let BlockSpec::Attention { head_dim, .. } = *b {
                if head_dim > MAX_GPU_HEAD_DIM {
                    return Err(Error::Gpu(format!("the wgpu backend runs heads of up to {MAX_GPU_HEAD_DIM} dimensions; this model has {head_dim}")));
                }
            }
        }
        if spec.max_seq_len > MAX_GPU_SEQ {
            return Err(Error::Gpu(format!("the wgpu backend runs sentences of up to {MAX_GPU_SEQ} tokens; this model allows {}", spec.max_seq_len)));
        }
        let c = ctx.clone();
        let opts = options.effective(&ctx.caps);
        ctx.scoped("uploading the model", move || GpuEncoder::build(c, model, spec, opts))?
    }

    fn build(ctx: Arc<GpuContext>, model: &ModelData, spec: ModelSpec, opts: GpuOptions) -> Result<GpuEncoder> {
        let mut b = Builder { ctx: &ctx, opts, tensors: &model.tensors, eps: spec.layer_norm_eps, statics: Vec::new() };
        let mut encoder = vec![Step::Clear(Buf::X(0))];
        let e = &spec.embeddings;
        let mut widths = Widths { x: e.width, big: e.width, mid: e.width };
        // Embedding tables, split into chunks of rows that fit one storage binding.
        for (field, name) in [(0u32, names::WORD_EMBEDDINGS), (1, names::POSITION_EMBEDDINGS), (2, names::TOKEN_TYPE_EMBEDDINGS)] {
            let t = &model.tensors[name];
            let (rows, cols) = (t.shape()[0], t.shape()[1]);
            let row_bytes = (t.stored_bytes() / rows).max(1) as u64;
            let limit = opts.max_table_chunk.unwrap_or(ctx.caps.max_storage_binding);
            let per_chunk = ((limit / row_bytes) as usize).clamp(1, rows);
            for r0 in (0..rows).step_by(per_chunk) {
                let r1 = (r0 + per_chunk).min(rows);
                let w = b.matrix(name, r0, r1)?;
                encoder.push(step(Dispatch {
                    label: name.into(),
                    kernel: Kernel::Embed { format: w.format, bits: w.bits, group: w.group, field },
                    binds: vec![(1, Buf::Tokens), (2, w.data), (3, w.scales), (5, Buf::X(0))],
                    dims: Dims::Embed { width: cols, row0: r0, rows: r1 - r0, wpr: w.wpr, gpr: w.gpr },
                }));
            }
        }
        encoder.push(step(b.layer_norm(names::EMBEDDING_NORM, Buf::X(0), None, e.width)?));
        encoder.push(Step::Snapshot { buf: Buf::X(0), width: e.width });
        let mut x = 0u8;
        for (i, block) in spec.blocks.iter().enumerate() {
            let n = names::block(i);
            let xb = Buf::X(x);
            match *block {
                BlockSpec::Attention { width, heads, head_dim } => {
                    let inner = heads * head_dim;
                    widths.big = widths.big.max(3 * inner);
                    widths.mid = widths.mid.max(inner);
                    encoder.push(step(b.linear(&n.qkv(), xb, Buf::Big, Rows::Tokens, 0)?));
                    encoder.push(step(Dispatch {
                        label: format!("{}.attn", n.prefix()),
                        kernel: Kernel::Attention,
                        binds: vec![(1, Buf::Big), (2, Buf::Tokens), (5, Buf::Mid)],
                        dims: Dims::Attention { heads, head_dim },
                    }));
                    encoder.push(step(b.linear(&n.attn_out(), Buf::Mid, Buf::Out, Rows::Tokens, 0)?));
                    encoder.push(step(b.layer_norm(&n.norm(), xb, Some(Buf::Out), width)?));
                }
                BlockSpec::FeedForward { width, inner } => {
                    widths.big = widths.big.max(inner);
                    encoder.push(step(b.linear(&n.ffn_in(), xb, Buf::Big, Rows::Tokens, GELU)?));
                    encoder.push(step(b.linear(&n.ffn_out(), Buf::Big, Buf::Out, Rows::Tokens, 0)?));
                    encoder.push(step(b.layer_norm(&n.norm(), xb, Some(Buf::Out), width)?));
                }
                BlockSpec::SepConv { width, kernel } => {
                    widths.big = widths.big.max(width);
                    let taps = b.vector(&names::weight(&n.depthwise()))?;
                    let bias = b.vector(&names::bias(&n.depthwise()))?;
                    encoder.push(step(Dispatch {
                        label: n.depthwise(),
                        kernel: Kernel::SepConv,
                        binds: vec![(1, xb), (2, taps), (3, Buf::Tokens), (4, bias), (5, Buf::Big)],
                        dims: Dims::SepConv { width, kernel },
                    }));
                    encoder.push(step(b.linear(&n.pointwise(), Buf::Big, Buf::Out, Rows::Tokens, 0)?));
                    encoder.push(step(b.layer_norm(&n.norm(), xb, Some(Buf::Out), width)?));
                }
                BlockSpec::BiConv { width, kernel } => {
                    // The centred depthwise kernel with zero taps on each stream's blind side;
                    // the shared map and norm on two rows per token (the streams never mix).
                    widths.big = widths.big.max(width);
                    let name = names::weight(&n.depthwise());
                    let t = b.tensors.get(&name).ok_or_else(|| Error::tensor(&name, "is missing"))?;
                    let taps = crate::spec::bi_conv_centred_taps(&t.to_f32(), width, kernel);
                    let taps = b.upload(&name, bytemuck::cast_slice(&taps));
                    let bias = b.vector(&names::bias(&n.depthwise()))?;
                    encoder.push(step(Dispatch {
                        label: n.depthwise(),
                        kernel: Kernel::SepConv,
                        binds: vec![(1, xb), (2, taps), (3, Buf::Tokens), (4, bias), (5, Buf::Big)],
                        dims: Dims::SepConv { width, kernel: 2 * kernel - 1 },
                    }));
                    encoder.push(step(b.linear(&n.pointwise(), Buf::Big, Buf::Out, Rows::Streams, 0)?));
                    encoder.push(step(b.norm_rows(&n.norm(), xb, Some(Buf::Out), width / 2, true)?));
                }
                BlockSpec::Identity { .. } => {}
                BlockSpec::Projection { output, .. } => {
                    widths.x = widths.x.max(output);
                    encoder.push(step(b.linear(&n.proj(), xb, Buf::X(1 - x), Rows::Tokens, 0)?));
                    x = 1 - x;
                }
            }
            encoder.push(Step::Snapshot { buf: Buf::X(x), width: block.output_width() });
        }
        let out_width = spec.output_width();
        let xb = Buf::X(x);
        let pooling = &spec.pooling;
        let pool = vec![step(Dispatch {
            label: "pool".into(),
            kernel: Kernel::Pool { cls: pooling.mode == PoolingMode::Cls, normalize: pooling.normalize },
            binds: vec![(1, xb), (2, Buf::Sents), (5, Buf::Pooled)],
            dims: Dims::Pool { width: out_width },
        })];
        let mut head = Vec::new();
        let mut labels = 0;
        if let Some(h) = spec.head.as_ref().filter(|h| h.kind == crate::spec::HeadKind::Sequence) {
            labels = h.labels.len();
            head.push(step(Dispatch {
                label: "head.cls".into(),
                kernel: Kernel::Pool { cls: true, normalize: false },
                binds: vec![(1, xb), (2, Buf::Sents), (5, Buf::Pooled)],
                dims: Dims::Pool { width: out_width },
            }));
            let mut src = Buf::Pooled;
            if h.pooler {
                head.push(step(b.linear(names::POOLER, Buf::Pooled, Buf::Head, Rows::Sentences, TANH)?));
                src = Buf::Head;
            }
            head.push(step(b.linear(names::CLASSIFIER, src, Buf::Logits, Rows::Sentences, 0)?));
        }
        let statics = std::mem::take(&mut b.statics);
        let mut enc = GpuEncoder {
            ctx,
            spec,
            statics,
            pipelines: HashMap::new(),
            layouts: HashMap::new(),
            encoder,
            pool,
            head,
            widths,
            out_width,
            labels,
            options: opts,
            workspace: Mutex::new(None),
        };
        enc.create_pipelines()?;
        Ok(enc)
    }

    fn create_pipelines(&mut self) -> Result<()> {
        let mut kernels: Vec<Kernel> = Vec::new();
        for s in self.encoder.iter().chain(&self.pool).chain(&self.head) {
            if let Step::Dispatch(d) = s {
                kernels.push(d.kernel);
                if let Kernel::Matmul { format, bits, group, epilogue, .. } = d.kernel {
                    kernels.push(Kernel::Matmul { matvec: true, f16: false, format, bits, group, epilogue });
                }
            }
        }
        let device = &self.ctx.device;
        let mut modules: HashMap<&'static str, wgpu::ShaderModule> = HashMap::new();
        for k in kernels {
            if self.pipelines.contains_key(&k) {
                continue;
            }
            let (name, source) = k.source(self.options.subgroups);
            let module = modules.entry(name).or_insert_with(|| {
                device.create_shader_module(wgpu::ShaderModuleDescriptor { label: Some(name), source: wgpu::ShaderSource::Wgsl(source.into()) })
            });
            let layout = self.layouts.entry(k.bindings()).or_insert_with(|| bind_group_layout(device, k.bindings()));
            let pl =
                device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor { label: Some(name), bind_group_layouts: &[Some(&*layout)], immediate_size: 0 });
            let constants = k.constants();
            let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(name),
                layout: Some(&pl),
                module,
                entry_point: Some(k.entry()),
                compilation_options: wgpu::PipelineCompilationOptions { constants: &constants, zero_initialize_workgroup_memory: false },
                cache: None,
            });
            self.pipelines.insert(k, pipeline);
        }
        Ok(())
    }

    /// One linear layer `y = x·Wᵀ + b` alone on the GPU, for kernel tests and benchmarks:
    /// `weight` is `[n, k]` in any storage (with activation quantization if it has it).
    pub fn linear_only(ctx: Arc<GpuContext>, weight: &TensorData, bias: &[f32], options: &GpuOptions) -> Result<GpuEncoder> {
        let shape = weight.shape();
        let (n, k) = (shape[0], shape[1]);
        if shape.len() != 2 || bias.len() != n {
            return Err(Error::InvalidArgument(format!("weight {shape:?} and {} biases do not make a linear layer", bias.len())));
        }
        let tensors = std::collections::BTreeMap::from([
            ("op.weight".to_string(), weight.clone()),
            ("op.bias".to_string(), TensorData::F32 { shape: vec![n], data: bias.to_vec() }),
        ]);
        let opts = options.effective(&ctx.caps);
        let c = ctx.clone();
        ctx.scoped("uploading a linear layer", move || -> Result<GpuEncoder> {
            let mut b = Builder { ctx: &c, opts, tensors: &tensors, eps: 0.0, statics: Vec::new() };
            let op = b.linear("op", Buf::X(0), Buf::Out, Rows::Tokens, 0)?;
            let statics = std::mem::take(&mut b.statics);
            let spec = ModelSpec {
                format_version: crate::spec::FORMAT_VERSION,
                embeddings: crate::spec::EmbeddingSpec { vocab_size: 1, max_positions: 2, type_vocab_size: 1, width: k },
                blocks: vec![BlockSpec::Projection { input: k, output: n }],
                layer_norm_eps: 1e-12,
                max_seq_len: 2,
                pooling: crate::spec::PoolingSpec { mode: PoolingMode::Cls, normalize: false },
                head: None,
                quantized: Default::default(),
                provenance: Default::default(),
            };
            let mut enc = GpuEncoder {
                ctx: c.clone(),
                spec,
                statics,
                pipelines: HashMap::new(),
                layouts: HashMap::new(),
                encoder: vec![step(op)],
                pool: Vec::new(),
                head: Vec::new(),
                widths: Widths { x: k.max(n), big: 1, mid: 1 },
                out_width: n,
                labels: 0,
                options: opts,
                workspace: Mutex::new(None),
            };
            enc.create_pipelines()?;
            Ok(enc)
        })?
    }

    /// Runs a [`GpuEncoder::linear_only`] layer on `m` rows of `x`.
    pub fn run_linear(&self, x: &[f32], m: usize) -> Result<Vec<f32>> {
        let Some(Step::Dispatch(d)) = self.encoder.first() else {
            return Err(Error::InvalidArgument("not a linear-only encoder".into()));
        };
        let Dims::Matmul { n, k, .. } = d.dims else {
            return Err(Error::InvalidArgument("not a linear-only encoder".into()));
        };
        if x.len() != m * k || m == 0 || m > self.max_tokens() {
            return Err(Error::InvalidArgument(format!("{} inputs for {m} rows of {k}", x.len())));
        }
        let ctx = &*self.ctx;
        let mut slot = self.workspace.lock().unwrap_or_else(|p| p.into_inner());
        self.ensure_workspace(m, 1, &mut slot)?;
        let ws = slot.as_ref().ok_or_else(|| Error::Gpu("no workspace".into()))?;
        ctx.queue.write_buffer(&ws.bufs[&Buf::X(0)], 0, bytemuck::cast_slice(x));
        let (p, wg) = Self::params(d, m, 1);
        ctx.queue.write_buffer(&ws.uniform, 0, bytemuck::cast_slice(&p));
        let mut enc = ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("linear") });
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("linear"), timestamp_writes: None });
            pass.set_pipeline(&self.pipelines[&Self::kernel_for(d, m)]);
            let group = ws.groups[0][0].as_ref().ok_or_else(|| Error::Gpu("missing bind group".into()))?;
            pass.set_bind_group(0, group, &[0]);
            pass.dispatch_workgroups(wg[0], wg[1], wg[2]);
        }
        let bytes = (m * n * 4) as u64;
        let raw = self.read_back(ws, enc, &ws.bufs[&Buf::Out], bytes)?;
        Ok(bytemuck::cast_slice::<u8, f32>(&raw).to_vec())
    }

    /// The device this model runs on.
    pub fn context(&self) -> &Arc<GpuContext> {
        &self.ctx
    }

    /// The kernel variants in use.
    pub fn options(&self) -> GpuOptions {
        self.options
    }

    /// Most tokens one pass takes: every activation buffer must fit one storage binding and
    /// every dispatch dimension the device's limit.
    pub fn max_tokens(&self) -> usize {
        let widest = self.widths.x.max(self.widths.big).max(self.widths.mid).max(1) as u64;
        let by_binding = (self.ctx.caps.max_storage_binding / (4 * widest)) as usize;
        // A bi_conv block dispatches two rows per token.
        let per_token = if self.spec.blocks.iter().any(|b| matches!(b, BlockSpec::BiConv { .. })) { 2 } else { 1 };
        by_binding.min(self.ctx.device.limits().max_compute_workgroups_per_dimension as usize / per_token).min(1 << 16)
    }

    fn buffer_len(&self, buf: Buf, tokens: usize, sents: usize) -> u64 {
        let floats = match buf {
            Buf::Tokens => tokens * 4,
            Buf::Sents => sents * 2,
            Buf::X(_) | Buf::Out => tokens * self.widths.x,
            Buf::Big => tokens * self.widths.big,
            Buf::Mid => tokens * self.widths.mid,
            Buf::Pooled | Buf::Head => sents * self.out_width,
            Buf::Logits => sents * self.labels.max(1),
            Buf::Dummy => 4,
            Buf::Static(_) => 0,
        };
        (floats.max(4) * 4) as u64
    }

    /// Makes `slot` hold a workspace for `tokens` and `sents`, growing it if needed. A failed
    /// allocation leaves the previous workspace in place.
    fn ensure_workspace(&self, tokens: usize, sents: usize, slot: &mut Option<Workspace>) -> Result<()> {
        if let Some(ws) = slot {
            if ws.tokens >= tokens && ws.sents >= sents {
                return Ok(());
            }
        }
        let ws = self.ctx.scoped("allocating GPU buffers", || self.new_workspace(tokens, sents))?;
        *slot = Some(ws);
        Ok(())
    }

    fn new_workspace(&self, tokens: usize, sents: usize) -> Workspace {
        // Powers of two so that buffers grow rarely, but never past one storage binding.
        let tokens = tokens.next_power_of_two().max(64).min(self.max_tokens()).max(tokens);
        let sents = sents.next_power_of_two().max(8);
        let device = &self.ctx.device;
        let mut bufs = HashMap::new();
        for buf in [Buf::Tokens, Buf::Sents, Buf::X(0), Buf::X(1), Buf::Big, Buf::Mid, Buf::Out, Buf::Pooled, Buf::Head, Buf::Logits, Buf::Dummy] {
            bufs.insert(
                buf,
                device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("activations"),
                    size: self.buffer_len(buf, tokens, sents),
                    usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC,
                    mapped_at_creation: false,
                }),
            );
        }
        let slots = self.encoder.len() + self.pool.len() + self.head.len();
        let uniform = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("params"),
            size: slots.max(1) as u64 * SLOT,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let groups = [&self.encoder, &self.pool, &self.head].map(|steps| {
            steps
                .iter()
                .map(|s| match s {
                    Step::Dispatch(d) => Some(self.bind_group(d, &bufs, &uniform)),
                    _ => None,
                })
                .collect()
        });
        Workspace { tokens, sents, bufs, uniform, staging: Mutex::new(None), groups }
    }

    fn bind_group(&self, d: &Dispatch, bufs: &HashMap<Buf, wgpu::Buffer>, uniform: &wgpu::Buffer) -> wgpu::BindGroup {
        let get = |b: Buf| match b {
            Buf::Static(i) => &self.statics[i],
            other => &bufs[&other],
        };
        let mut entries = vec![wgpu::BindGroupEntry {
            binding: 0,
            resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding { buffer: uniform, offset: 0, size: NonZeroU64::new(PARAM_BYTES) }),
        }];
        for &(binding, buf) in &d.binds {
            entries.push(wgpu::BindGroupEntry { binding, resource: get(buf).as_entire_binding() });
        }
        self.ctx.device.create_bind_group(&wgpu::BindGroupDescriptor { label: Some(&d.label), layout: &self.layouts[d.kernel.bindings()], entries: &entries })
    }

    /// The kernel a dispatch runs for `m` rows (matrix-vector form for a few rows).
    fn kernel_for(d: &Dispatch, m: usize) -> Kernel {
        match d.kernel {
            Kernel::Matmul { format, bits, group, epilogue, .. } if m <= 4 => Kernel::Matmul { matvec: true, f16: false, format, bits, group, epilogue },
            k => k,
        }
    }

    /// Parameters and workgroup counts of a dispatch for `t` tokens and `s` sentences.
    fn params(d: &Dispatch, t: usize, s: usize) -> ([u32; 8], [u32; 3]) {
        let u = |v: usize| v as u32;
        match d.dims {
            Dims::Matmul { rows, n, k, wpr, gpr, act_step } => {
                let m = match rows {
                    Rows::Tokens => t,
                    Rows::Sentences => s,
                    Rows::Streams => 2 * t,
                };
                let matvec = m <= 4 && matches!(d.kernel, Kernel::Matmul { .. });
                let wg = if matvec { [u(n.div_ceil(4)), u(m), 1] } else { [u(n.div_ceil(32)), u(m.div_ceil(32)), 1] };
                ([u(m), u(n), u(k), u(wpr), u(gpr), act_step.to_bits(), (1.0 / act_step).to_bits(), 0], wg)
            }
            Dims::Embed { width, row0, rows, wpr, gpr } => ([u(t), u(width), u(row0), u(rows), u(wpr), u(gpr), 0, 0], [u(t), 1, 1]),
            Dims::LayerNorm { width, eps, streams } => {
                let rows = if streams { 2 * t } else { t };
                ([u(rows), u(width), eps.to_bits(), 0, 0, 0, 0, 0], [u(rows), 1, 1])
            }
            Dims::Attention { heads, head_dim } => {
                let scale = 1.0 / (head_dim as f32).sqrt();
                ([u(t), u(heads), u(head_dim), scale.to_bits(), 0, 0, 0, 0], [u(t), u(heads), 1])
            }
            Dims::SepConv { width, kernel } => ([u(t), u(width), u(kernel), 0, 0, 0, 0, 0], [u(t), 1, 1]),
            Dims::Pool { width } => ([u(s), u(width), 0, 0, 0, 0, 0, 0], [u(s), 1, 1]),
        }
    }

    /// Runs the encoder on inputs that were checked against the model.
    pub fn forward(&self, inputs: &[Input], want: Want) -> Result<GpuOutput> {
        self.run(inputs, want, None)
    }

    /// Runs one pass with every dispatch in its own timed compute pass; returns the labels
    /// and times in milliseconds (GPU timestamps where the device has them, otherwise the
    /// wall clock around a submission of each dispatch alone).
    pub fn profile(&self, inputs: &[Input]) -> Result<Vec<(String, String, f64)>> {
        let mut times = Vec::new();
        self.run(inputs, Want::Pooled, Some(&mut times))?;
        Ok(times)
    }

    fn run(&self, inputs: &[Input], want: Want, mut profile: Option<&mut Vec<(String, String, f64)>>) -> Result<GpuOutput> {
        let t: usize = inputs.iter().map(|i| i.ids.len()).sum();
        let s = inputs.len();
        if t == 0 || s == 0 {
            return Ok(GpuOutput { data: Vec::new(), widths: Vec::new() });
        }
        if t > self.max_tokens() {
            return Err(Error::InvalidArgument(format!("{t} tokens exceed the {} one GPU pass takes", self.max_tokens())));
        }
        let ctx = &*self.ctx;
        let mut slot = self.workspace.lock().unwrap_or_else(|p| p.into_inner());
        self.ensure_workspace(t, s, &mut slot)?;
        let ws = slot.as_ref().ok_or_else(|| Error::Gpu("no workspace".into()))?;

        // Token and sentence tables.
        let mut tokens = Vec::with_capacity(t * 4);
        let mut sents = Vec::with_capacity(s * 2);
        let mut start = 0u32;
        for inp in inputs {
            let len = inp.ids.len() as u32;
            for (id, ty) in inp.ids.iter().zip(&inp.type_ids) {
                tokens.extend_from_slice(&[*id, *ty, start, len]);
            }
            sents.extend_from_slice(&[start, len]);
            start += len;
        }
        ctx.queue.write_buffer(&ws.bufs[&Buf::Tokens], 0, bytemuck::cast_slice(&tokens));
        ctx.queue.write_buffer(&ws.bufs[&Buf::Sents], 0, bytemuck::cast_slice(&sents));

        let tail: (&[Step], usize) = match want {
            Want::Pooled => (&self.pool, 1),
            Want::Logits => (&self.head, 2),
            Want::Tokens | Want::Hidden => (&[], 0),
        };
        if want == Want::Logits && self.head.is_empty() {
            return Err(Error::NoClassificationHead);
        }
        let lists: [(&[Step], usize); 2] = [(&self.encoder, 0), tail];
        let mut params = vec![0u8; ((self.encoder.len() + self.pool.len() + self.head.len()).max(1) as u64 * SLOT) as usize];
        let slot_base = [0, self.encoder.len(), self.encoder.len() + self.pool.len()];
        for (steps, list) in [(&self.encoder[..], 0usize), (&self.pool[..], 1), (&self.head[..], 2)] {
            for (i, st) in steps.iter().enumerate() {
                if let Step::Dispatch(d) = st {
                    let (p, _) = Self::params(d, t, s);
                    let off = (slot_base[list] + i) * SLOT as usize;
                    params[off..off + 32].copy_from_slice(bytemuck::cast_slice(&p));
                }
            }
        }
        ctx.queue.write_buffer(&ws.uniform, 0, &params);

        // Hidden states, when asked for, are copied here block by block.
        let snapshot_floats: usize = self.encoder.iter().map(|st| if let Step::Snapshot { width, .. } = st { t * width } else { 0 }).sum();
        let hidden = (want == Want::Hidden).then(|| {
            ctx.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("hidden"),
                size: (snapshot_floats.max(1) * 4) as u64,
                usage: wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            })
        });
        let mut widths = Vec::new();
        let mut hidden_off = 0u64;
        let x_final = self.encoder.iter().rev().find_map(|st| if let Step::Snapshot { buf, .. } = st { Some(*buf) } else { None }).unwrap_or(Buf::X(0));

        let timer = profile.is_some();
        let query = (timer && ctx.caps.timestamps)
            .then(|| ctx.device.create_query_set(&wgpu::QuerySetDescriptor { label: Some("profile"), ty: wgpu::QueryType::Timestamp, count: 2 }));
        let query_buf = query.as_ref().map(|_| {
            ctx.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("timestamps"),
                size: 16,
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            })
        });

        let mut enc = ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("forward") });
        for (steps, list) in lists {
            let mut i = 0;
            while i < steps.len() {
                match &steps[i] {
                    Step::Clear(buf) => {
                        enc.clear_buffer(&ws.bufs[buf], 0, None);
                        i += 1;
                    }
                    Step::Snapshot { buf, width } => {
                        if let Some(h) = &hidden {
                            let bytes = (t * width * 4) as u64;
                            enc.copy_buffer_to_buffer(&ws.bufs[buf], 0, h, hidden_off, bytes);
                            hidden_off += bytes;
                            widths.push(*width);
                        }
                        i += 1;
                    }
                    Step::Dispatch(_) => {
                        // A run of dispatches in one compute pass (one pass each when profiling).
                        let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                            label: Some("encoder"),
                            timestamp_writes: query.as_ref().map(|q| wgpu::ComputePassTimestampWrites {
                                query_set: q,
                                beginning_of_pass_write_index: Some(0),
                                end_of_pass_write_index: Some(1),
                            }),
                        });
                        while let Some(Step::Dispatch(d)) = steps.get(i) {
                            let (p, wg) = Self::params(d, t, s);
                            let m = p[0] as usize;
                            let kernel = Self::kernel_for(d, m);
                            pass.set_pipeline(&self.pipelines[&kernel]);
                            let group = ws.groups[list][i].as_ref().ok_or_else(|| Error::Gpu("missing bind group".into()))?;
                            pass.set_bind_group(0, group, &[((slot_base[list] + i) as u64 * SLOT) as u32]);
                            pass.dispatch_workgroups(wg[0], wg[1], wg[2]);
                            i += 1;
                            if timer {
                                break;
                            }
                        }
                        drop(pass);
                        if let Some(times) = profile.as_deref_mut() {
                            // Submit this dispatch alone and time it.
                            let Step::Dispatch(d) = &steps[i - 1] else { unreachable!("a dispatch was just recorded") };
                            if let (Some(q), Some(qb)) = (&query, &query_buf) {
                                enc.resolve_query_set(q, 0..2, qb, 0);
                            }
                            let started = Instant::now();
                            ctx.queue.submit([enc.finish()]);
                            ctx.wait()?;
                            let wall = started.elapsed().as_secs_f64() * 1e3;
                            let ms = match &query_buf {
                                Some(qb) => {
                                    let raw = ctx.read(qb, 16)?;
                                    let ts: &[u64] = bytemuck::cast_slice(&raw);
                                    ts[1].saturating_sub(ts[0]) as f64 * ctx.queue.get_timestamp_period() as f64 / 1e6
                                }
                                None => wall,
                            };
                            let (p, _) = Self::params(d, t, s);
                            times.push((d.label.clone(), Self::kernel_for(d, p[0] as usize).name(), ms));
                            enc = ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("forward") });
                        }
                    }
                }
            }
        }

        // Read the result back in the same submission.
        let (src, floats): (&wgpu::Buffer, usize) = match want {
            Want::Pooled => (&ws.bufs[&Buf::Pooled], s * self.out_width),
            Want::Logits => (&ws.bufs[&Buf::Logits], s * self.labels),
            Want::Tokens => (&ws.bufs[&x_final], t * self.out_width),
            Want::Hidden => (hidden.as_ref().ok_or_else(|| Error::Gpu("no hidden buffer".into()))?, snapshot_floats),
        };
        let raw = self.read_back(ws, enc, src, (floats * 4) as u64)?;
        let data: Vec<f32> = bytemuck::cast_slice::<u8, f32>(&raw).to_vec();
        if let Some(bad) = data.iter().find(|v| !v.is_finite()) {
            return Err(Error::Gpu(format!("the GPU produced a non-finite value ({bad}); the driver may be faulty")));
        }
        Ok(GpuOutput { data, widths })
    }

    /// Appends a copy of `bytes` of `src` into the workspace's read-back buffer to `enc`,
    /// submits, and returns the bytes.
    fn read_back(&self, ws: &Workspace, mut enc: wgpu::CommandEncoder, src: &wgpu::Buffer, bytes: u64) -> Result<Vec<u8>> {
        let ctx = &*self.ctx;
        let mut staging = ws.staging.lock().unwrap_or_else(|p| p.into_inner());
        if staging.as_ref().is_none_or(|b| b.size() < bytes.max(4)) {
            *staging = Some(ctx.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("result"),
                size: bytes.max(4).next_power_of_two(),
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }));
        }
        let buf = staging.as_ref().ok_or_else(|| Error::Gpu("no read-back buffer".into()))?;
        enc.copy_buffer_to_buffer(src, 0, buf, 0, bytes);
        ctx.queue.submit([enc.finish()]);
        ctx.map_read(buf, bytes)
    }

    /// Model description.
    pub fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    /// Bytes of weights on the device.
    pub fn weight_bytes(&self) -> u64 {
        self.statics.iter().map(|b| b.size()).sum()
    }
}

fn bind_group_layout(device: &wgpu::Device, bindings: &[(u32, bool)]) -> wgpu::BindGroupLayout {
    let mut entries = vec![wgpu::BindGroupLayoutEntry {
        binding: 0,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer { ty: wgpu::BufferBindingType::Uniform, has_dynamic_offset: true, min_binding_size: NonZeroU64::new(PARAM_BYTES) },
        count: None,
    }];
    for &(binding, read_only) in bindings {
        entries.push(wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer { ty: wgpu::BufferBindingType::Storage { read_only }, has_dynamic_offset: false, min_binding_size: None },
            count: None,
        });
    }
    device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor { label: None, entries: &entries })
}
