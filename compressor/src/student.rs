//! A BERT-style encoder of any heterogeneous architecture the package format describes, as a
//! burn module: the teacher (loaded from a Hugging Face directory) and every student are this
//! type. Weights keep the package layout (`[out, in]`), so import and export are one-to-one.
//! Any matrix may carry LSQ fake quantization of its weights and of its input activations.

use bertling_runtime::spec::names;
use burn::module::Param;
use burn::prelude::*;
use crate::fused::gelu;

use crate::lsq::{fake_quant_act, fake_quant_act_per_token, fake_quant_weight};

/// LSQ state of one matrix.
#[derive(Module, Debug)]
pub struct Lsq {
    /// Weight steps `[rows, groups]`.
    pub step: Param<Tensor<2>>,
    pub bits: usize,
    /// Columns per step; 0 = per row.
    pub group: usize,
    /// Input activation step `[1]` and bits (0 = float activations); no step with `act_bits`
    /// > 0 means per-token steps (each row's `max|x| / Q_P`, not trained).
    pub act_step: Option<Param<Tensor<1>>>,
    pub act_bits: usize,
    /// Per-input-channel smoothing `m` `[in]` (SmoothQuant-style migration of activation
    /// outliers into the weights): the activation quantizer sees `x ⊙ m` and the weight
    /// quantizer `W ⊙ (1/m)` by columns, so the float product is unchanged. Trained with the
    /// rest; the package stores the folded weights and `m`.
    pub act_smooth: Option<Param<Tensor<1>>>,
}

impl Lsq {
    /// The layer's input as the quantized forward sees it: smoothed, then fake-quantized with
    /// the learned step or per token (smoothing and per-token steps in one pass).
    fn quantize_input(&self, x: Tensor<3>) -> Tensor<3> {
        let bits = self.act_bits as u8;
        let smooth = |x: Tensor<3>| match &self.act_smooth {
            Some(m) => x * m.val().unsqueeze::<3>(),
            None => x,
        };
        match (&self.act_step, &self.act_smooth) {
            (Some(step), _) => fake_quant_act(smooth(x), step.val(), bits),
            (None, _) if bits == 0 => smooth(x),
            (None, Some(m)) => crate::fused::smooth_quant_rows(x, m.val(), bits),
            (None, None) => fake_quant_act_per_token(x, bits),
        }
    }
}

/// `y = x · Wᵀ + b`, optionally fake-quantized.
#[derive(Module, Debug)]
pub struct Dense {
    pub weight: Param<Tensor<2>>,
    pub bias: Param<Tensor<1>>,
    pub quant: Option<Lsq>,
}

impl Dense {
    pub fn new(weight: Tensor<2>, bias: Tensor<1>) -> Dense {
        Dense { weight: Param::from_tensor(weight), bias: Param::from_tensor(bias), quant: None }
    }

    /// The weights the quantizer sees: `W`, or `W ⊙ (1/m)` by columns with smoothing.
    pub fn folded_weight(&self) -> Tensor<2> {
        match self.quant.as_ref().and_then(|q| q.act_smooth.as_ref()) {
            None => self.weight.val(),
            Some(m) => self.weight.val() / m.val().unsqueeze::<2>(),
        }
    }

    /// The weights as the forward pass sees them (fake-quantized when quantized; folded with
    /// the smoothing, which the forward applies to the input).
    pub fn effective_weight(&self) -> Tensor<2> {
        match &self.quant {
            None => self.weight.val(),
            Some(q) => fake_quant_weight(self.folded_weight(), q.step.val(), q.bits as u8, (q.group > 0).then_some(q.group)),
        }
    }

    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let x = match &self.quant {
            Some(q) => q.quantize_input(x),
            None => x,
        };
        matmul_rows(x, self.effective_weight(), self.bias.val())
    }
}

/// `x · Wᵀ + b` for `x: [batch, seq, in]`, `w: [out, in]`, as one `[batch·seq, in]` product:
/// a batched product against a broadcast `W` packs `W` once per batch entry and, backward,
/// makes one `[out, in]` gradient per entry before summing them.
pub fn matmul_rows(x: Tensor<3>, w: Tensor<2>, bias: Tensor<1>) -> Tensor<3> {
    let [b, s, d] = x.dims();
    let out = w.dims()[0];
    (x.reshape([b * s, d]).matmul(w.transpose()) + bias.unsqueeze::<2>()).reshape([b, s, out])
}

