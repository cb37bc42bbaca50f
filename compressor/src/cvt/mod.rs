//! Cross-View Training (Clark et al., EMNLP 2018) of a light tagger: a small two-stream
//! convolutional encoder trained on a few labelled sentences and many unlabelled ones.
//!
//! The tagger (FORMAT.md, block kind `bi_conv`) is the teacher's WordPiece table narrowed to
//! its leading principal directions (ETD-style extraction, factorised: `E·R`, `R` the top
//! eigenvectors of `EᵀE`), a projection into two streams, and `bi_conv` blocks: the first
//! stream of a token sees only the tokens up to it, the second only those from it on, and
//! nothing mixes them until the head. So the four restricted views of the paper are halves of
//! the final states, with no second encoder: *forward* `f_t`, *backward* `b_t`, *future*
//! `f_{t-1}` (the left context alone, without the word) and *past* `b_{t+1}`; the primary
//! module reads `[f_t; b_t]`. Every op is a product over all tokens at once (no recurrence),
//! which is why it runs on the GPU as well as the CPU (ARCHITECTURE.md; the measurement is in
//! RESULTS.md, "Light tagger").
//!
//! Training ([`train`]): labelled batches train the primary modules (cross-entropy on the gold
//! tags, every task at once: UPOS and XPOS share the encoder); unlabelled batches train each
//! view's auxiliary module to match its task's primary predictions, held fixed; optionally, the
//! primary module of the first task also matches a fine-tuned BERT tagger on the unlabelled
//! text (distillation). Batches alternate. The package holds the encoder and the first task's
//! primary module as an ordinary token head; the auxiliary modules are dropped.

pub mod train;

use std::collections::BTreeMap;

use bertling_runtime::rng::XorShift;
use bertling_runtime::spec::{
    names, BlockSpec, EmbeddingSpec, HeadKind, HeadSpec, ModelSpec, PoolingMode, PoolingSpec,
    FORMAT_VERSION,
};
use bertling_runtime::{ModelData, TensorData as Rt};
use serde::{Deserialize, Serialize};

pub use self::train::{cvt, views, CvtConfig, CvtData, CvtLosses, CvtProgress, CvtReport, VIEWS};
use crate::error::{CompressError, Result};

/// The light tagger's architecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LightShape {
    /// Width of the factorised word table (its leading principal directions).
    pub embedding: usize,
    /// Channels of each stream (the states are twice as wide).
    pub width: usize,
    /// `bi_conv` blocks.
    pub layers: usize,
    /// Causal kernel of each block: a token's stream reads this many tokens (itself included).
    pub kernel: usize,
    /// Tokens per sentence (special tokens included).
    pub max_len: usize,
}

impl Default for LightShape {
    /// 64-wide words, two streams of 192, four blocks of kernel 3 (each stream reaches 8
    /// tokens), 128 tokens: about 1/30 of all-MiniLM-L6-v2's multiply-adds per token.
    fn default() -> Self {
        LightShape { embedding: 64, width: 192, layers: 4, kernel: 3, max_len: 128 }
    }
}

impl LightShape {
    fn check(&self, teacher: &ModelData) -> Result<()> {
        let tw = teacher.spec.embeddings.width;
        let bad = |what: String| Err(CompressError::InvalidArgument(what));
        if self.embedding == 0 || self.embedding > tw {
            return bad(format!("a word table {} wide: use 1..={tw} (the teacher's width)", self.embedding));
        }
        if self.width == 0 || self.layers == 0 {
            return bad("the light tagger needs streams and blocks (width and layers ≥ 1)".into());
        }
        if !(1..=bertling_runtime::spec::MAX_BI_CONV_KERNEL).contains(&self.kernel) {
            return bad(format!(
                "kernel {}: use 1..={}",
                self.kernel,
                bertling_runtime::spec::MAX_BI_CONV_KERNEL
            ));
        }
        if self.max_len < 2 {
            return bad("sentences of at least 2 tokens ([CLS] and [SEP])".into());
        }
        Ok(())
    }

    /// Multiply-adds per token of the encoder and a head of `labels` (what `MFLOPs per word`
    /// counts, times 2 and the tokens per word): the projection, each block's taps and
    /// pointwise products on both streams, the head.
    pub fn macs_per_token(&self, labels: usize) -> usize {
        let two = 2 * self.width;
        self.embedding * two + self.layers * (two * self.kernel + 2 * self.width * self.width) + two * labels
    }
}

