//! The CPU backend: the whole encoder on a ragged batch.
//!
//! Sentences are never padded in memory: the batch is the concatenation of its sentences'
//! tokens (`T` rows), and attention and convolution work per sentence on its own rows. This
//! computes exactly what a padded batch with an attention mask computes, without spending any
//! work on padding.

pub mod linear;
pub mod ops;
pub mod qgemm;
pub mod qlinear;
pub mod team;

use std::collections::BTreeMap;
use std::convert::Infallible;

use crate::data::{ModelData, TensorData};
use crate::error::{Error, Result};
use crate::spec::{names, BlockSpec, ModelSpec, PoolingMode};
use gemm::Parallelism;
use linear::{gemm_strided, Linear, SendPtr, Weights};
pub use team::Team;

/// A tokenized input: token ids and segment ids of equal length.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Input {
    pub ids: Vec<u32>,
    pub type_ids: Vec<u32>,
}

impl Input {
    /// `batch` synthetic inputs of `seq` tokens for benchmarks and profiling, as the ONNX
    /// Runtime anchor script makes them: ids in [1000, 30000) (wrapped into the vocabulary),
    /// `[CLS]` (101) first and `[SEP]` (102) last, one segment, deterministic.
    pub fn synthetic(batch: usize, seq: usize, vocab_size: usize) -> Vec<Input> {
        let vocab = vocab_size.max(1) as u64;
        let mut rng = crate::rng::XorShift::new(1);
        (0..batch)
            .map(|_| {
                let mut ids: Vec<u32> = (0..seq).map(|_| ((1000 + rng.below(29000)) % vocab) as u32).collect();
                if seq > 0 {
                    ids[0] = (101 % vocab) as u32;
                    ids[seq - 1] = (102 % vocab) as u32;
                }
                Input { ids, type_ids: vec![0; seq] }
            })
            .collect()
    }
}

struct Norm {
    gamma: Vec<f32>,
    beta: Vec<f32>,
}

enum Block {
    Attention { heads: usize, head_dim: usize, qkv: Linear, out: Linear, norm: Norm },
    FeedForward { inp: Linear, out: Linear, norm: Norm },
    SepConv { kernel: usize, dw_weight: Vec<f32>, dw_bias: Vec<f32>, pointwise: Linear, norm: Norm },
    /// Two streams: the taps as a centred kernel of `kernel` taps (`2k - 1`, zero on the side a
    /// stream does not see), the shared pointwise map and norm over `width / 2` channels.
    BiConv { kernel: usize, dw_weight: Vec<f32>, dw_bias: Vec<f32>, pointwise: Linear, norm: Norm },
    Identity,
    Projection { proj: Linear },
}

struct Head {
    pooler: Option<Linear>,
    classifier: Linear,
}

/// The encoder, ready to run.
pub struct Encoder {
    spec: ModelSpec,
    word: Weights,
    position: Weights,
    token_type: Weights,
    emb_norm: Norm,
    blocks: Vec<Block>,
    head: Option<Head>,
}

/// The result of a forward pass over a ragged batch.
pub struct Forward {
    /// Final token states, `T × width`.
    pub states: Vec<f32>,
    pub width: usize,
    /// Row offset of each sentence; sentence `i` is rows `offsets[i]..offsets[i + 1]`.
    pub offsets: Vec<usize>,
    /// With `keep_hidden`: the embedding output, then each block's output.
    pub hidden: Vec<Vec<f32>>,
    /// With [`Keep::attention`]: per attention block, each sentence's probabilities
    /// `heads × len × len` (softmax rows), sentence after sentence.
    pub attentions: Vec<Vec<f32>>,
}

/// What a forward pass keeps besides the final states.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Keep {
    /// The embedding output and every block's output.
    pub hidden: bool,
    /// Every attention block's probabilities (the distillation teacher's targets).
    pub attention: bool,
}

impl From<bool> for Keep {
    /// `keep_hidden` alone.
    fn from(hidden: bool) -> Keep {
        Keep { hidden, attention: false }
    }
}

