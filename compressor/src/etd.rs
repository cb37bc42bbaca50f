//! Extract Then Distill (ETD): a student initialised from the teacher's own weights.
//!
//! Depth: student layer j takes teacher layer ⌈(j+1)·L_t/L_s⌉ − 1 (uniform selection, the
//! same pairing the distillation's uniform layer map uses). Width: the student keeps a subset
//! of the hidden dimensions (the same subset in every layer, so residual paths line up), of
//! the heads of each layer and of the feed-forward neurons of each layer, and every matrix is
//! the teacher's sub-matrix on those rows and columns.
//!
//! - `etd-rand`: the subsets are drawn at random (seeded).
//! - `etd-impt`: the most important units are kept. Importance is measured on the teacher over
//!   a sample of the corpus ([`importance`]):
//!   - hidden dimension d: mean |h_d| over every token of every layer output;
//!   - head h of a layer: mean over tokens of ‖ctx_h‖₂ · ‖W_O[:, h]‖_F, the size of the
//!     head's contribution to the attention output;
//!   - neuron i of a layer: mean over tokens of |GELU(a_i)| · ‖W_2[:, i]‖₂, the size of its
//!     contribution to the feed-forward output.
//! - `random`: the student's shape with fresh weights (N(0, 0.02), LayerNorm 1/0, biases 0).

use std::collections::BTreeMap;

use bertling_runtime::rng::XorShift;
use bertling_runtime::spec::{names, BlockSpec};
use bertling_runtime::{Input, ModelData, TensorData as Rt};
use burn::prelude::*;
use crate::fused::gelu;

use crate::error::{CompressError, Result};
use crate::student::Batch;

/// The shape of a uniform BERT student.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StudentShape {
    pub layers: usize,
    pub width: usize,
    pub heads: usize,
    pub inner: usize,
}

impl StudentShape {
    /// The shape with what the user chose and the rest from the teacher: half its layers, its
    /// width, its heads and feed-forward units scaled with the width.
    pub fn from_teacher(
        teacher: &ModelData,
        layers: Option<usize>,
        width: Option<usize>,
        heads: Option<usize>,
        inner: Option<usize>,
    ) -> Result<StudentShape> {
        let t = &teacher.spec;
        let tw = t.embeddings.width;
        let Some(BlockSpec::Attention { heads: th, .. }) = t.blocks.first() else {
            return Err(CompressError::InvalidArgument("the teacher must start with an attention block".into()));
        };
        let t_inner = t.blocks.iter().find_map(|b| match b {
            BlockSpec::FeedForward { inner, .. } => Some(*inner),
            _ => None,
        });
        let t_inner = t_inner.unwrap_or(4 * tw);
        let width = width.unwrap_or(tw);
        Ok(StudentShape {
            layers: layers.unwrap_or((t.blocks.len() / 4).max(1)),
            width,
            heads: heads.unwrap_or((th * width / tw).max(1)),
            inner: inner.unwrap_or((t_inner * width / tw).max(1)),
        })
    }
}

/// How the student starts.
#[derive(Clone, Debug, PartialEq)]
pub enum Init {
    EtdRand,
    EtdImpt(Importance),
    Random,
}

/// Importance scores of the teacher's units (higher = keep).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Importance {
    pub hidden: Vec<f32>,
    /// Per layer, per head.
    pub heads: Vec<Vec<f32>>,
    /// Per layer, per feed-forward neuron.
    pub neurons: Vec<Vec<f32>>,
}

impl Importance {
    /// Seeded random scores of the teacher's units: ordering by them draws the random subsets
    /// of `etd-rand` where a caller wants importance-shaped input (the search's supernet).
    pub fn random(teacher: &ModelData, seed: u64) -> Result<Importance> {
        let (width, heads, _, inner, layers) = bert_dims(teacher)?;
        let mut rng = bertling_runtime::rng::XorShift::new(seed);
        let mut draw = |n: usize| (0..n).map(|_| rng.unit()).collect::<Vec<f32>>();
        Ok(Importance {
            hidden: draw(width),
            heads: (0..layers).map(|_| draw(heads)).collect(),
            neurons: (0..layers).map(|_| draw(inner)).collect(),
        })
    }
}