/// LayerNorm over the last axis with the biased variance.
#[derive(Module, Debug)]
pub struct Norm {
    pub gamma: Param<Tensor<1>>,
    pub beta: Param<Tensor<1>>,
    pub eps: f64,
}

impl Norm {
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        crate::fused::layer_norm(x, self.gamma.val(), self.beta.val(), self.eps)
    }
}

#[derive(Module, Debug)]
pub struct Attention {
    pub heads: usize,
    pub head_dim: usize,
    pub qkv: Dense,
    pub out: Dense,
    pub norm: Norm,
}

#[derive(Module, Debug)]
pub struct FeedForward {
    pub inp: Dense,
    pub out: Dense,
    pub norm: Norm,
}

#[derive(Module, Debug)]
pub struct SepConv {
    pub kernel: usize,
    /// Depthwise taps `[width, kernel]`.
    pub taps: Param<Tensor<2>>,
    pub taps_bias: Param<Tensor<1>>,
    pub pointwise: Dense,
    pub norm: Norm,
}

/// One block, of the kinds the package format has (`BlockSpec`).
#[derive(Module, Debug)]
pub enum Block {
    Attention(Attention),
    FeedForward(FeedForward),
    SepConv(SepConv),
    /// The light tagger's two causal streams (`bi_conv`): the taps `[width, kernel]` per
    /// stream channel, the pointwise map `[width/2, width/2]` and norm shared by both.
    BiConv(SepConv),
    /// A linear map between widths (no residual, no norm).
    Projection(Dense),
    /// `x <- x` at this width (burn's module enums need one field per variant).
    Identity(usize),
}

impl Block {
    pub fn attention(&self) -> Option<&Attention> {
        match self {
            Block::Attention(a) => Some(a),
            _ => None,
        }
    }

    pub fn feed_forward(&self) -> Option<&FeedForward> {
        match self {
            Block::FeedForward(f) => Some(f),
            _ => None,
        }
    }

    pub fn projection(&self) -> Option<&Dense> {
        match self {
            Block::Projection(p) => Some(p),
            _ => None,
        }
    }

    /// The block's dense layers with their package names (block `i`), in package order.
    pub fn dense_layers(&self, n: &names::Block) -> Vec<(String, &Dense)> {
        match self {
            Block::Attention(a) => vec![(n.qkv(), &a.qkv), (n.attn_out(), &a.out)],
            Block::FeedForward(f) => vec![(n.ffn_in(), &f.inp), (n.ffn_out(), &f.out)],
            Block::SepConv(c) | Block::BiConv(c) => vec![(n.pointwise(), &c.pointwise)],
            Block::Projection(p) => vec![(n.proj(), p)],
            Block::Identity(_) => Vec::new(),
        }
    }

    /// [`Block::dense_layers`], mutably.
    pub fn dense_layers_mut(&mut self, n: &names::Block) -> Vec<(String, &mut Dense)> {
        match self {
            Block::Attention(a) => vec![(n.qkv(), &mut a.qkv), (n.attn_out(), &mut a.out)],
            Block::FeedForward(f) => vec![(n.ffn_in(), &mut f.inp), (n.ffn_out(), &mut f.out)],
            Block::SepConv(c) | Block::BiConv(c) => vec![(n.pointwise(), &mut c.pointwise)],
            Block::Projection(p) => vec![(n.proj(), p)],
            Block::Identity(_) => Vec::new(),
        }
    }
}

#[derive(Module, Debug)]
pub struct Embeddings {
    pub word: Param<Tensor<2>>,
    pub position: Param<Tensor<2>>,
    pub token_type: Param<Tensor<2>>,
    pub norm: Norm,
    /// LSQ of the word, position and segment tables.
    pub word_quant: Option<Lsq>,
    pub position_quant: Option<Lsq>,
    pub token_type_quant: Option<Lsq>,
}

/// A table as the forward pass sees it (fake-quantized when quantized).
pub fn table(t: &Param<Tensor<2>>, q: &Option<Lsq>) -> Tensor<2> {
    match q {
        None => t.val(),
        Some(q) => fake_quant_weight(t.val(), q.step.val(), q.bits as u8, (q.group > 0).then_some(q.group)),
    }
}