impl Forward {
    /// Rows of sentence `i`.
    pub fn sentence(&self, i: usize) -> &[f32] {
        &self.states[self.offsets[i] * self.width..self.offsets[i + 1] * self.width]
    }
}

/// Takes tensors out of model data one at a time, so that building the encoder never holds a
/// weight twice (apps load from bytes they keep: the data, the bytes and a copy would be three).
struct Tensors {
    map: BTreeMap<String, TensorData>,
    /// Matrices with quantized activations run on the integer kernels.
    integer: bool,
}

impl Tensors {
    fn take(&mut self, name: &str) -> Result<TensorData> {
        self.map.remove(name).ok_or_else(|| Error::tensor(name, "is missing"))
    }

    /// A vector tensor as floats; empty when the model has none of that name (no bias).
    fn vector(&mut self, name: &str) -> Vec<f32> {
        match self.map.remove(name) {
            Some(TensorData::F32 { data, .. }) => data,
            Some(t) => t.to_f32(),
            None => Vec::new(),
        }
    }

    fn linear(&mut self, prefix: &str) -> Result<Linear> {
        let w = self.take(&names::weight(prefix))?;
        let shape = w.shape().to_vec();
        let (weights, act) = Weights::from_owned(w);
        let bias = self.vector(&names::bias(prefix));
        Ok(if self.integer { Linear::new(shape[0], shape[1], weights, bias, act) } else { Linear::new_dequantized(shape[0], shape[1], weights, bias, act) })
    }

    fn norm(&mut self, prefix: &str) -> Norm {
        Norm { gamma: self.vector(&names::weight(prefix)), beta: self.vector(&names::bias(prefix)) }
    }

    fn table(&mut self, name: &str) -> Result<Weights> {
        Ok(Weights::from_owned(self.take(name)?).0)
    }
}

impl Encoder {
    /// Builds the encoder from model data, taking its weights over (no copy).
    pub fn new(model: ModelData) -> Result<Encoder> {
        Encoder::build(model, true)
    }

    /// [`Encoder::new`] without the integer kernels: quantized activations are fake-quantized
    /// in float and multiplied by dequantized weights, the package's definition as written (the
    /// reference the integer path is tested against).
    pub fn new_dequantized(model: ModelData) -> Result<Encoder> {
        Encoder::build(model, false)
    }

    fn build(model: ModelData, integer: bool) -> Result<Encoder> {
        model.validate()?;
        let ModelData { spec, tensors, .. } = model;
        let mut t = Tensors { map: tensors, integer };
        let mut blocks = Vec::with_capacity(spec.blocks.len());
        for (i, b) in spec.blocks.iter().enumerate() {
            let n = names::block(i);
            blocks.push(match *b {
                BlockSpec::Attention { heads, head_dim, .. } => {
                    Block::Attention { heads, head_dim, qkv: t.linear(&n.qkv())?, out: t.linear(&n.attn_out())?, norm: t.norm(&n.norm()) }
                }
                BlockSpec::FeedForward { .. } => Block::FeedForward { inp: t.linear(&n.ffn_in())?, out: t.linear(&n.ffn_out())?, norm: t.norm(&n.norm()) },
                BlockSpec::SepConv { kernel, .. } => Block::SepConv {
                    kernel,
                    dw_weight: ops::transpose_taps(&t.vector(&names::weight(&n.depthwise())), b.input_width(), kernel),
                    dw_bias: t.vector(&names::bias(&n.depthwise())),
                    pointwise: t.linear(&n.pointwise())?,
                    norm: t.norm(&n.norm()),
                },
                BlockSpec::BiConv { width, kernel } => {
                    let taps = crate::spec::bi_conv_centred_taps(&t.vector(&names::weight(&n.depthwise())), width, kernel);
                    Block::BiConv {
                        kernel: 2 * kernel - 1,
                        dw_weight: ops::transpose_taps(&taps, width, 2 * kernel - 1),
                        dw_bias: t.vector(&names::bias(&n.depthwise())),
                        pointwise: t.linear(&n.pointwise())?,
                        norm: t.norm(&n.norm()),
                    }
                }
                BlockSpec::Identity { .. } => Block::Identity,
                BlockSpec::Projection { .. } => Block::Projection { proj: t.linear(&n.proj())? },
            });
        }
        // A token head runs after the encoder, on its token states (crate::tag).
        let head = match spec.head.as_ref().filter(|h| h.kind == crate::spec::HeadKind::Sequence) {
            None => None,
            Some(h) => Some(Head { pooler: if h.pooler { Some(t.linear(names::POOLER)?) } else { None }, classifier: t.linear(names::CLASSIFIER)? }),
        };
        Ok(Encoder {
            word: t.table(names::WORD_EMBEDDINGS)?,
            position: t.table(names::POSITION_EMBEDDINGS)?,
            token_type: t.table(names::TOKEN_TYPE_EMBEDDINGS)?,
            emb_norm: t.norm(names::EMBEDDING_NORM),
            spec,
            blocks,
            head,
        })
    }