/// The teacher as a standard BERT: (width, heads, head_dim, inner, layers).
pub fn bert_dims(teacher: &ModelData) -> Result<(usize, usize, usize, usize, usize)> {
    let blocks = &teacher.spec.blocks;
    let bad = || CompressError::InvalidArgument("ETD needs a standard BERT teacher (attention and feed-forward blocks alternating, one width)".into());
    if blocks.is_empty() || !blocks.len().is_multiple_of(2) {
        return Err(bad());
    }
    let (width, heads, head_dim) = match blocks[0] {
        BlockSpec::Attention { width, heads, head_dim } => (width, heads, head_dim),
        _ => return Err(bad()),
    };
    let inner = match blocks[1] {
        BlockSpec::FeedForward { inner, .. } => inner,
        _ => return Err(bad()),
    };
    for pair in blocks.chunks(2) {
        if pair[0] != (BlockSpec::Attention { width, heads, head_dim }) || pair[1] != (BlockSpec::FeedForward { width, inner }) {
            return Err(bad());
        }
    }
    Ok((width, heads, head_dim, inner, blocks.len() / 2))
}

/// Measures unit importance on the teacher over `sample` (see the module docs).
pub fn importance(teacher: &ModelData, sample: &[Input]) -> Result<Importance> {
    let (width, heads, head_dim, inner, layers) = bert_dims(teacher)?;
    if sample.is_empty() {
        return Err(CompressError::InvalidArgument("importance needs a non-empty sample of the corpus".into()));
    }
    let device = Device::flex();
    let enc = crate::convert::encoder_from_data(teacher, &device)?;
    let batch = Batch::new(sample, &device);
    let out = enc.forward(&batch);
    let mask = batch.mask.clone().unsqueeze_dim::<3>(2); // [b, s, 1]
    let tokens: f32 = sample.iter().map(|i| i.ids.len()).sum::<usize>() as f32;
    let vec = |t: Tensor<1>| t.into_data().try_into_vec_as::<f32>().unwrap_or_default();
    let mut hidden = vec![0f32; width];
    for h in &out.hidden {
        let s = vec((h.clone().abs() * mask.clone()).sum_dim(0).sum_dim(1).reshape([width]));
        hidden.iter_mut().zip(s).for_each(|(a, b)| *a += b / (tokens * out.hidden.len() as f32));
    }
    let [b, s, _] = out.hidden[0].dims();
    let mut head_scores = Vec::with_capacity(layers);
    let mut neuron_scores = Vec::with_capacity(layers);
    for l in 0..layers {
        let att = enc.blocks[2 * l].attention().ok_or_else(|| CompressError::InvalidArgument("not a BERT teacher".into()))?;
        let ffn = enc.blocks[2 * l + 1].feed_forward().ok_or_else(|| CompressError::InvalidArgument("not a BERT teacher".into()))?;
        // Heads: the context of each head from the layer's own attention probabilities.
        let x = out.hidden[2 * l].clone();
        let all = heads * head_dim;
        let v = att.qkv.forward(x).narrow(2, 2 * all, all).reshape([b, s, heads, head_dim]).swap_dims(1, 2);
        let ctx = out.attentions[l].clone().matmul(v); // [b, heads, s, d]
        let norms = ctx.powi_scalar(2).sum_dim(3).sqrt(); // [b, heads, s, 1]
        let m = batch.mask.clone().reshape([b, 1, s, 1]);
        let per_head = vec((norms * m).sum_dim(0).sum_dim(2).reshape([heads]));
        let wo = att.out.weight.val(); // [width, heads·d]
        let mut scores = Vec::with_capacity(heads);
        for (h, ctx_sum) in per_head.iter().enumerate() {
            let w = vec(wo.clone().narrow(1, h * head_dim, head_dim).powi_scalar(2).sum().sqrt());
            scores.push(ctx_sum / tokens * w[0]);
        }
        head_scores.push(scores);
        // Neurons: mean |GELU(a)| times the norm of the outgoing column.
        let a = gelu(ffn.inp.forward(out.hidden[2 * l + 1].clone())).abs() * mask.clone();
        let act = vec(a.sum_dim(0).sum_dim(1).reshape([inner]));
        let col = vec(ffn.out.weight.val().powi_scalar(2).sum_dim(0).sqrt().reshape([inner]));
        neuron_scores.push(act.iter().zip(&col).map(|(a, c)| a / tokens * c).collect());
    }
    Ok(Importance { hidden, heads: head_scores, neurons: neuron_scores })
}