/// The rows `ids` (`[batch, seq]`) of a table as the forward pass sees it: `embedding(table(t,
/// q), ids)`, but only the rows looked up are fake-quantized (with their own steps). Same
/// values and gradients; on a 30,522-row vocabulary it saves fake-quantizing ≈ 12 M values
/// forward and backward at every step.
pub fn lookup(t: &Param<Tensor<2>>, q: &Option<Lsq>, ids: Tensor<2, Int>) -> Tensor<3> {
    match q {
        None => burn::tensor::module::embedding(t.val(), ids),
        Some(q) => {
            let [b, s] = ids.dims();
            let width = t.val().dims()[1];
            let flat = ids.reshape([b * s]);
            let rows = t.val().select(0, flat.clone());
            let steps = q.step.val().select(0, flat);
            fake_quant_weight(rows, steps, q.bits as u8, (q.group > 0).then_some(q.group)).reshape([b, s, width])
        }
    }
}

/// The encoder.
#[derive(Module, Debug)]
pub struct Encoder {
    pub embeddings: Embeddings,
    pub blocks: Vec<Block>,
    /// The sequence-classification head, when the model has one.
    pub head: Option<Head>,
    /// The sentence vector is the [CLS] state (the package's pooling `cls`), not the mean of
    /// the tokens' states: the sentence loss and every cosine to the teacher pool this way.
    pub cls_pooling: bool,
}

/// `logits = C·tanh(P·h_CLS + p) + c` (the pooler is optional), as the runtime computes it; a
/// token head (`token`, no pooler) classifies every token's state: `logits_t = C·h_t + c`.
#[derive(Module, Debug)]
pub struct Head {
    pub pooler: Option<Dense>,
    pub classifier: Dense,
    pub token: bool,
}

impl Head {
    /// Logits `[batch, labels]` from the final states `[batch, seq, width]`; for a token head
    /// `[batch · seq, labels]`, row `i · seq + t` for token `t` of input `i` (padding included).
    pub fn forward(&self, states: Tensor<3>) -> Tensor<2> {
        let [b, s, _] = states.dims();
        if self.token {
            let logits = self.classifier.forward(states);
            let labels = logits.dims()[2];
            return logits.reshape([b * s, labels]);
        }
        let mut cls = states.narrow(1, 0, 1); // [b, 1, width]
        if let Some(p) = &self.pooler {
            cls = p.forward(cls).tanh();
        }
        let logits = self.classifier.forward(cls);
        let labels = logits.dims()[2];
        logits.reshape([b, labels])
    }
}

/// A padded batch: ids and segment ids `[batch, seq]`, mask `[batch, seq]` (1 = token).
#[derive(Clone, Debug)]
pub struct Batch {
    pub ids: Tensor<2, Int>,
    pub type_ids: Tensor<2, Int>,
    pub mask: Tensor<2>,
}

impl Batch {
    /// Pads tokenized inputs to the longest one.
    pub fn new(inputs: &[bertling_runtime::Input], device: &Device) -> Batch {
        let b = inputs.len();
        let s = inputs.iter().map(|i| i.ids.len()).max().unwrap_or(1).max(1);
        let (mut ids, mut types, mut mask) = (vec![0i64; b * s], vec![0i64; b * s], vec![0f32; b * s]);
        for (i, inp) in inputs.iter().enumerate() {
            for (j, (&id, &t)) in inp.ids.iter().zip(&inp.type_ids).enumerate() {
                ids[i * s + j] = id as i64;
                types[i * s + j] = t as i64;
                mask[i * s + j] = 1.0;
            }
        }
        Batch {
            ids: Tensor::from_data(TensorData::new(ids, [b, s]), device),
            type_ids: Tensor::from_data(TensorData::new(types, [b, s]), device),
            mask: Tensor::from_data(TensorData::new(mask, [b, s]), device),
        }
    }
}

/// What a forward pass returns: the embedding output and every block's output
/// (`[batch, seq, width]`), each attention block's probabilities (`[batch, heads, seq, seq]`),
/// and the head's logits (`[batch, labels]`) when there is a head.
pub struct Outputs {
    pub hidden: Vec<Tensor<3>>,
    pub attentions: Vec<Tensor<4>>,
    pub logits: Option<Tensor<2>>,
}