    /// The model description.
    pub fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    /// Runs the encoder over checked inputs. Call inside the model's thread pool.
    pub fn forward(&self, inputs: &[Input], team: &Team, keep_hidden: bool) -> Forward {
        // A check that cannot fail: the pass always completes, and the types say so.
        match self.forward_checked(inputs, team, keep_hidden.into(), None, &|| Ok::<(), Infallible>(())) {
            Ok(f) => f,
            Err(never) => match never {},
        }
    }

    /// [`Encoder::forward`], recording the wall time of the embeddings and of each block
    /// (milliseconds, in order) when `times` is given, and calling `check` before each block:
    /// its error stops the pass (a cancelled call).
    pub fn forward_checked<E>(
        &self,
        inputs: &[Input],
        team: &Team,
        keep: Keep,
        mut times: Option<&mut Vec<f64>>,
        check: &dyn Fn() -> Result<(), E>,
    ) -> Result<Forward, E> {
        let mut clock = std::time::Instant::now();
        let mut lap = |times: &mut Option<&mut Vec<f64>>| {
            if let Some(t) = times.as_deref_mut() {
                t.push(clock.elapsed().as_secs_f64() * 1e3);
                clock = std::time::Instant::now();
            }
        };
        let mut offsets = Vec::with_capacity(inputs.len() + 1);
        offsets.push(0);
        for inp in inputs {
            offsets.push(offsets.last().copied().unwrap_or(0) + inp.ids.len());
        }
        let t = offsets.last().copied().unwrap_or(0);
        let mut width = self.spec.embeddings.width;
        let eps = self.spec.layer_norm_eps;

        // Embeddings: word + position + segment, then LayerNorm.
        let mut x = vec![0f32; t * width];
        let mut tmp = vec![0f32; width];
        let mut row = 0;
        for inp in inputs {
            for (pos, (&id, &tt)) in inp.ids.iter().zip(&inp.type_ids).enumerate() {
                let dst = &mut x[row * width..(row + 1) * width];
                self.word.rows_f32(id as usize, width, dst);
                self.position.rows_f32(pos, width, &mut tmp);
                ops::add_in_place(dst, &tmp);
                self.token_type.rows_f32(tt as usize, width, &mut tmp);
                ops::add_in_place(dst, &tmp);
                row += 1;
            }
        }
        layer_norm_rows(&mut x, width, &self.emb_norm, eps, team);
        lap(&mut times);
        let mut hidden = Vec::new();
        let mut attentions = Vec::new();
        if keep.hidden {
            hidden.push(x.clone());
        }

        for block in &self.blocks {
            check()?;
            match block {
                Block::Attention { heads, head_dim, qkv, out, norm } => {
                    let qkv_x = qkv.forward(&x, t, team);
                    let mut probs = Vec::new();
                    if keep.attention {
                        let squares: usize = offsets.windows(2).map(|w| (w[1] - w[0]).pow(2)).sum();
                        probs = vec![0f32; heads * squares];
                    }
                    let keep_probs = keep.attention.then_some(probs.as_mut_slice());
                    let ctx = attention(&qkv_x, &offsets, *heads, *head_dim, keep_probs, team);
                    if keep.attention {
                        attentions.push(probs);
                    }
                    let o = out.forward(&ctx, t, team);
                    ops::add_in_place(&mut x, &o);
                    layer_norm_rows(&mut x, width, norm, eps, team);
                }
                Block::FeedForward { inp, out, norm } => {
                    let h = inp.forward_gelu(&x, t, team);
                    let o = out.forward(&h, t, team);
                    ops::add_in_place(&mut x, &o);
                    layer_norm_rows(&mut x, width, norm, eps, team);
                }
                Block::SepConv { kernel, dw_weight, dw_bias, pointwise, norm } => {
                    let mut c = vec![0f32; t * width];
                    for w in offsets.windows(2) {
                        let (a, b) = (w[0] * width, w[1] * width);
                        ops::depthwise_conv(&x[a..b], width, dw_weight, dw_bias, *kernel, &mut c[a..b]);
                    }
                    map_rows(&mut c, width, team, ops::gelu);
                    let o = pointwise.forward(&c, t, team);
                    ops::add_in_place(&mut x, &o);
                    layer_norm_rows(&mut x, width, norm, eps, team);
                }
                Block::BiConv { kernel, dw_weight, dw_bias, pointwise, norm } => {
                    let mut c = vec![0f32; t * width];
                    for w in offsets.windows(2) {
                        let (a, b) = (w[0] * width, w[1] * width);
                        ops::depthwise_conv(&x[a..b], width, dw_weight, dw_bias, *kernel, &mut c[a..b]);
                    }
                    map_rows(&mut c, width, team, ops::gelu);
                    // A row of both streams is two rows of one: the shared map and norm run on
                    // `2·T` rows of `width / 2`.
                    let half = width / 2;
                    let o = pointwise.forward(&c, 2 * t, team);
                    ops::add_in_place(&mut x, &o);
                    layer_norm_rows(&mut x, half, norm, eps, team);
                }
                Block::Identity => {}
                Block::Projection { proj } => {
                    x = proj.forward(&x, t, team);
                    width = proj.out;
                }
            }
            lap(&mut times);
            if keep.hidden {
                hidden.push(x.clone());
            }
        }
        Ok(Forward { states: x, width, offsets, hidden, attentions })
    }

