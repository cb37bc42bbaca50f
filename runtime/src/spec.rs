//! The model description stored in a package (FORMAT.md): embeddings, a list of residual blocks
//! of heterogeneous kinds and widths, pooling, an optional task head, and provenance.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The package format version this build writes. Version 2 adds the checksum, version 3 stores
/// the tokenizer deflated, version 4 adds per-token activation steps, version 5 token-classification
/// heads, version 6 the two-stream convolution block `bi_conv` (FORMAT.md).
pub const FORMAT_VERSION: u32 = 6;
/// The oldest package format version this build still reads (version 1: no checksum).
pub const OLDEST_FORMAT_VERSION: u32 = 1;

/// Tensor names (FORMAT.md, "Block kinds" and "Other tensors"): the one place they are spelled;
/// every walker of a [`ModelSpec`] (readers, backends, the compressor) derives them from here.
/// Linear maps and norms are *layers* whose tensors are `<layer>.weight` and `<layer>.bias`; a
/// quantized tensor `T` is stored as `T.codes` and `T.scales`, and a matrix may add `T.act_step` and
/// `T.act_smooth`.
pub mod names {
    pub const WORD_EMBEDDINGS: &str = "embeddings.word";
    pub const POSITION_EMBEDDINGS: &str = "embeddings.position";
    pub const TOKEN_TYPE_EMBEDDINGS: &str = "embeddings.token_type";
    /// The LayerNorm of the summed embeddings (a layer).
    pub const EMBEDDING_NORM: &str = "embeddings.ln";
    /// The classification head's pooler and classifier (layers).
    pub const POOLER: &str = "head.pooler";
    pub const CLASSIFIER: &str = "head.classifier";

    /// `<layer>.weight`.
    pub fn weight(layer: &str) -> String {
        format!("{layer}.weight")
    }

    /// `<layer>.bias`.
    pub fn bias(layer: &str) -> String {
        format!("{layer}.bias")
    }

    /// The packed codes of the quantized tensor `name` (FORMAT.md, "Quantized matrices").
    pub fn codes(name: &str) -> String {
        format!("{name}.codes")
    }

    /// The steps of the quantized tensor `name`, one per group.
    pub fn scales(name: &str) -> String {
        format!("{name}.scales")
    }

    /// The per-tensor activation step of the quantized matrix `matrix` (a weight's name).
    pub fn act_step(matrix: &str) -> String {
        format!("{matrix}.act_step")
    }

    /// The activation smoothing factors of the quantized matrix `matrix` (a weight's name).
    pub fn act_smooth(matrix: &str) -> String {
        format!("{matrix}.act_smooth")
    }

    /// The layers of block `i`.
    pub fn block(i: usize) -> Block {
        Block(format!("blocks.{i}"))
    }

    /// The layers of one block; which exist depends on its kind.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct Block(String);

    impl Block {
        /// `blocks.{i}`, the prefix of every tensor of the block (also a label for its work).
        pub fn prefix(&self) -> &str {
            &self.0
        }

        /// Whether `tensor` is one of the block's (`blocks.1.ln.bias` is block 1's, not 12's).
        pub fn owns(&self, tensor: &str) -> bool {
            tensor.strip_prefix(self.0.as_str()).is_some_and(|rest| rest.starts_with('.'))
        }

        fn layer(&self, layer: &str) -> String {
            format!("{}.{layer}", self.0)
        }

        /// Attention: the fused query/key/value projection.
        pub fn qkv(&self) -> String {
            self.layer("attn.qkv")
        }

        /// Attention: the output projection.
        pub fn attn_out(&self) -> String {
            self.layer("attn.out")
        }

        /// Feed-forward: the first (widening) linear map.
        pub fn ffn_in(&self) -> String {
            self.layer("ffn.in")
        }

        /// Feed-forward: the second linear map.
        pub fn ffn_out(&self) -> String {
            self.layer("ffn.out")
        }

        /// Separable convolution: the depthwise taps (`weight [width, k]`) and bias.
        pub fn depthwise(&self) -> String {
            self.layer("conv.depthwise")
        }

