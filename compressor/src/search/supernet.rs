//! The supernet of the search space, with weight sharing as DynaBERT and HAT do: each stage
//! holds, per slot, one module per op family at its largest size, and a candidate uses the
//! top-left corner of each (its first channels, heads and inner units). It starts from the
//! teacher with channels, heads and neurons ordered by ETD importance, so every corner holds
//! the teacher's most important units, and it trains block-wise: each stage maps the teacher's
//! state at the stage's input to the teacher's state at its output, through its own maps into
//! and out of the teacher's width.
//!
//! The word embedding is factorised: the teacher's tables turned into the basis of the word
//! table's principal directions (leading first), so a narrower table is the best one of its
//! width for the words; a LayerNorm and a map back to the teacher's width follow.

use bertling_runtime::rng::XorShift;
use bertling_runtime::spec::names;
use bertling_runtime::{ModelData, TensorData as Rt};
use burn::module::Param;
use burn::prelude::*;
use crate::fused::gelu;

use super::linalg::symmetric_eigen;
use super::space::{Arch, Op, SearchSpace, Stage};
use crate::error::{CompressError, Result};
use crate::etd::{bert_dims, Importance};
use crate::student::{attend, depthwise, Batch, Masks};

/// A linear map stored at its largest size `[out_max, in_max]`; a candidate uses a corner.
#[derive(Module, Debug)]
pub struct Shared {
    pub weight: Param<Tensor<2>>,
    pub bias: Param<Tensor<1>>,
}

impl Shared {
    fn new(weight: Vec<f32>, bias: Vec<f32>, rows: usize, cols: usize, device: &Device) -> Shared {
        let w = Tensor::from_data(TensorData::new(weight, [rows, cols]), device);
        let b = Tensor::from_data(TensorData::new(bias, [rows]), device);
        Shared { weight: Param::from_tensor(w), bias: Param::from_tensor(b) }
    }

    /// The corner `[out, inp]` and its bias.
    pub fn corner(&self, out: usize, inp: usize) -> (Tensor<2>, Tensor<1>) {
        (self.weight.val().narrow(0, 0, out).narrow(1, 0, inp), self.bias.val().narrow(0, 0, out))
    }

    /// `x · Wᵀ + b` with the corner `[out, inp]`.
    pub fn forward(&self, x: Tensor<3>, out: usize, inp: usize) -> Tensor<3> {
        let (w, b) = self.corner(out, inp);
        crate::student::matmul_rows(x, w, b)
    }
}

/// A LayerNorm whose first `width` channels serve a candidate of that width.
#[derive(Module, Debug)]
pub struct SharedNorm {
    pub gamma: Param<Tensor<1>>,
    pub beta: Param<Tensor<1>>,
    pub eps: f64,
}

impl SharedNorm {
    fn new(gamma: Vec<f32>, beta: Vec<f32>, eps: f64, device: &Device) -> SharedNorm {
        let n = gamma.len();
        SharedNorm {
            gamma: Param::from_tensor(Tensor::from_data(TensorData::new(gamma, [n]), device)),
            beta: Param::from_tensor(Tensor::from_data(TensorData::new(beta, [n]), device)),
            eps,
        }
    }

    /// `(gamma, beta)` of the first `width` channels.
    pub fn corner(&self, width: usize) -> (Tensor<1>, Tensor<1>) {
        (self.gamma.val().narrow(0, 0, width), self.beta.val().narrow(0, 0, width))
    }

    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let (g, b) = self.corner(x.dims()[2]);
        crate::fused::layer_norm(x, g, b, self.eps)
    }
}

/// Attention of one head width; a candidate of width `w` has `w / head_dim` heads.
#[derive(Module, Debug)]
pub struct SuperAttention {
    pub head_dim: usize,
    pub q: Shared,
    pub k: Shared,
    pub v: Shared,
    pub out: Shared,
    pub norm: SharedNorm,
}