    /// Pools each sentence of a forward pass into one vector (normalised if the model says so).
    pub fn pool(&self, f: &Forward) -> Vec<Vec<f32>> {
        (0..f.offsets.len() - 1)
            .map(|i| {
                let rows = f.sentence(i);
                let mut v = match self.spec.pooling.mode {
                    PoolingMode::Cls => rows[..f.width].to_vec(),
                    PoolingMode::Mean => ops::mean_rows(rows, f.width),
                };
                if self.spec.pooling.normalize {
                    ops::l2_normalize(&mut v);
                }
                v
            })
            .collect()
    }

    /// Logits of the classification head for each sentence, or `None` without a head.
    pub fn logits(&self, f: &Forward, team: &Team) -> Option<Vec<Vec<f32>>> {
        let head = self.head.as_ref()?;
        let w = f.width;
        let n = f.offsets.len() - 1;
        let mut cls = Vec::with_capacity(n * w);
        for i in 0..n {
            cls.extend_from_slice(&f.sentence(i)[..w]);
        }
        if let Some(pooler) = &head.pooler {
            cls = pooler.forward(&cls, n, team);
            cls.iter_mut().for_each(|v| *v = v.tanh());
        }
        let logits = head.classifier.forward(&cls, n, team);
        Some(logits.chunks(head.classifier.out).map(<[f32]>::to_vec).collect())
    }
}