        /// Separable convolution: the pointwise linear map.
        pub fn pointwise(&self) -> String {
            self.layer("conv.pointwise")
        }

        /// Projection: the linear map between widths.
        pub fn proj(&self) -> String {
            self.layer("proj")
        }

        /// The block's LayerNorm (attention, feed-forward and convolution blocks).
        pub fn norm(&self) -> String {
            self.layer("ln")
        }
    }
}

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
    /// Two streams of `width / 2` channels each, the first half of the state causal (token `t`
    /// sees tokens `≤ t`), the second anti-causal (`≥ t`); nothing mixes them, so the light
    /// tagger's views (FORMAT.md, "Block kinds") are halves of its states. Per stream:
    /// `s <- LN(s + P·GELU(CausalDepthwise_k(s)))`, the taps per channel (`[width, kernel]`,
    /// tap `j` reading `j` tokens back, or ahead in the second half), `P` and the norm shared by
    /// both streams: the pointwise product is one matrix over `2·T` rows (format version 6).
    BiConv { width: usize, kernel: usize },
    /// `x <- x`.
    Identity { width: usize },
    /// `x <- P·x`, a linear map between blocks of different width (no residual, no norm).
    Projection { input: usize, output: usize },
}

impl BlockSpec {
    /// Width of the block's input.
    pub fn input_width(&self) -> usize {
        match *self {
            BlockSpec::Attention { width, .. }
            | BlockSpec::FeedForward { width, .. }
            | BlockSpec::SepConv { width, .. }
            | BlockSpec::BiConv { width, .. }
            | BlockSpec::Identity { width } => {
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
            BlockSpec::BiConv { .. } => "bi_conv",
            BlockSpec::Identity { .. } => "identity",
            BlockSpec::Projection { .. } => "projection",
        }
    }
}

/// The longest causal kernel of a `bi_conv` block (its taps reach this many tokens minus one).
pub const MAX_BI_CONV_KERNEL: usize = 9;

/// A `bi_conv` block's taps `[width, kernel]` (tap `j` of a first-half channel reads token
/// `t - j`, of a second-half channel `t + j`) as a centred kernel of `2·kernel - 1` taps,
/// zero on the side a stream does not see: the centred depthwise convolution of `sep_conv`
/// then computes both streams (the zeros cost `kernel - 1` multiply-adds per channel, next to
/// the pointwise product's `width / 2`).
pub fn bi_conv_centred_taps(taps: &[f32], width: usize, kernel: usize) -> Vec<f32> {
    let full = 2 * kernel - 1;
    let mut out = vec![0f32; width * full];
    for ch in 0..width {
        for j in 0..kernel {
            // Centred tap `m` reads token `t + m - (kernel - 1)`.
            let m = if ch < width / 2 { kernel - 1 - j } else { kernel - 1 + j };
            out[ch * full + m] = taps[ch * kernel + j];
        }
    }
    out
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

/// A task head. `sequence` (as `BertForSequenceClassification`): `logits = C·tanh(P·h_CLS + p)
/// + c` (the pooler is optional), `probs = softmax(logits)`; with one label the head is a
/// regressor and its single logit is the score. `token` (as `BertForTokenClassification`,
/// format version 5): `logits_t = C·h_t + c` for every token's final state, no pooler; a word's
/// label is its first sub-word's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HeadSpec {
    pub pooler: bool,
    pub labels: Vec<String>,
    /// Absent in packages before version 5: `sequence`.
    #[serde(default, skip_serializing_if = "HeadKind::is_sequence")]
    pub kind: HeadKind,
}

/// What a head classifies: the whole input or each token.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HeadKind {
    #[default]
    Sequence,
    Token,
}

impl HeadKind {
    fn is_sequence(&self) -> bool {
        *self == HeadKind::Sequence
    }
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