#[derive(Module, Debug)]
pub struct SuperFeedForward {
    pub inp: Shared,
    pub out: Shared,
    pub norm: SharedNorm,
}

/// A separable convolution of one kernel size.
#[derive(Module, Debug)]
pub struct SuperConv {
    pub kernel: usize,
    /// `[width_max, kernel]`.
    pub taps: Param<Tensor<2>>,
    pub taps_bias: Param<Tensor<1>>,
    pub pointwise: Shared,
    pub norm: SharedNorm,
}

/// Every op a slot may hold.
#[derive(Module, Debug)]
pub struct SuperSlot {
    /// The teacher block the slot stands for (even: attention, odd: feed-forward).
    pub block: usize,
    pub attention: Vec<SuperAttention>,
    pub feed_forward: SuperFeedForward,
    pub sep_conv: Vec<SuperConv>,
}

/// One stage: maps into (`input`, `[W, T]`) and out of (`output`, `[T, W]`) the teacher's width
/// `T`, and its slots at the largest width `W`.
#[derive(Module, Debug)]
pub struct SuperStage {
    pub input: Shared,
    pub output: Shared,
    pub slots: Vec<SuperSlot>,
}

/// The factorised embeddings: tables in the word table's principal basis (not trained in the
/// supernet), a LayerNorm, and the map back to the teacher's width `[T, E]`.
#[derive(Module, Debug)]
pub struct SuperEmbedding {
    pub word: Param<Tensor<2>>,
    pub position: Param<Tensor<2>>,
    pub token_type: Param<Tensor<2>>,
    pub norm: SharedNorm,
    pub proj: Shared,
}

#[derive(Module, Debug)]
pub struct Supernet {
    pub embedding: SuperEmbedding,
    pub stages: Vec<SuperStage>,
}

/// A teacher matrix on the host with its shape.
struct HostMatrix {
    data: Vec<f32>,
    cols: usize,
}

impl HostMatrix {
    fn of(teacher: &ModelData, name: &str) -> Result<HostMatrix> {
        let t = teacher.tensors.get(name).ok_or_else(|| CompressError::Tensor {
            name: name.into(),
            what: "is missing from the teacher".into(),
        })?;
        let shape = t.shape();
        Ok(HostMatrix { data: t.to_f32(), cols: *shape.last().unwrap_or(&1) })
    }

    /// The sub-matrix on `rows` × `cols` (`None`: a fresh value, uniform ±`scale`).
    fn gather(
        &self,
        rows: &[Option<usize>],
        cols: &[Option<usize>],
        rng: &mut XorShift,
        scale: f32,
    ) -> Vec<f32> {
        let mut out = Vec::with_capacity(rows.len() * cols.len());
        for r in rows {
            for c in cols {
                out.push(match (r, c) {
                    (Some(r), Some(c)) => self.data[r * self.cols + c],
                    _ => rng.symmetric(scale),
                });
            }
        }
        out
    }

    /// The entries `idx` of a vector (`None`: `fill`).
    fn pick(&self, idx: &[Option<usize>], fill: f32) -> Vec<f32> {
        idx.iter().map(|i| i.map_or(fill, |i| self.data[i])).collect()
    }
}

/// Indices by decreasing score (ties by index); all of them.
fn by_importance(scores: &[f32]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    idx
}

/// `n` positions mapped to `order[i]` while it lasts, then fresh (`None`).
fn take(order: &[usize], n: usize) -> Vec<Option<usize>> {
    (0..n).map(|i| order.get(i).copied()).collect()
}