/// Applies `f` to row blocks of `x` in parallel when there is enough work.
pub(crate) fn map_rows(x: &mut [f32], width: usize, team: &Team, f: impl Fn(&mut [f32]) + Sync) {
    let rows = x.len() / width;
    if team.size() > 1 && x.len() >= 1 << 14 {
        let per = rows.div_ceil(team.size());
        let base = SendPtr(x.as_mut_ptr());
        team.run(team.size(), &|t| {
            let (r0, r1) = (t * per, ((t + 1) * per).min(rows));
            if r0 < r1 {
                let b = base;
                // SAFETY: tasks take disjoint row ranges of x.
                f(unsafe { std::slice::from_raw_parts_mut(b.0.add(r0 * width), (r1 - r0) * width) });
            }
        });
    } else {
        f(x);
    }
}

fn layer_norm_rows(x: &mut [f32], width: usize, n: &Norm, eps: f32, team: &Team) {
    map_rows(x, width, team, |rows| ops::layer_norm(rows, width, &n.gamma, &n.beta, eps));
}

/// Multi-head attention of every sentence: `qkv` is `T × 3·heads·head_dim` (queries, keys,
/// values); returns the context `T × heads·head_dim`. With `probs`, each (sentence, head)'s
/// probabilities go there too: sentence after sentence, `heads × len × len` each.
fn attention(qkv: &[f32], offsets: &[usize], heads: usize, head_dim: usize, probs: Option<&mut [f32]>, team: &Team) -> Vec<f32> {
    let inner = heads * head_dim;
    let t = offsets.last().copied().unwrap_or(0);
    let mut ctx = vec![0f32; t * inner];
    let dst = SendPtr(ctx.as_mut_ptr());
    let scale = 1.0 / (head_dim as f32).sqrt();
    let jobs: Vec<(usize, usize)> = (0..offsets.len() - 1).flat_map(|s| (0..heads).map(move |h| (s, h))).collect();
    // Where each sentence's probabilities start in `probs`.
    let mut prob_base = Vec::with_capacity(offsets.len());
    let mut acc = 0;
    for w in offsets.windows(2) {
        prob_base.push(acc);
        acc += heads * (w[1] - w[0]).pow(2);
    }
    let probs = probs.map(|p| {
        assert_eq!(p.len(), acc, "attention probabilities: the buffer must hold every sentence's heads");
        SendPtr(p.as_mut_ptr())
    });
    let run = |j: usize| {
        let (s, h) = jobs[j];
        let (start, len) = (offsets[s], offsets[s + 1] - offsets[s]);
        let stride = 3 * inner;
        let base = qkv[start * stride..].as_ptr();
        let mut scores = vec![0f32; len * len];
        // SAFETY: q, k and v of this head are `len` rows with row stride `stride` inside `qkv`;
        // scores is len×len; the output rows start..start+len, columns h·d.. of ctx belong to
        // this (sentence, head) pair alone.
        unsafe {
            let q = base.add(h * head_dim);
            let k = base.add(inner + h * head_dim);
            let v = base.add(2 * inner + h * head_dim);
            // scores = q · kᵀ, then softmax(scores · scale) row by row
            gemm_strided(len, len, head_dim, q, stride as isize, k, 1, stride as isize, scores.as_mut_ptr(), len as isize, 1.0, Parallelism::None);
            ops::softmax_rows(&mut scores, len, scale);
            if let Some(p) = probs {
                // This (sentence, head)'s square of `probs` is written by this job alone.
                let at = p.0.add(prob_base[s] + h * len * len);
                std::ptr::copy_nonoverlapping(scores.as_ptr(), at, len * len);
            }
            // ctx = p · v
            let out = dst;
            let o = out.0.add(start * inner + h * head_dim);
            gemm_strided(len, head_dim, len, scores.as_ptr(), len as isize, v, stride as isize, 1, o, inner as isize, 1.0, Parallelism::None);
        }
    };
    team.run(jobs.len(), &run);
    ctx
}
