//! The model description stored in a package (FORMAT.md): embeddings, a list of residual blocks
//! of heterogeneous kinds and widths, pooling, an optional task head, and provenance.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The package format version this build writes. Version 2 adds the checksum, version 3 stores
/// the tokenizer deflated, version 4 adds per-token activation steps (FORMAT.md).
pub const FORMAT_VERSION: u32 = 4;
/// The oldest package format version this build still reads (version 1: no checksum).
pub const OLDEST_FORMAT_VERSION: u32 = 1;

/// Token, position and segment embeddings, summed and layer-normalised.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingSpec {
    pub vocab_size: usize,
    pub max_positions: usize,
    pub type_vocab_size: usize,
    pub width: usize,
}

/// One residual block. A standard BERT layer is an `attention` block followed by a
/// `feed_forward` block.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BlockSpec {
    /// `x <- LN(x + O·MHA(x))`, `heads` heads of `head_dim` each (heads·head_dim may differ from width).
    Attention { width: usize, heads: usize, head_dim: usize },
    /// `x <- LN(x + W2·GELU(W1·x))` with `inner` hidden units.
    FeedForward { width: usize, inner: usize },
    /// `x <- LN(x + P·GELU(DepthwiseConv_k(x)))`: a depthwise convolution along the sequence
    /// (kernel 3, 5 or 7, zero padding, centred), GELU, then a pointwise `width × width` linear.
    SepConv { width: usize, kernel: usize },
    /// `x <- x`.
    Identity { width: usize },
    /// `x <- P·x`, a linear map between blocks of different width (no residual, no norm).
    Projection { input: usize, output: usize },
}

impl BlockSpec {
    /// Width of the block's input.
    pub fn input_width(&self) -> usize {
        match *self {
            BlockSpec::Attention { width, .. } | BlockSpec::FeedForward { width, .. } | BlockSpec::SepConv { width, .. } | BlockSpec::Identity { width } => {
                width
            }
            BlockSpec::Projection { input, .. } => input,
        }
    }

    /// Width of the block's output.
    pub fn output_width(&self) -> usize {
        match *self {
            BlockSpec::Projection { output, .. } => output,
            _ => self.input_width(),
        }
    }

    /// Short name of the kind.
    pub fn kind(&self) -> &'static str {
        match self {
            BlockSpec::Attention { .. } => "attention",
            BlockSpec::FeedForward { .. } => "feed_forward",
            BlockSpec::SepConv { .. } => "sep_conv",
            BlockSpec::Identity { .. } => "identity",
            BlockSpec::Projection { .. } => "projection",
        }
    }
}

/// How token states become one sentence vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PoolingMode {
    /// The first token's final state.
    Cls,
    /// The mean of the final states of the real (unmasked) tokens.
    Mean,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PoolingSpec {
    pub mode: PoolingMode,
    /// L2-normalise the pooled vector.
    pub normalize: bool,
}

/// A sequence-classification head as in `BertForSequenceClassification`:
/// `logits = C·tanh(P·h_CLS + p) + c` (the pooler is optional), `probs = softmax(logits)`.
/// With one label the head is a regressor and its single logit is the score.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HeadSpec {
    pub pooler: bool,
    pub labels: Vec<String>,
}

/// Weight quantization of one matrix (FORMAT.md).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QuantSpec {
    pub bits: u8,
    /// Columns per step; absent = one step per row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<usize>,
    /// Bits of the activations entering this matrix (4 or 8), quantized with the per-tensor
    /// step stored as `<name>.act_step` (or per token, below); absent = float activations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act_bits: Option<u8>,
    /// Each row (token) of the activations gets its own step, `max_j |x_j · m_j| / Q_P`,
    /// computed at run time: no `<name>.act_step` tensor (format version 4); needs `act_bits`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub act_per_token: bool,
    /// The activations are multiplied by per-input-channel factors `<name>.act_smooth`
    /// before quantization (and the stored weights divided by them); needs `act_bits`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub act_smooth: bool,
}