impl Supernet {
    /// The supernet of `space` initialised from `teacher` (a standard BERT): stage `k`, slot
    /// `j` stands for teacher block `b = start_k + j`, and every candidate of the slot starts
    /// from teacher layer `b / 2`'s attention or feed-forward, cut to its shape, units in the
    /// order of `importance` (teacher order without it); convolutions start fresh (seeded).
    pub fn from_teacher(
        teacher: &ModelData,
        space: &SearchSpace,
        importance: Option<&Importance>,
        seed: u64,
        device: &Device,
    ) -> Result<Supernet> {
        let (t_width, t_heads, t_head_dim, t_inner, layers) = bert_dims(teacher)?;
        let big = space.widths.iter().copied().max().unwrap_or(0);
        let big_e = space.embedding_widths.iter().copied().max().unwrap_or(0);
        if big > t_width || big_e > t_width || space.out_width != t_width {
            return Err(CompressError::InvalidArgument(format!(
                "the search space's widths (up to {}) must not exceed the teacher's {t_width}",
                big.max(big_e)
            )));
        }
        if space.slots.iter().sum::<usize>() != 2 * layers {
            return Err(CompressError::InvalidArgument(format!(
                "the stages have {} slots; the teacher has {} blocks",
                space.slots.iter().sum::<usize>(),
                2 * layers
            )));
        }
        let mut rng = XorShift::new(seed);
        let hidden =
            importance.map_or_else(|| (0..t_width).collect(), |i| by_importance(&i.hidden));
        let eps = teacher.spec.layer_norm_eps as f64;
        let hid = |n: usize| take(&hidden, n);
        let embedding = embedding_from_teacher(teacher, big_e, eps, device)?;
        let mut stages = Vec::with_capacity(space.slots.len());
        let mut block = 0;
        for &n_slots in &space.slots {
            // Input: the first `big` channels in importance order; output: back to where they
            // came from (the transpose), so the full-width stage starts as the teacher's.
            let mut e = vec![0f32; big * t_width];
            for (r, &c) in hidden.iter().take(big).enumerate() {
                e[r * t_width + c] = 1.0;
            }
            let mut d = vec![0f32; t_width * big];
            for (r, &c) in hidden.iter().take(big).enumerate() {
                d[c * big + r] = 1.0;
            }
            let input = Shared::new(e, vec![0.0; big], big, t_width, device);
            let output = Shared::new(d, vec![0.0; t_width], t_width, big, device);
            let mut slots = Vec::with_capacity(n_slots);
            for _ in 0..n_slots {
                let l = block / 2;
                let (a, f) = (names::block(2 * l), names::block(2 * l + 1));
                let own_norm = if block % 2 == 0 { a.norm() } else { f.norm() };
                let norm_of = |layer: &str| -> Result<SharedNorm> {
                    let g = HostMatrix::of(teacher, &names::weight(layer))?.pick(&hid(big), 1.0);
                    let b = HostMatrix::of(teacher, &names::bias(layer))?.pick(&hid(big), 0.0);
                    Ok(SharedNorm::new(g, b, eps, device))
                };
                // Attention: heads in importance order, then each head's dimensions.
                let heads = importance
                    .map_or_else(|| (0..t_heads).collect(), |i| by_importance(&i.heads[l]));
                let inner_order: Vec<usize> =
                    heads.iter().flat_map(|&h| h * t_head_dim..(h + 1) * t_head_dim).collect();
                let qkv = HostMatrix::of(teacher, &names::weight(&a.qkv()))?;
                let qkv_b = HostMatrix::of(teacher, &names::bias(&a.qkv()))?;
                let wo = HostMatrix::of(teacher, &names::weight(&a.attn_out()))?;
                let wo_b = HostMatrix::of(teacher, &names::bias(&a.attn_out()))?;
                let a_all = t_heads * t_head_dim;
                let mut attention = Vec::new();
                for &head_dim in &space.head_dims {
                    // As many heads as the widest stage width this head size divides.
                    let Some(inner) =
                        space.widths.iter().copied().filter(|w| w.is_multiple_of(head_dim)).max()
                    else {
                        continue;
                    };
                    let rows = |part: usize| -> Vec<Option<usize>> {
                        take(&inner_order, inner)
                            .into_iter()
                            .map(|r| r.map(|r| part * a_all + r))
                            .collect()
                    };
                    let scale = 1.0 / (big as f32).sqrt();
                    let part = |part: usize, rng: &mut XorShift| {
                        Shared::new(
                            qkv.gather(&rows(part), &hid(big), rng, scale),
                            qkv_b.pick(&rows(part), 0.0),
                            inner,
                            big,
                            device,
                        )
                    };
                    attention.push(SuperAttention {
                        head_dim,
                        q: part(0, &mut rng),
                        k: part(1, &mut rng),
                        v: part(2, &mut rng),
                        out: Shared::new(
                            wo.gather(&hid(big), &take(&inner_order, inner), &mut rng, scale),
                            wo_b.pick(&hid(big), 0.0),
                            big,
                            inner,
                            device,
                        ),
                        norm: norm_of(&a.norm())?,
                    });
                }
                // Feed-forward: neurons in importance order.
                let max_inner = space.ffn_halves.iter().map(|h| big * h / 2).max().unwrap_or(big);
                let neurons = importance
                    .map_or_else(|| (0..t_inner).collect(), |i| by_importance(&i.neurons[l]));
                let w1 = HostMatrix::of(teacher, &names::weight(&f.ffn_in()))?;
                let b1 = HostMatrix::of(teacher, &names::bias(&f.ffn_in()))?;
                let w2 = HostMatrix::of(teacher, &names::weight(&f.ffn_out()))?;
                let b2 = HostMatrix::of(teacher, &names::bias(&f.ffn_out()))?;
                let ns = take(&neurons, max_inner);
                let feed_forward = SuperFeedForward {
                    inp: Shared::new(
                        w1.gather(&ns, &hid(big), &mut rng, 1.0 / (big as f32).sqrt()),
                        b1.pick(&ns, 0.0),
                        max_inner,
                        big,
                        device,
                    ),
                    out: Shared::new(
                        w2.gather(&hid(big), &ns, &mut rng, 1.0 / (max_inner as f32).sqrt()),
                        b2.pick(&hid(big), 0.0),
                        big,
                        max_inner,
                        device,
                    ),
                    norm: norm_of(&f.norm())?,
                };
                // Convolutions: fresh taps and a small pointwise map, so that the block starts
                // close to its norm alone; the norm is the slot's own teacher norm.
                let mut sep_conv = Vec::new();
                for &kernel in &space.kernels {
                    let taps: Vec<f32> =
                        (0..big * kernel).map(|_| rng.symmetric(1.0 / kernel as f32)).collect();
                    let pw: Vec<f32> = (0..big * big).map(|_| rng.symmetric(0.02)).collect();
                    sep_conv.push(SuperConv {
                        kernel,
                        taps: Param::from_tensor(Tensor::from_data(
                            TensorData::new(taps, [big, kernel]),
                            device,
                        )),
                        taps_bias: Param::from_tensor(Tensor::zeros([big], device)),
                        pointwise: Shared::new(pw, vec![0.0; big], big, big, device),
                        norm: norm_of(&own_norm)?,
                    });
                }
                slots.push(SuperSlot { block, attention, feed_forward, sep_conv });
                block += 1;
            }
            stages.push(SuperStage { input, output, slots });
        }
        Ok(Supernet { embedding, stages })
    }