/// Indices of the `k` largest scores, in increasing index order.
fn top_k(scores: &[f32], k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    let mut keep = idx[..k.min(idx.len())].to_vec();
    keep.sort_unstable();
    keep
}

/// `k` of `n` indices at random, in increasing order.
fn random_k(n: usize, k: usize, rng: &mut XorShift) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        idx.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let mut keep = idx[..k.min(n)].to_vec();
    keep.sort_unstable();
    keep
}

fn gather(t: &Rt, rows: Option<&[usize]>, cols: Option<&[usize]>) -> Rt {
    let shape = t.shape();
    let v = t.to_f32();
    match shape.len() {
        1 => {
            let r: Vec<usize> = rows.map(<[usize]>::to_vec).unwrap_or_else(|| (0..shape[0]).collect());
            Rt::F32 { shape: vec![r.len()], data: r.iter().map(|&i| v[i]).collect() }
        }
        _ => {
            let (nr, nc) = (shape[0], shape[1]);
            let r: Vec<usize> = rows.map(<[usize]>::to_vec).unwrap_or_else(|| (0..nr).collect());
            let c: Vec<usize> = cols.map(<[usize]>::to_vec).unwrap_or_else(|| (0..nc).collect());
            let mut data = Vec::with_capacity(r.len() * c.len());
            for &i in &r {
                data.extend(c.iter().map(|&j| v[i * nc + j]));
            }
            Rt::F32 { shape: vec![r.len(), c.len()], data }
        }
    }
}