/// Where a package came from and how good it is.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// SHA-256 of the teacher's weights file, hex.
    #[serde(default)]
    pub teacher_sha256: String,
    /// Teacher name or path as given.
    #[serde(default)]
    pub source: String,
    /// The steps that made this package (free-form JSON, e.g. `{"method":"rtn","bits":4}`).
    #[serde(default)]
    pub recipe: serde_json::Value,
    /// Measured quality (free-form JSON).
    #[serde(default)]
    pub metrics: serde_json::Value,
    /// The bertling version that wrote the package.
    #[serde(default)]
    pub created_by: String,
}

/// Everything about a model except its tensors.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelSpec {
    pub format_version: u32,
    pub embeddings: EmbeddingSpec,
    pub blocks: Vec<BlockSpec>,
    pub layer_norm_eps: f32,
    /// Inputs are truncated to this many tokens, special tokens included.
    pub max_seq_len: usize,
    pub pooling: PoolingSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<HeadSpec>,
    /// Quantized matrices by tensor name; any matrix not listed is stored as floats.
    #[serde(default)]
    pub quantized: std::collections::BTreeMap<String, QuantSpec>,
    #[serde(default)]
    pub provenance: Provenance,
}

/// The role of a tensor, which decides what may be quantized.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TensorRole {
    /// A linear layer's weight matrix `[out, in]`.
    Matrix,
    /// An embedding table `[rows, width]`.
    Embedding,
    /// Biases, norms, convolution taps, head weights: always float.
    Other,
}

/// A tensor the architecture requires.
#[derive(Clone, Debug, PartialEq)]
pub struct ExpectedTensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub role: TensorRole,
}

impl ModelSpec {
    /// Width of the final hidden states (and of the sentence embedding).
    pub fn output_width(&self) -> usize {
        self.blocks.last().map(|b| b.output_width()).unwrap_or(self.embeddings.width)
    }

    /// Checks the architecture for consistency (widths chain, sizes non-zero, kernels odd).
    pub fn validate(&self) -> Result<()> {
        if !(OLDEST_FORMAT_VERSION..=FORMAT_VERSION).contains(&self.format_version) {
            return Err(Error::UnsupportedVersion { found: self.format_version.to_string(), supported: FORMAT_VERSION });
        }
        let e = &self.embeddings;
        if e.vocab_size == 0 || e.max_positions == 0 || e.type_vocab_size == 0 || e.width == 0 {
            return Err(Error::Package("embedding sizes must be non-zero".into()));
        }
        if self.max_seq_len < 2 || self.max_seq_len > e.max_positions {
            return Err(Error::Package(format!("max_seq_len {} must be between 2 and the {} position embeddings", self.max_seq_len, e.max_positions)));
        }
        if !(self.layer_norm_eps > 0.0 && self.layer_norm_eps.is_finite()) {
            return Err(Error::Package(format!("layer_norm_eps {} must be positive", self.layer_norm_eps)));
        }
        let mut width = e.width;
        for (i, b) in self.blocks.iter().enumerate() {
            if b.input_width() != width {
                return Err(Error::Package(format!(
                    "block {i} ({}) takes width {} but the previous block gives {width}; insert a projection block",
                    b.kind(),
                    b.input_width()
                )));
            }
            let ok = match *b {
                BlockSpec::Attention { width, heads, head_dim } => {
                    width > 0 && heads > 0 && head_dim > 0 && heads.checked_mul(head_dim).and_then(|i| i.checked_mul(3)).is_some_and(|n| n < 1 << 24)
                }
                BlockSpec::FeedForward { width, inner } => width > 0 && inner > 0 && inner < 1 << 24 && width < 1 << 24,
                BlockSpec::SepConv { width, kernel } => width > 0 && matches!(kernel, 3 | 5 | 7),
                BlockSpec::Identity { width } => width > 0,
                BlockSpec::Projection { input, output } => input > 0 && output > 0,
            };
            if !ok {
                return Err(Error::Package(format!("block {i} has invalid dimensions: {b:?}")));
            }
            width = b.output_width();
        }
        if let Some(h) = &self.head {
            if h.labels.is_empty() {
                return Err(Error::Package("the classification head has no labels".into()));
            }
        }
        let expected = self.expected_tensors();
        for (name, q) in &self.quantized {
            let Some(t) = expected.iter().find(|t| &t.name == name) else {
                return Err(Error::tensor(name, "is listed as quantized but the architecture has no such matrix"));
            };
            if t.role == TensorRole::Other {
                return Err(Error::tensor(name, "cannot be quantized (only matrices and embedding tables can)"));
            }
            crate::quant::check_bits(q.bits).map_err(|err| Error::tensor(name, err.to_string()))?;
            crate::quant::check_group(q.group).map_err(|err| Error::tensor(name, err.to_string()))?;
            if let Some(a) = q.act_bits {
                if !matches!(a, 4 | 8) || t.role != TensorRole::Matrix {
                    return Err(Error::tensor(name, format!("activation bits {a} unsupported (4 or 8, on matrices only)")));
                }
            }
            if q.act_smooth && q.act_bits.is_none() {
                return Err(Error::tensor(name, "has activation smoothing without activation quantization"));
            }
            if q.act_per_token && q.act_bits.is_none() {
                return Err(Error::tensor(name, "has per-token activation steps without activation quantization"));
            }
        }
        Ok(())
    }