    /// The largest candidate of stage `k`: the largest width, and in each slot the teacher's
    /// op there (attention with the most heads, the widest feed-forward) — at the teacher's width
    /// and head size, the teacher's own stage.
    pub fn largest(&self, k: usize) -> Stage {
        let stage = &self.stages[k];
        let width = stage.input.weight.dims()[0];
        let ops = stage
            .slots
            .iter()
            .map(|slot| {
                let full = slot.attention.iter().filter(|a| width.is_multiple_of(a.head_dim));
                match full.map(|a| a.head_dim).min() {
                    Some(d) if slot.block % 2 == 0 => {
                        Op::Attention { heads: width / d, head_dim: d }
                    }
                    _ => Op::FeedForward { inner: slot.feed_forward.inp.weight.dims()[0] },
                }
            })
            .collect();
        Stage { width, ops }
    }

    /// The largest embedding width.
    pub fn embedding_width(&self) -> usize {
        self.embedding.norm.gamma.dims()[0]
    }

    /// The teacher's width.
    pub fn out_width(&self) -> usize {
        self.embedding.proj.weight.dims()[0]
    }

    /// The embedding output at width `e`, mapped to the teacher's width: `[batch, seq, T]`.
    pub fn embed(&self, batch: &Batch, e: usize) -> Tensor<3> {
        let m = &self.embedding;
        let s = batch.ids.dims()[1];
        let word = m.word.val().detach().narrow(1, 0, e);
        let types = m.token_type.val().detach().narrow(1, 0, e);
        let pos = m.position.val().detach().narrow(1, 0, e).narrow(0, 0, s).unsqueeze::<3>();
        let x = burn::tensor::module::embedding(word, batch.ids.clone())
            + burn::tensor::module::embedding(types, batch.type_ids.clone())
            + pos;
        m.proj.forward(m.norm.forward(x), self.out_width(), e)
    }