impl Encoder {
    pub fn forward(&self, batch: &Batch) -> Outputs {
        self.forward_observed(batch, &mut |_, _| {})
    }

    /// [`Encoder::forward`], showing `observe` the input of every dense layer with the layer's
    /// package name (activation calibration).
    pub fn forward_observed(&self, batch: &Batch, observe: &mut dyn FnMut(&str, &Tensor<3>)) -> Outputs {
        let mut x = self.embed(batch);
        let masks = Masks::new(batch);
        let mut hidden = vec![x.clone()];
        let mut attentions = Vec::new();
        for i in 0..self.blocks.len() {
            let (y, p) = self.block_forward(i, x, &masks, observe);
            x = y;
            attentions.extend(p);
            hidden.push(x.clone());
        }
        let logits = self.head.as_ref().map(|h| h.forward(x));
        Outputs { hidden, attentions, logits }
    }

    /// The embedding output `[batch, seq, width]`.
    pub fn embed(&self, batch: &Batch) -> Tensor<3> {
        let e = &self.embeddings;
        let s = batch.ids.dims()[1];
        let words = lookup(&e.word, &e.word_quant, batch.ids.clone());
        let types = lookup(&e.token_type, &e.token_type_quant, batch.type_ids.clone());
        let positions = table(&e.position, &e.position_quant).narrow(0, 0, s).unsqueeze::<3>();
        e.norm.forward(words + types + positions)
    }

    /// Block `i` on its input `x`: the block's output and, for attention blocks, the attention
    /// probabilities `[batch, heads, seq, seq]`.
    pub fn block_forward(&self, i: usize, x: Tensor<3>, masks: &Masks, observe: &mut dyn FnMut(&str, &Tensor<3>)) -> (Tensor<3>, Option<Tensor<4>>) {
        let mut dense = |name: String, d: &Dense, x: Tensor<3>| {
            observe(&name, &x);
            d.forward(x)
        };
        let n = names::block(i);
        match &self.blocks[i] {
            Block::Attention(a) => {
                let qkv = dense(n.qkv(), &a.qkv, x.clone());
                let (ctx, p) = attend(qkv, a.heads, a.head_dim, masks);
                (a.norm.forward(x + dense(n.attn_out(), &a.out, ctx)), Some(p))
            }
            Block::FeedForward(f) => {
                let h = gelu(dense(n.ffn_in(), &f.inp, x.clone()));
                (f.norm.forward(x + dense(n.ffn_out(), &f.out, h)), None)
            }
            Block::SepConv(c) => {
                let acc = depthwise(x.clone(), c.taps.val(), c.taps_bias.val(), masks);
                (c.norm.forward(x + dense(n.pointwise(), &c.pointwise, gelu(acc))), None)
            }
            Block::BiConv(c) => {
                // Two rows of one stream each per token: the shared map and norm never mix them.
                let [b, s, w] = x.dims();
                let acc = causal_depthwise(x.clone(), c.taps.val(), c.taps_bias.val(), masks);
                let y = dense(n.pointwise(), &c.pointwise, gelu(acc).reshape([b, 2 * s, w / 2]));
                let z = x.reshape([b, 2 * s, w / 2]) + y;
                (c.norm.forward(z).reshape([b, s, w]), None)
            }
            Block::Projection(p) => (dense(n.proj(), p, x), None),
            Block::Identity(_) => (x, None),
        }
    }
}

/// Multi-head attention on projected `qkv` (`[batch, seq, 3·heads·head_dim]`, queries, keys,
/// values): the context `[batch, seq, heads·head_dim]` and the probabilities
/// `[batch, heads, seq, seq]`.
pub fn attend(qkv: Tensor<3>, heads: usize, head_dim: usize, masks: &Masks) -> (Tensor<3>, Tensor<4>) {
    let [b, s, _] = qkv.dims();
    let inner = heads * head_dim;
    let split = |i: usize| qkv.clone().narrow(2, i * inner, inner).reshape([b, s, heads, head_dim]).swap_dims(1, 2);
    let (q, k, v) = (split(0), split(1), split(2));
    let scores = q.matmul(k.swap_dims(2, 3)).div_scalar((head_dim as f32).sqrt()) + masks.key_bias.clone();
    let p = crate::fused::softmax(scores);
    (p.clone().matmul(v).swap_dims(1, 2).reshape([b, s, inner]), p)
}