    /// Multiply-adds per token of a sentence of `seq` tokens: every block's products (attention
    /// scores and context grow with `seq`), convolution taps and the head's classifier; table
    /// lookups, norms and activations are not counted. `2 ×` this is the FLOPs per token.
    pub fn macs_per_token(&self, seq: usize) -> f64 {
        let mut macs = 0usize;
        for b in &self.blocks {
            macs += match *b {
                BlockSpec::Attention { width, heads, head_dim } => {
                    let inner = heads * head_dim;
                    3 * inner * width + width * inner + 2 * seq * inner
                }
                BlockSpec::FeedForward { width, inner } => 2 * width * inner,
                BlockSpec::SepConv { width, kernel } => width * kernel + width * width,
                // Both streams: the taps, then the shared map on each half.
                BlockSpec::BiConv { width, kernel } => width * kernel + 2 * (width / 2) * (width / 2),
                BlockSpec::Identity { .. } => 0,
                BlockSpec::Projection { input, output } => input * output,
            };
        }
        if let Some(h) = &self.head {
            let w = self.output_width();
            macs += match h.kind {
                HeadKind::Token => h.labels.len() * w,
                // One sentence vector per input, shared by its tokens.
                HeadKind::Sequence => (usize::from(h.pooler) * w * w + h.labels.len() * w) / seq.max(1),
            };
        }
        macs as f64
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
                BlockSpec::BiConv { width, kernel } => width > 0 && width % 2 == 0 && (1..=MAX_BI_CONV_KERNEL).contains(&kernel) && width < 1 << 24,
                BlockSpec::Identity { width } => width > 0,
                BlockSpec::Projection { input, output } => input > 0 && output > 0,
            };
            if !ok {
                return Err(Error::Package(format!("block {i} has invalid dimensions: {b:?}")));
            }
            if matches!(b, BlockSpec::BiConv { .. }) && self.format_version < 6 {
                return Err(Error::Package(format!(
                    "block {i} (bi_conv) needs format version 6; this package says {} (a damaged or hand-edited description)",
                    self.format_version
                )));
            }
            width = b.output_width();
        }
        if let Some(h) = &self.head {
            if h.labels.is_empty() {
                return Err(Error::Package("the classification head has no labels".into()));
            }
            if h.kind == HeadKind::Token && h.pooler {
                return Err(Error::Package("a token-classification head has no pooler: set `pooler` to false".into()));
            }
            if h.kind == HeadKind::Token && self.format_version < 5 {
                return Err(Error::Package(format!(
                    "a token-classification head needs format version 5; this package says {} (a damaged or hand-edited description)",
                    self.format_version
                )));
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
        let mut table = |name: &str, shape: Vec<usize>| v.push(ExpectedTensor { name: name.into(), shape, role: Embedding });
        let e = &self.embeddings;
        table(names::WORD_EMBEDDINGS, vec![e.vocab_size, e.width]);
        table(names::POSITION_EMBEDDINGS, vec![e.max_positions, e.width]);
        table(names::TOKEN_TYPE_EMBEDDINGS, vec![e.type_vocab_size, e.width]);
        // A layer: `weight` of the given shape and role, and a float bias of `bias` entries.
        let mut layer = |name: &str, weight: Vec<usize>, role: TensorRole, bias: usize| {
            v.push(ExpectedTensor { name: names::weight(name), shape: weight, role });
            v.push(ExpectedTensor { name: names::bias(name), shape: vec![bias], role: Other });
        };
        layer(names::EMBEDDING_NORM, vec![e.width], Other, e.width);
        for (i, b) in self.blocks.iter().enumerate() {
            let n = names::block(i);
            match *b {
                BlockSpec::Attention { width, heads, head_dim } => {
                    let inner = heads * head_dim;
                    layer(&n.qkv(), vec![3 * inner, width], Matrix, 3 * inner);
                    layer(&n.attn_out(), vec![width, inner], Matrix, width);
                    layer(&n.norm(), vec![width], Other, width);
                }
                BlockSpec::FeedForward { width, inner } => {
                    layer(&n.ffn_in(), vec![inner, width], Matrix, inner);
                    layer(&n.ffn_out(), vec![width, inner], Matrix, width);
                    layer(&n.norm(), vec![width], Other, width);
                }
                BlockSpec::SepConv { width, kernel } => {
                    layer(&n.depthwise(), vec![width, kernel], Other, width);
                    layer(&n.pointwise(), vec![width, width], Matrix, width);
                    layer(&n.norm(), vec![width], Other, width);
                }
                BlockSpec::BiConv { width, kernel } => {
                    let half = width / 2;
                    layer(&n.depthwise(), vec![width, kernel], Other, width);
                    layer(&n.pointwise(), vec![half, half], Matrix, half);
                    layer(&n.norm(), vec![half], Other, half);
                }
                BlockSpec::Identity { .. } => {}
                BlockSpec::Projection { input, output } => layer(&n.proj(), vec![output, input], Matrix, output),
            }
        }
        if let Some(h) = &self.head {
            let w = self.output_width();
            if h.pooler {
                layer(names::POOLER, vec![w, w], Other, w);
            }
            layer(names::CLASSIFIER, vec![h.labels.len(), w], Other, h.labels.len());
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `bi_conv` block's taps as the centred kernel: channel 0 (forward) reads tokens back,
    /// channel 1 (backward) ahead; its tensors; and what validation refuses.
    #[test]
    fn bi_conv_taps_tensors_and_validation() {
        // width 2, kernel 2: taps [[a0, a1], [b0, b1]] -> centred [0]: a1 a0 0, [1]: 0 b0 b1.
        let got = bi_conv_centred_taps(&[1.0, 2.0, 3.0, 4.0], 2, 2);
        assert_eq!(got, [2.0, 1.0, 0.0, 0.0, 3.0, 4.0]);
        let mut spec = ModelSpec {
            format_version: FORMAT_VERSION,
            embeddings: EmbeddingSpec { vocab_size: 5, max_positions: 4, type_vocab_size: 1, width: 6 },
            blocks: vec![BlockSpec::BiConv { width: 6, kernel: 3 }],
            layer_norm_eps: 1e-12,
            max_seq_len: 4,
            pooling: PoolingSpec { mode: PoolingMode::Mean, normalize: false },
            head: None,
            quantized: Default::default(),
            provenance: Provenance::default(),
        };
        spec.validate().unwrap();
        let got: Vec<(String, Vec<usize>)> = spec.expected_tensors().into_iter().skip(5).map(|t| (t.name, t.shape)).collect();
        let want = [
            ("blocks.0.conv.depthwise.weight", vec![6, 3]),
            ("blocks.0.conv.depthwise.bias", vec![6]),
            ("blocks.0.conv.pointwise.weight", vec![3, 3]),
            ("blocks.0.conv.pointwise.bias", vec![3]),
            ("blocks.0.ln.weight", vec![3]),
            ("blocks.0.ln.bias", vec![3]),
        ];
        assert_eq!(got, want.map(|(n, s)| (n.to_string(), s)));
        // Taps 6·3, the shared 3×3 map on both streams.
        assert_eq!(spec.macs_per_token(7), (6 * 3 + 2 * 9) as f64);
        let bert = ModelSpec {
            blocks: vec![BlockSpec::Attention { width: 6, heads: 2, head_dim: 4 }, BlockSpec::FeedForward { width: 6, inner: 10 }],
            head: Some(HeadSpec { pooler: false, labels: vec!["a".into(), "b".into()], kind: HeadKind::Token }),
            ..spec.clone()
        };
        assert_eq!(bert.macs_per_token(5), (3 * 8 * 6 + 6 * 8 + 2 * 5 * 8 + 2 * 6 * 10 + 2 * 6) as f64);
        spec.format_version = 5;
        assert!(spec.validate().unwrap_err().to_string().contains("needs format version 6"));
        for bad in [BlockSpec::BiConv { width: 5, kernel: 3 }, BlockSpec::BiConv { width: 6, kernel: 0 }, BlockSpec::BiConv { width: 6, kernel: 10 }] {
            spec.format_version = FORMAT_VERSION;
            spec.embeddings.width = bad.input_width();
            spec.blocks = vec![bad];
            assert!(spec.validate().is_err());
        }
    }

    /// The names as FORMAT.md spells them, for one block of each kind and a head.
    #[test]
    fn tensor_names_are_the_formats() {
        let spec = ModelSpec {
            format_version: FORMAT_VERSION,
            embeddings: EmbeddingSpec { vocab_size: 5, max_positions: 4, type_vocab_size: 2, width: 4 },
            blocks: vec![
                BlockSpec::Attention { width: 4, heads: 2, head_dim: 3 },
                BlockSpec::FeedForward { width: 4, inner: 8 },
                BlockSpec::SepConv { width: 4, kernel: 3 },
                BlockSpec::Identity { width: 4 },
                BlockSpec::Projection { input: 4, output: 6 },
            ],
            layer_norm_eps: 1e-12,
            max_seq_len: 4,
            pooling: PoolingSpec { mode: PoolingMode::Mean, normalize: true },
            head: Some(HeadSpec { pooler: true, labels: vec!["a".into(), "b".into()], kind: HeadKind::Sequence }),
            quantized: Default::default(),
            provenance: Provenance::default(),
        };
        spec.validate().unwrap();
        let got: Vec<(String, Vec<usize>)> = spec.expected_tensors().into_iter().map(|t| (t.name, t.shape)).collect();
        let want: Vec<(&str, Vec<usize>)> = vec![
            ("embeddings.word", vec![5, 4]),
            ("embeddings.position", vec![4, 4]),
            ("embeddings.token_type", vec![2, 4]),
            ("embeddings.ln.weight", vec![4]),
            ("embeddings.ln.bias", vec![4]),
            ("blocks.0.attn.qkv.weight", vec![18, 4]),
            ("blocks.0.attn.qkv.bias", vec![18]),
            ("blocks.0.attn.out.weight", vec![4, 6]),
            ("blocks.0.attn.out.bias", vec![4]),
            ("blocks.0.ln.weight", vec![4]),
            ("blocks.0.ln.bias", vec![4]),
            ("blocks.1.ffn.in.weight", vec![8, 4]),
            ("blocks.1.ffn.in.bias", vec![8]),
            ("blocks.1.ffn.out.weight", vec![4, 8]),
            ("blocks.1.ffn.out.bias", vec![4]),
            ("blocks.1.ln.weight", vec![4]),
            ("blocks.1.ln.bias", vec![4]),
            ("blocks.2.conv.depthwise.weight", vec![4, 3]),
            ("blocks.2.conv.depthwise.bias", vec![4]),
            ("blocks.2.conv.pointwise.weight", vec![4, 4]),
            ("blocks.2.conv.pointwise.bias", vec![4]),
            ("blocks.2.ln.weight", vec![4]),
            ("blocks.2.ln.bias", vec![4]),
            ("blocks.4.proj.weight", vec![6, 4]),
            ("blocks.4.proj.bias", vec![6]),
            ("head.pooler.weight", vec![6, 6]),
            ("head.pooler.bias", vec![6]),
            ("head.classifier.weight", vec![2, 6]),
            ("head.classifier.bias", vec![2]),
        ];
        let want: Vec<(String, Vec<usize>)> = want.into_iter().map(|(n, s)| (n.to_string(), s)).collect();
        assert_eq!(got, want);
        let w = names::weight(&names::block(3).ffn_out());
        assert_eq!(names::act_step(&w), "blocks.3.ffn.out.weight.act_step");
        assert_eq!(names::act_smooth(&w), "blocks.3.ffn.out.weight.act_smooth");
        assert_eq!((names::codes(&w), names::scales(&w)), ("blocks.3.ffn.out.weight.codes".into(), "blocks.3.ffn.out.weight.scales".into()));
        assert!(names::block(1).owns("blocks.1.ln.bias") && !names::block(1).owns("blocks.12.ln.bias") && !names::block(1).owns("blocks.1"));
    }
}