/// The light tagger before training, from `teacher` (a BERT model data): the factorised word,
/// position and segment tables (`T·R`), a projection into the two streams and `bi_conv`
/// blocks on seeded random weights, no head. The tokenizer is the teacher's.
pub fn light_tagger(teacher: &ModelData, shape: &LightShape, seed: u64) -> Result<ModelData> {
    shape.check(teacher)?;
    let te = &teacher.spec.embeddings;
    let max_len = shape.max_len.min(teacher.spec.max_seq_len);
    let e = shape.embedding;
    let two = 2 * shape.width;
    let mut blocks = vec![BlockSpec::Projection { input: e, output: two }];
    blocks.extend((0..shape.layers).map(|_| BlockSpec::BiConv { width: two, kernel: shape.kernel }));
    let spec = ModelSpec {
        format_version: FORMAT_VERSION,
        embeddings: EmbeddingSpec { vocab_size: te.vocab_size, max_positions: max_len, type_vocab_size: te.type_vocab_size, width: e },
        blocks,
        layer_norm_eps: teacher.spec.layer_norm_eps,
        max_seq_len: max_len,
        pooling: PoolingSpec { mode: PoolingMode::Mean, normalize: false },
        head: None,
        quantized: BTreeMap::new(),
        provenance: Default::default(),
    };
    let r = principal_directions(teacher, e)?;
    let narrow = |name: &str, rows: usize| -> Result<Rt> {
        let t = teacher
            .tensors
            .get(name)
            .ok_or_else(|| CompressError::Tensor { name: name.into(), what: "is missing from the teacher".into() })?;
        let (v, w) = (t.to_f32(), te.width);
        let mut out = vec![0f32; rows * e];
        for i in 0..rows {
            let row = &v[i * w..(i + 1) * w];
            for (j, o) in out[i * e..(i + 1) * e].iter_mut().enumerate() {
                *o = (0..w).map(|k| row[k] as f64 * r[k * e + j]).sum::<f64>() as f32;
            }
        }
        Ok(Rt::F32 { shape: vec![rows, e], data: out })
    };
    let mut tensors = BTreeMap::new();
    tensors.insert(names::WORD_EMBEDDINGS.to_string(), narrow(names::WORD_EMBEDDINGS, te.vocab_size)?);
    tensors.insert(names::POSITION_EMBEDDINGS.to_string(), narrow(names::POSITION_EMBEDDINGS, max_len)?);
    tensors.insert(names::TOKEN_TYPE_EMBEDDINGS.to_string(), narrow(names::TOKEN_TYPE_EMBEDDINGS, te.type_vocab_size)?);
    let mut rng = XorShift::new(seed ^ 0xC7_7A66);
    for t in spec.expected_tensors() {
        if tensors.contains_key(&t.name) {
            continue;
        }
        let n: usize = t.shape.iter().product();
        let data: Vec<f32> = if t.name.ends_with("ln.weight") {
            vec![1.0; n]
        } else if t.name.ends_with(".bias") {
            vec![0.0; n]
        } else if t.name.ends_with("conv.depthwise.weight") {
            // Each stream starts as its own token plus a little of its context.
            let k = t.shape[1];
            (0..n).map(|i| if i % k == 0 { 1.0 } else { rng.symmetric(0.5 / k as f32) }).collect()
        } else {
            let bound = (3.0 / t.shape[1] as f32).sqrt();
            (0..n).map(|_| rng.symmetric(bound)).collect()
        };
        tensors.insert(t.name, Rt::F32 { shape: t.shape, data });
    }
    let model = ModelData { spec, tensors, tokenizer_json: teacher.tokenizer_json.clone() };
    model.validate()?;
    Ok(model)
}

/// The `e` leading eigenvectors of `WᵀW` for the teacher's word table `W` (`[width, e]`,
/// row-major): the directions that keep the most of the table.
fn principal_directions(teacher: &ModelData, e: usize) -> Result<Vec<f64>> {
    let name = names::WORD_EMBEDDINGS;
    let t = teacher
        .tensors
        .get(name)
        .ok_or_else(|| CompressError::Tensor { name: name.into(), what: "is missing from the teacher".into() })?;
    let w = t.shape()[1];
    let v = t.to_f32();
    // The Gram matrix in f64, rows in parallel chunks.
    let rows = v.len() / w;
    let chunk = rows.div_ceil(rayon::current_num_threads().max(1)).max(1);
    use rayon::prelude::*;
    let gram = v
        .par_chunks(chunk * w)
        .map(|c| {
            let mut g = vec![0f64; w * w];
            for row in c.chunks(w) {
                for i in 0..w {
                    let ri = row[i] as f64;
                    for j in i..w {
                        g[i * w + j] += ri * row[j] as f64;
                    }
                }
            }
            g
        })
        .reduce(|| vec![0f64; w * w], |mut a, b| {
            a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
            a
        });
    let mut full = gram.clone();
    for i in 0..w {
        for j in 0..i {
            full[i * w + j] = gram[j * w + i];
        }
    }
    let (_, vectors) = crate::search::linalg::symmetric_eigen(&full, w);
    Ok((0..w).flat_map(|i| (0..e).map(move |j| (i, j))).map(|(i, j)| vectors[i * w + j]).collect())
}

/// The package's description of a trained tagger: `init`'s with a token head of `labels`.
pub(crate) fn with_token_head(init: &ModelData, labels: &[String]) -> ModelData {
    let mut m = init.clone();
    m.spec.head = Some(HeadSpec { pooler: false, labels: labels.to_vec(), kind: HeadKind::Token });
    m
}