    /// Every tensor the architecture needs, with its shape, in a stable order.
    pub fn expected_tensors(&self) -> Vec<ExpectedTensor> {
        use TensorRole::*;
        let mut v = Vec::new();
        let mut add = |name: String, shape: Vec<usize>, role: TensorRole| v.push(ExpectedTensor { name, shape, role });
        let e = &self.embeddings;
        add("embeddings.word".into(), vec![e.vocab_size, e.width], Embedding);
        add("embeddings.position".into(), vec![e.max_positions, e.width], Embedding);
        add("embeddings.token_type".into(), vec![e.type_vocab_size, e.width], Embedding);
        add("embeddings.ln.weight".into(), vec![e.width], Other);
        add("embeddings.ln.bias".into(), vec![e.width], Other);
        for (i, b) in self.blocks.iter().enumerate() {
            let p = format!("blocks.{i}");
            let ln = |add: &mut dyn FnMut(String, Vec<usize>, TensorRole), w: usize| {
                add(format!("{p}.ln.weight"), vec![w], Other);
                add(format!("{p}.ln.bias"), vec![w], Other);
            };
            match *b {
                BlockSpec::Attention { width, heads, head_dim } => {
                    let inner = heads * head_dim;
                    add(format!("{p}.attn.qkv.weight"), vec![3 * inner, width], Matrix);
                    add(format!("{p}.attn.qkv.bias"), vec![3 * inner], Other);
                    add(format!("{p}.attn.out.weight"), vec![width, inner], Matrix);
                    add(format!("{p}.attn.out.bias"), vec![width], Other);
                    ln(&mut add, width);
                }
                BlockSpec::FeedForward { width, inner } => {
                    add(format!("{p}.ffn.in.weight"), vec![inner, width], Matrix);
                    add(format!("{p}.ffn.in.bias"), vec![inner], Other);
                    add(format!("{p}.ffn.out.weight"), vec![width, inner], Matrix);
                    add(format!("{p}.ffn.out.bias"), vec![width], Other);
                    ln(&mut add, width);
                }
                BlockSpec::SepConv { width, kernel } => {
                    add(format!("{p}.conv.depthwise.weight"), vec![width, kernel], Other);
                    add(format!("{p}.conv.depthwise.bias"), vec![width], Other);
                    add(format!("{p}.conv.pointwise.weight"), vec![width, width], Matrix);
                    add(format!("{p}.conv.pointwise.bias"), vec![width], Other);
                    ln(&mut add, width);
                }
                BlockSpec::Identity { .. } => {}
                BlockSpec::Projection { input, output } => {
                    add(format!("{p}.proj.weight"), vec![output, input], Matrix);
                    add(format!("{p}.proj.bias"), vec![output], Other);
                }
            }
        }
        if let Some(h) = &self.head {
            let w = self.output_width();
            if h.pooler {
                add("head.pooler.weight".into(), vec![w, w], Other);
                add("head.pooler.bias".into(), vec![w], Other);
            }
            add("head.classifier.weight".into(), vec![h.labels.len(), w], Other);
            add("head.classifier.bias".into(), vec![h.labels.len()], Other);
        }
        v
    }
}