    /// Stage `k` of the candidate `path` on the teacher-width input `x`: `[batch, seq, T]`.
    pub fn stage_forward(&self, k: usize, path: &Stage, x: Tensor<3>, masks: &Masks) -> Tensor<3> {
        let stage = &self.stages[k];
        let (t, w) = (self.out_width(), path.width);
        let mut h = stage.input.forward(x, w, t);
        for (slot, op) in stage.slots.iter().zip(&path.ops) {
            h = slot_forward(slot, *op, h, masks);
        }
        stage.output.forward(h, t, w)
    }

    /// The whole candidate `arch` on a batch: the final states at the teacher's width, as the
    /// exported student computes them.
    pub fn chain(&self, arch: &Arch, batch: &Batch) -> Tensor<3> {
        let masks = Masks::new(batch);
        let mut x = self.embed(batch, arch.embedding);
        for (k, stage) in arch.stages.iter().enumerate() {
            x = self.stage_forward(k, stage, x, &masks);
        }
        x
    }

    /// The student `arch` as a package-ready model (float weights): the corners of the
    /// supernet, the maps between stages multiplied out (`input_{k+1} · output_k`), with the
    /// teacher's vocabulary, tokenizer and pooling (no head).
    pub fn student(&self, arch: &Arch, teacher: &ModelData) -> Result<ModelData> {
        let t = self.out_width();
        let e = arch.embedding;
        let m = &self.embedding;
        // Matrices and vectors by package name, written out at the end.
        let mut blocks_out: Vec<(String, Tensor<2>)> = vec![
            (names::WORD_EMBEDDINGS.into(), m.word.val().narrow(1, 0, e)),
            (names::POSITION_EMBEDDINGS.into(), m.position.val().narrow(1, 0, e)),
            (names::TOKEN_TYPE_EMBEDDINGS.into(), m.token_type.val().narrow(1, 0, e)),
        ];
        let (g, b) = m.norm.corner(e);
        let mut biases: Vec<(String, Tensor<1>)> = vec![
            (names::weight(names::EMBEDDING_NORM), g),
            (names::bias(names::EMBEDDING_NORM), b),
        ];
        // The map into each stage: its input corner after the previous map out.
        let mut back = m.proj.corner(t, e); // [T, w_prev], [T]
        let mut i = 0;
        for (k, path) in arch.stages.iter().enumerate() {
            let stage = &self.stages[k];
            let w = path.width;
            let (ew, eb) = stage.input.corner(w, t);
            let p = ew.clone().matmul(back.0.clone());
            let pb = ew.matmul(back.1.clone().unsqueeze_dim::<2>(1)).reshape([w]) + eb;
            let n = names::block(i);
            blocks_out.push((names::weight(&n.proj()), p));
            biases.push((names::bias(&n.proj()), pb));
            i += 1;
            for (slot, op) in stage.slots.iter().zip(&path.ops) {
                let n = names::block(i);
                match *op {
                    Op::Identity => continue,
                    Op::Attention { heads, head_dim } => {
                        let a = attention_of(slot, head_dim);
                        let inner = heads * head_dim;
                        let (q, qb) = a.q.corner(inner, w);
                        let (kk, kb) = a.k.corner(inner, w);
                        let (v, vb) = a.v.corner(inner, w);
                        blocks_out.push((names::weight(&n.qkv()), Tensor::cat(vec![q, kk, v], 0)));
                        biases.push((names::bias(&n.qkv()), Tensor::cat(vec![qb, kb, vb], 0)));
                        let (o, ob) = a.out.corner(w, inner);
                        blocks_out.push((names::weight(&n.attn_out()), o));
                        biases.push((names::bias(&n.attn_out()), ob));
                        let (g, b) = a.norm.corner(w);
                        biases.push((names::weight(&n.norm()), g));
                        biases.push((names::bias(&n.norm()), b));
                    }
                    Op::FeedForward { inner } => {
                        let f = &slot.feed_forward;
                        let (w1, b1) = f.inp.corner(inner, w);
                        let (w2, b2) = f.out.corner(w, inner);
                        blocks_out.push((names::weight(&n.ffn_in()), w1));
                        biases.push((names::bias(&n.ffn_in()), b1));
                        blocks_out.push((names::weight(&n.ffn_out()), w2));
                        biases.push((names::bias(&n.ffn_out()), b2));
                        let (g, b) = f.norm.corner(w);
                        biases.push((names::weight(&n.norm()), g));
                        biases.push((names::bias(&n.norm()), b));
                    }
                    Op::SepConv { kernel } => {
                        let c = conv_of(slot, kernel);
                        blocks_out
                            .push((names::weight(&n.depthwise()), c.taps.val().narrow(0, 0, w)));
                        biases
                            .push((names::bias(&n.depthwise()), c.taps_bias.val().narrow(0, 0, w)));
                        let (pw, pb) = c.pointwise.corner(w, w);
                        blocks_out.push((names::weight(&n.pointwise()), pw));
                        biases.push((names::bias(&n.pointwise()), pb));
                        let (g, b) = c.norm.corner(w);
                        biases.push((names::weight(&n.norm()), g));
                        biases.push((names::bias(&n.norm()), b));
                    }
                }
                i += 1;
            }
            back = stage.output.corner(t, w);
        }
        let n = names::block(i);
        blocks_out.push((names::weight(&n.proj()), back.0));
        biases.push((names::bias(&n.proj()), back.1));
        let mut tensors = std::collections::BTreeMap::new();
        for (name, v) in blocks_out {
            let shape = v.dims().to_vec();
            tensors.insert(name, Rt::F32 { data: host(v)?, shape });
        }
        for (name, v) in biases {
            let shape = v.dims().to_vec();
            tensors.insert(name, Rt::F32 { data: host(v.unsqueeze::<2>())?, shape });
        }
        let mut spec = arch.spec(&teacher.spec);
        spec.provenance.recipe =
            serde_json::json!({"method": "nas-bert supernet", "arch": arch.to_string()});
        let out = ModelData { spec, tensors, tokenizer_json: teacher.tokenizer_json.clone() };
        out.validate()?;
        Ok(out)
    }
}