/// A depthwise convolution along the sequence (`taps [width, kernel]`, centred, zero padding at
/// both ends) plus `bias`; the padding tokens are zeroed first so that they never leak into
/// real tokens.
pub fn depthwise(x: Tensor<3>, taps: Tensor<2>, bias: Tensor<1>, masks: &Masks) -> Tensor<3> {
    let [b, s, width] = x.dims();
    let kernel = taps.dims()[1];
    let xm = x * masks.tokens.clone();
    let half = kernel / 2;
    let zeros = || Tensor::zeros([b, half, width], &xm.device());
    let padded = Tensor::cat(vec![zeros(), xm.clone(), zeros()], 1);
    let mut acc = bias.unsqueeze::<3>().expand([b, s, width]);
    for j in 0..kernel {
        let tap = taps.clone().narrow(1, j, 1).reshape([1, 1, width]);
        acc = acc + padded.clone().narrow(1, j, s) * tap;
    }
    acc
}

/// The two streams' depthwise convolutions of a `bi_conv` block (`taps [width, kernel]`): the
/// first half of the channels reads tokens `t - j`, the second `t + j`, zero outside the
/// sentence (padding is zeroed first), plus `bias`.
pub fn causal_depthwise(x: Tensor<3>, taps: Tensor<2>, bias: Tensor<1>, masks: &Masks) -> Tensor<3> {
    let [b, s, width] = x.dims();
    let (half, kernel) = (width / 2, taps.dims()[1]);
    let xm = x * masks.tokens.clone();
    let dev = xm.device();
    let zeros = || Tensor::zeros([b, kernel - 1, half], &dev);
    let fwd = Tensor::cat(vec![zeros(), xm.clone().narrow(2, 0, half)], 1);
    let bwd = Tensor::cat(vec![xm.narrow(2, half, half), zeros()], 1);
    let tap = |j: usize, from: usize| taps.clone().narrow(1, j, 1).narrow(0, from, half).reshape([1, 1, half]);
    let mut acc_f = fwd.clone().narrow(1, kernel - 1, s) * tap(0, 0);
    let mut acc_b = bwd.clone().narrow(1, 0, s) * tap(0, half);
    for j in 1..kernel {
        acc_f = acc_f + fwd.clone().narrow(1, kernel - 1 - j, s) * tap(j, 0);
        acc_b = acc_b + bwd.clone().narrow(1, j, s) * tap(j, half);
    }
    Tensor::cat(vec![acc_f, acc_b], 2) + bias.unsqueeze::<3>()
}

/// The masks of a batch as the blocks use them.
#[derive(Clone, Debug)]
pub struct Masks {
    /// `[batch, seq, 1]`: 1 for tokens, 0 for padding.
    pub tokens: Tensor<3>,
    /// `[batch, 1, 1, seq]`: 0 for tokens, a large negative number for padding (added to
    /// attention scores).
    pub key_bias: Tensor<4>,
}

impl Masks {
    pub fn new(batch: &Batch) -> Masks {
        let [b, s] = batch.mask.dims();
        Masks { tokens: batch.mask.clone().unsqueeze_dim::<3>(2), key_bias: (batch.mask.clone() - 1.0).mul_scalar(1e9).reshape([b, 1, 1, s]) }
    }
}

/// The sentence vectors `[batch, width]` as the package's pooling makes them: the [CLS] state
/// (`cls`) or the mean of the real tokens' states (before any normalisation).
pub fn pool(states: Tensor<3>, mask: Tensor<2>, cls: bool) -> Tensor<2> {
    if cls {
        let [b, _, w] = states.dims();
        states.narrow(1, 0, 1).reshape([b, w])
    } else {
        mean_pool(states, mask)
    }
}

/// Mean of the real tokens' states, `[batch, width]`.
pub fn mean_pool(states: Tensor<3>, mask: Tensor<2>) -> Tensor<2> {
    let m = mask.unsqueeze_dim::<3>(2);
    let summed = (states * m.clone()).sum_dim(1).squeeze_dim::<2>(1);
    summed / m.sum_dim(1).squeeze_dim::<2>(1).clamp_min(1e-9)
}

/// The teacher's pooled last-layer embeddings of some batches, to measure how close another
/// encoder of the same width comes (probes and benchmarks).
pub struct PooledReference {
    batches: Vec<Batch>,
    pooled: Vec<Tensor<2>>,
}