/// Builds the student: its description and weights by ETD (or fresh ones), with the
/// teacher's tokenizer, pooling and head.
pub fn extract(teacher: &ModelData, shape: &StudentShape, init: &Init, seed: u64) -> Result<ModelData> {
    let (width, heads, head_dim, inner, layers) = bert_dims(teacher)?;
    if shape.layers == 0
        || shape.layers > layers
        || shape.width == 0
        || shape.width > width
        || shape.heads == 0
        || shape.heads > heads
        || shape.inner == 0
        || shape.inner > inner
    {
        return Err(CompressError::InvalidArgument(format!(
            "student {shape:?} must fit in the teacher (layers ≤ {layers}, width ≤ {width}, heads ≤ {heads}, inner ≤ {inner}), all at least 1"
        )));
    }
    let mut rng = XorShift::new(seed);
    let picked_layers: Vec<usize> = (0..shape.layers).map(|j| ((j + 1) * layers).div_ceil(shape.layers) - 1).collect();
    let dims = match init {
        Init::EtdImpt(imp) => top_k(&imp.hidden, shape.width),
        _ => random_k(width, shape.width, &mut rng),
    };
    let mut spec = teacher.spec.clone();
    spec.embeddings.width = shape.width;
    spec.blocks = (0..shape.layers)
        .flat_map(|_| {
            [BlockSpec::Attention { width: shape.width, heads: shape.heads, head_dim }, BlockSpec::FeedForward { width: shape.width, inner: shape.inner }]
        })
        .collect();
    spec.quantized = Default::default();
    spec.provenance.recipe = serde_json::json!({
        "method": match init { Init::EtdRand => "etd-rand", Init::EtdImpt(_) => "etd-impt", Init::Random => "random" },
        "shape": shape, "layers": picked_layers, "seed": seed,
    });
    let mut tensors = BTreeMap::new();
    let t = |name: &str| -> Result<&Rt> { teacher.tensors.get(name).ok_or_else(|| CompressError::Tensor { name: name.into(), what: "is missing".into() }) };
    for name in [names::WORD_EMBEDDINGS, names::POSITION_EMBEDDINGS, names::TOKEN_TYPE_EMBEDDINGS] {
        tensors.insert(name.to_string(), gather(t(name)?, None, Some(&dims)));
    }
    // A layer of the student from the teacher's, its weight's rows and columns and its bias's
    // entries picked (None: all).
    let mut layer = |student: &str, teacher: &str, rows: Option<&[usize]>, cols: Option<&[usize]>| -> Result<()> {
        tensors.insert(names::weight(student), gather(t(&names::weight(teacher))?, rows, cols));
        tensors.insert(names::bias(student), gather(t(&names::bias(teacher))?, rows, None));
        Ok(())
    };
    layer(names::EMBEDDING_NORM, names::EMBEDDING_NORM, Some(&dims), None)?;
    for (j, &l) in picked_layers.iter().enumerate() {
        // Teacher layer l is blocks 2l (attention) and 2l + 1 (feed-forward); student layer j
        // the same at 2j and 2j + 1.
        let (ta, tf) = (names::block(2 * l), names::block(2 * l + 1));
        let (sa, sf) = (names::block(2 * j), names::block(2 * j + 1));
        let hs = match init {
            Init::EtdImpt(imp) => top_k(&imp.heads[l], shape.heads),
            _ => random_k(heads, shape.heads, &mut rng),
        };
        let ns = match init {
            Init::EtdImpt(imp) => top_k(&imp.neurons[l], shape.inner),
            _ => random_k(inner, shape.inner, &mut rng),
        };
        let head_cols: Vec<usize> = hs.iter().flat_map(|&h| h * head_dim..(h + 1) * head_dim).collect();
        let qkv_rows: Vec<usize> = (0..3).flat_map(|part| head_cols.iter().map(move |&c| part * heads * head_dim + c)).collect();
        layer(&sa.qkv(), &ta.qkv(), Some(&qkv_rows), Some(&dims))?;
        layer(&sa.attn_out(), &ta.attn_out(), Some(&dims), Some(&head_cols))?;
        layer(&sf.ffn_in(), &tf.ffn_in(), Some(&ns), Some(&dims))?;
        layer(&sf.ffn_out(), &tf.ffn_out(), Some(&dims), Some(&ns))?;
        layer(&sa.norm(), &ta.norm(), Some(&dims), None)?;
        layer(&sf.norm(), &tf.norm(), Some(&dims), None)?;
    }
    if let Some(h) = &teacher.spec.head {
        if h.pooler {
            layer(names::POOLER, names::POOLER, Some(&dims), Some(&dims))?;
        }
        layer(names::CLASSIFIER, names::CLASSIFIER, None, Some(&dims))?;
    }
    if *init == Init::Random {
        for (name, t) in tensors.iter_mut() {
            let shape = t.shape();
            let n: usize = shape.iter().product();
            let data = if name.ends_with("ln.weight") {
                vec![1.0; n]
            } else if name.ends_with("bias") {
                vec![0.0; n]
            } else {
                // Approximately N(0, 0.02): the sum of four uniforms, scaled.
                (0..n)
                    .map(|_| {
                        let mut s = 0.0;
                        for _ in 0..4 {
                            s += rng.unit() - 0.5;
                        }
                        s * 0.02 * 3f32.sqrt()
                    })
                    .collect()
            };
            *t = Rt::F32 { shape, data };
        }
    }
    let out = ModelData { spec, tensors, tokenizer_json: teacher.tokenizer_json.clone() };
    out.validate()?;
    Ok(out)
}

/// The initialisation named `etd-impt`, `etd-rand` or `random`; `etd-impt` measures
/// importance on the first 64 sentences of the corpus.
pub fn init_named(name: &str, teacher: &ModelData, corpus: &std::path::Path, max_len: usize) -> Result<Init> {
    match name {
        "etd-rand" => Ok(Init::EtdRand),
        "random" => Ok(Init::Random),
        "etd-impt" => {
            let mut c = crate::corpus::Corpus::open(corpus, &teacher.tokenizer_json, max_len.min(teacher.spec.max_seq_len))?;
            Ok(Init::EtdImpt(importance(teacher, &c.next_batch(64)?)?))
        }
        other => Err(CompressError::InvalidArgument(format!("init `{other}`: use etd-impt, etd-rand or random"))),
    }
}