fn attention_of(slot: &SuperSlot, head_dim: usize) -> &SuperAttention {
    slot.attention
        .iter()
        .find(|a| a.head_dim == head_dim)
        .expect("the space's head widths have modules")
}

fn conv_of(slot: &SuperSlot, kernel: usize) -> &SuperConv {
    slot.sep_conv.iter().find(|c| c.kernel == kernel).expect("the space's kernels have modules")
}

/// One slot holding `op` on `h` (`[batch, seq, w]`).
fn slot_forward(slot: &SuperSlot, op: Op, h: Tensor<3>, masks: &Masks) -> Tensor<3> {
    let w = h.dims()[2];
    match op {
        Op::Identity => h,
        Op::Attention { heads, head_dim } => {
            let a = attention_of(slot, head_dim);
            let inner = heads * head_dim;
            let qkv = Tensor::cat(
                vec![
                    a.q.forward(h.clone(), inner, w),
                    a.k.forward(h.clone(), inner, w),
                    a.v.forward(h.clone(), inner, w),
                ],
                2,
            );
            let (ctx, _) = attend(qkv, heads, head_dim, masks);
            a.norm.forward(h + a.out.forward(ctx, w, inner))
        }
        Op::FeedForward { inner } => {
            let f = &slot.feed_forward;
            let mid = gelu(f.inp.forward(h.clone(), inner, w));
            f.norm.forward(h + f.out.forward(mid, w, inner))
        }
        Op::SepConv { kernel } => {
            let c = conv_of(slot, kernel);
            let acc = depthwise(
                h.clone(),
                c.taps.val().narrow(0, 0, w),
                c.taps_bias.val().narrow(0, 0, w),
                masks,
            );
            c.norm.forward(h + c.pointwise.forward(gelu(acc), w, w))
        }
    }
}