impl PooledReference {
    pub fn new(teacher: &Encoder, batches: Vec<Batch>) -> PooledReference {
        let pooled = batches.iter().map(|b| teacher.pooled(b)).collect();
        PooledReference { batches, pooled }
    }

    /// Cosine of `enc`'s pooled embeddings to the teacher's: mean and 5th percentile.
    pub fn cosine(&self, enc: &Encoder) -> (f32, f32) {
        let mut all = Vec::new();
        for (b, r) in self.batches.iter().zip(&self.pooled) {
            let s = enc.pooled(b);
            let dot = (s.clone() * r.clone()).sum_dim(1);
            let norms = (s.powi_scalar(2).sum_dim(1) * r.clone().powi_scalar(2).sum_dim(1)).sqrt();
            all.extend((dot / norms).into_data().iter::<f32>());
        }
        let mean = all.iter().sum::<f32>() / all.len().max(1) as f32;
        all.sort_by(f32::total_cmp);
        (mean, all.get(all.len() / 20).copied().unwrap_or(f32::NAN))
    }
}

impl Encoder {
    /// Pooled last-layer states `[batch, width]` ([`pool`] by the model's pooling).
    pub fn pooled(&self, batch: &Batch) -> Tensor<2> {
        let last = self.forward(batch).hidden.pop().expect("an encoder has an embedding output");
        pool(last, batch.mask.clone(), self.cls_pooling)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn floats<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_into_vec_as::<f32>().unwrap()
    }

    /// `lookup` gives the values and the table and step gradients of looking rows up in the
    /// whole fake-quantized table, with repeated ids, per group and per row.
    #[test]
    fn lookup_equals_the_whole_table() {
        let dev = Device::flex().autodiff();
        let (rows, cols) = (11usize, 64usize);
        let w: Vec<f32> = (0..rows * cols).map(|i| ((i * 7919 % 1000) as f32 / 1000.0 - 0.5) * 0.3).collect();
        for (bits, group) in [(2u8, Some(32usize)), (4, None), (8, Some(32))] {
            let groups = group.map_or(1, |g| cols / g);
            let steps: Vec<f32> = (0..rows * groups).map(|i| 0.02 + 0.003 * i as f32).collect();
            let make = || {
                let t = Param::from_tensor(Tensor::<2>::from_data(TensorData::new(w.clone(), [rows, cols]), &dev).require_grad());
                let step = Param::from_tensor(Tensor::<2>::from_data(TensorData::new(steps.clone(), [rows, groups]), &dev).require_grad());
                let q = Lsq { step, bits: bits as usize, group: group.unwrap_or(0), act_step: None, act_bits: 0, act_smooth: None };
                (t, Some(q))
            };
            let ids: Tensor<2, Int> = Tensor::from_data(TensorData::new(vec![3i64, 0, 3, 10, 7, 3], [2, 3]), &dev);
            // Upstream gradient weights that differ per position, so repeated ids add up.
            let weights: Tensor<3> = Tensor::from_data(TensorData::new((0..6 * cols).map(|i| (i % 13) as f32 - 6.0).collect::<Vec<_>>(), [2, 3, cols]), &dev);
            let (t1, q1) = make();
            let a = lookup(&t1, &q1, ids.clone());
            let ga = (a.clone() * weights.clone()).sum().backward();
            let (t2, q2) = make();
            let b = burn::tensor::module::embedding(table(&t2, &q2), ids);
            let gb = (b.clone() * weights).sum().backward();
            assert_eq!(floats(a), floats(b), "w{bits}: values");
            let close = |x: Vec<f32>, y: Vec<f32>, what: &str| {
                for (u, v) in x.iter().zip(&y) {
                    assert!((u - v).abs() <= 1e-5 * v.abs().max(1.0), "w{bits} {what}: {u} vs {v}");
                }
            };
            close(floats(t1.val().grad(&ga).unwrap()), floats(t2.val().grad(&gb).unwrap()), "table gradient");
            let (s1, s2) = (q1.unwrap().step.val(), q2.unwrap().step.val());
            close(floats(s1.grad(&ga).unwrap()), floats(s2.grad(&gb).unwrap()), "step gradient");
        }
    }
}