/// A tensor's values on the host, row-major.
fn host(t: Tensor<2>) -> Result<Vec<f32>> {
    t.into_data()
        .try_into_vec_as::<f32>()
        .map_err(|e| CompressError::InvalidArgument(format!("reading a tensor: {e:?}")))
}

/// The factorised embeddings at the largest width `big_e`: the teacher's tables in the word
/// table's principal basis `R` (eigenvectors of `WᵀW`, leading first), a LayerNorm (1, 0), and
/// the map back `diag(γ)·Rᵀ` (+ β), with the teacher's embedding norm `γ, β`.
fn embedding_from_teacher(
    teacher: &ModelData,
    big_e: usize,
    eps: f64,
    device: &Device,
) -> Result<SuperEmbedding> {
    let host_dev = Device::flex();
    let table = |name: &str| -> Result<Tensor<2>> {
        let t = teacher.tensors.get(name).ok_or_else(|| CompressError::Tensor {
            name: name.into(),
            what: "is missing from the teacher".into(),
        })?;
        let shape = t.shape();
        Ok(Tensor::from_data(TensorData::new(t.to_f32(), [shape[0], shape[1]]), &host_dev))
    };
    let word = table(names::WORD_EMBEDDINGS)?;
    let t = word.dims()[1];
    let gram = host(word.clone().transpose().matmul(word.clone()))?;
    let (_, vectors) = symmetric_eigen(&gram.iter().map(|&x| x as f64).collect::<Vec<_>>(), t);
    let r: Vec<f32> = (0..t)
        .flat_map(|i| (0..big_e).map(move |j| (i, j)))
        .map(|(i, j)| vectors[i * t + j] as f32)
        .collect();
    let r = Tensor::<2>::from_data(TensorData::new(r, [t, big_e]), &host_dev); // [T, E]
    let turn = |m: Tensor<2>| -> Result<Param<Tensor<2>>> {
        let out = m.matmul(r.clone());
        let dims = out.dims();
        Ok(Param::from_tensor(Tensor::from_data(TensorData::new(host(out)?, dims), device)))
    };
    let gamma = HostMatrix::of(teacher, &names::weight(names::EMBEDDING_NORM))?.data;
    let beta = HostMatrix::of(teacher, &names::bias(names::EMBEDDING_NORM))?.data;
    let rt = host(r.clone().transpose())?; // [E, T]
    let mut proj = vec![0f32; t * big_e];
    for i in 0..t {
        for j in 0..big_e {
            proj[i * big_e + j] = gamma[i] * rt[j * t + i];
        }
    }
    Ok(SuperEmbedding {
        word: turn(word)?,
        position: turn(table(names::POSITION_EMBEDDINGS)?)?,
        token_type: turn(table(names::TOKEN_TYPE_EMBEDDINGS)?)?,
        norm: SharedNorm::new(vec![1.0; big_e], vec![0.0; big_e], eps, device),
        proj: Shared::new(proj, beta, t, big_e, device),
    })
}
