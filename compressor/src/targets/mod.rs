//! The frozen teacher's training targets, computed once and on the fast kernels.
//!
//! Every command that distils reads the teacher through a [`TeacherSource`]: the runtime's CPU
//! inference kernels compute exactly the tensors the losses read (the paired layers' hidden
//! states, their attention probabilities, the logits; a [`TargetRequest`]), never burn's
//! training graph, which is several times slower for a model that does not learn. With a
//! [`TargetCache`] the targets of every training text are kept on disk (f16, memory-mapped) and
//! reused by every later student, stage, seed and bit width of the same teacher, corpus,
//! tokenizer and length.
//!
//! Augmented texts (spans cut from a line, noise) are ordinary texts to the cache: each record
//! is found by a hash of its token and segment ids, so a span drawn by one seed is a miss for
//! another seed, computed live and added, while the unaugmented lines every run shares hit.

mod cache;

use std::path::Path;

use bertling_runtime::{Backend, BlockSpec, Input, LoadOptions, Model, ModelData, TargetRequest};
use burn::prelude::*;

pub use self::cache::{CacheKey, CacheStats, TargetCache};
use crate::distill::{layer_outputs, LossWeights};
use crate::error::{CompressError, Result};
use crate::student::{Encoder, Outputs};

/// One batch's targets on the training device, padded to the batch's longest input (padding
/// rows are zero; the losses mask them).
pub struct Targets {
    hidden: Vec<(usize, Tensor<3>)>,
    attention: Vec<(usize, Tensor<4>)>,
    pub logits: Option<Tensor<2>>,
}

impl Targets {
    /// Hidden state `i` (0 = the embedding output, `i + 1` = block `i`'s output).
    ///
    /// # Panics
    /// When `i` was not requested: the request is made from the same layer pairs the losses
    /// read, so this is a bug, not bad input.
    pub fn hidden(&self, i: usize) -> Tensor<3> {
        match self.hidden.iter().find(|(j, _)| *j == i) {
            Some((_, t)) => t.clone(),
            None => panic!("hidden state {i} was not among the requested teacher targets"),
        }
    }

    /// Attention block `k`'s probabilities `[batch, heads, seq, seq]` (counted among the
    /// attention blocks). Panics as [`Targets::hidden`] does.
    pub fn attention(&self, k: usize) -> Tensor<4> {
        match self.attention.iter().find(|(j, _)| *j == k) {
            Some((_, t)) => t.clone(),
            None => panic!("attention block {k} was not among the requested teacher targets"),
        }
    }

    /// Every output of a forward pass of burn's model (evaluation, and the reference the
    /// runtime's targets are tested against).
    pub fn from_outputs(out: Outputs) -> Targets {
        Targets {
            hidden: out.hidden.into_iter().enumerate().collect(),
            attention: out.attentions.into_iter().enumerate().collect(),
            logits: out.logits,
        }
    }
}

/// The attention block (counted among attention blocks) of each listed layer output.
fn attention_blocks(enc: &Encoder, layers: &[usize]) -> Vec<Option<usize>> {
    crate::distill::attention_of_layers(enc, layers)
}

/// What the distillation losses ([`crate::distill::distill_loss`]) read of the teacher for a
/// student/teacher pair, layer pairs `pairs` and loss weights `weights`.
pub fn distill_request(
    student: &Encoder,
    teacher: &Encoder,
    pairs: &[(usize, usize)],
    weights: &LossWeights,
) -> TargetRequest {
    let (sl, tl) = (layer_outputs(student), layer_outputs(teacher));
    let (sa, ta) = (attention_blocks(student, &sl), attention_blocks(teacher, &tl));
    let mut hidden = if weights.embedding != 0.0 { vec![0] } else { Vec::new() };
    let mut attention = Vec::new();
    for &(js, jt) in pairs {
        hidden.push(tl[jt]);
        if let (Some(_), Some(t), true) = (sa[js], ta[jt], weights.attention != 0.0) {
            attention.push(t);
        }
    }
    hidden.sort_unstable();
    hidden.dedup();
    attention.sort_unstable();
    attention.dedup();
    let logits = weights.logits != 0.0 && student.head.is_some() && teacher.head.is_some();
    TargetRequest { hidden, attention, logits }
}

/// Everything the losses of any student could read of `teacher`: the embedding output, every
/// layer output and its attention block, the logits. What a cache keeps so that every
/// student, layer map, stage and bit width of the teacher shares it.
pub fn full_request(teacher: &Encoder) -> TargetRequest {
    let layers = layer_outputs(teacher);
    let mut attention: Vec<usize> =
        attention_blocks(teacher, &layers).into_iter().flatten().collect();
    attention.dedup();
    TargetRequest {
        hidden: std::iter::once(0).chain(layers).collect(),
        attention,
        logits: teacher.head.is_some(),
    }
}

/// Both requests' tensors, sorted.
pub fn union(a: &TargetRequest, b: &TargetRequest) -> TargetRequest {
    let merge = |x: &[usize], y: &[usize]| {
        let mut v: Vec<usize> = x.iter().chain(y).copied().collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    TargetRequest {
        hidden: merge(&a.hidden, &b.hidden),
        attention: merge(&a.attention, &b.attention),
        logits: a.logits || b.logits,
    }
}

/// Whether `have` gives everything `want` asks for.
pub fn request_covers(have: &TargetRequest, want: &TargetRequest) -> bool {
    want.hidden.iter().all(|h| have.hidden.contains(h))
        && want.attention.iter().all(|a| have.attention.contains(a))
        && (!want.logits || have.logits)
}

/// The teacher as the trainers see it: the runtime's CPU model, and optionally a cache.
pub struct TeacherSource {
    model: Model,
    request: TargetRequest,
    cache: Option<TargetCache>,
    /// A token head: logits per token, padded like the hidden states.
    token: bool,
}

impl TeacherSource {
    /// The teacher `data` on the runtime's CPU backend (`threads` workers, 0 = every core),
    /// giving `request`'s tensors.
    pub fn new(data: &ModelData, request: TargetRequest, threads: usize) -> Result<TeacherSource> {
        let model = Model::from_data(data.clone(), &LoadOptions::new(Backend::Cpu, threads))?;
        let heads =
            model.info().blocks.iter().filter(|b| matches!(b, BlockSpec::Attention { .. })).count();
        let blocks = model.info().blocks.len();
        if request.hidden.iter().any(|&h| h > blocks)
            || request.attention.iter().any(|&a| a >= heads)
        {
            return Err(CompressError::InvalidArgument(format!(
                "teacher targets {request:?} do not exist in a teacher of {blocks} blocks"
            )));
        }
        let token = data.spec.head.as_ref().is_some_and(|h| h.kind == bertling_runtime::HeadKind::Token);
        Ok(TeacherSource { model, request, cache: None, token })
    }

    /// The source a distillation of `student` from `teacher` (burn's copy of `data`) with
    /// `cfg` reads.
    pub fn for_distill(
        data: &ModelData,
        student: &Encoder,
        teacher: &Encoder,
        cfg: &crate::distill::DistillConfig,
        threads: usize,
    ) -> Result<TeacherSource> {
        let pairs = crate::distill::pair_layers(
            &cfg.map,
            layer_outputs(student).len(),
            layer_outputs(teacher).len(),
        )?;
        TeacherSource::new(data, distill_request(student, teacher, &pairs, &cfg.weights), threads)
    }

    /// Opens the cache of this teacher's targets on `corpus` at `max_len` tokens under `root`
    /// (created when there is none) and keeps the targets there; the cache stores `store` as
    /// well as this source's request, so that runs which read other layers share it (see
    /// [`full_request`]). The notes of opening it (a new cache, a dropped partial record) are
    /// returned for the user.
    pub fn cached(
        self,
        data: &ModelData,
        root: &Path,
        corpus: &Path,
        max_len: usize,
        store: &TargetRequest,
    ) -> Result<(TeacherSource, Vec<String>)> {
        let info = self.model.info();
        let widths: Vec<usize> = std::iter::once(info.spec.embeddings.width)
            .chain(info.blocks.iter().map(BlockSpec::output_width))
            .collect();
        let heads: Vec<usize> = info
            .blocks
            .iter()
            .filter_map(|b| match b {
                BlockSpec::Attention { heads, .. } => Some(*heads),
                _ => None,
            })
            .collect();
        let labels = info.labels.as_ref().map_or(0, Vec::len);
        let key = CacheKey::new(data, corpus, max_len)?;
        let mut cache =
            TargetCache::open(root, &key, &union(store, &self.request), &widths, &heads, labels)?;
        let notes = std::mem::take(&mut cache.notes);
        Ok((self.with_cache(cache)?, notes))
    }

    /// Keeps the targets in `cache` (which must have been opened for this teacher and request).
    pub fn with_cache(mut self, cache: TargetCache) -> Result<TeacherSource> {
        if self.token && cache.covers(&TargetRequest { logits: true, ..TargetRequest::default() }) {
            // Its records hold a fixed number of logits per text, and a tagger has one row per
            // token.
            return Err(CompressError::InvalidArgument(
                "the target cache does not store a tagger's per-token logits: run without \
                 --target-cache"
                    .into(),
            ));
        }
        if !cache.covers(&self.request) {
            return Err(CompressError::InvalidArgument(
                "the target cache does not store what this run's losses read".into(),
            ));
        }
        self.cache = Some(cache);
        Ok(self)
    }

    pub fn request(&self) -> &TargetRequest {
        &self.request
    }

    /// Whether the targets are kept in a cache.
    pub fn has_cache(&self) -> bool {
        self.cache.is_some()
    }

    /// Hits, misses and rebuilt records of the cache so far (zeros without one).
    pub fn cache_stats(&self) -> CacheStats {
        self.cache.as_ref().map(TargetCache::stats).unwrap_or_default()
    }

    /// The model the targets come from (its widths, heads and labels).
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The targets of `inputs` as tensors on `device`: from the cache where it has them, the
    /// rest computed (and added to the cache).
    pub fn targets(&mut self, inputs: &[Input], device: &Device) -> Result<Targets> {
        let mut found: Vec<Option<Record>> = match &mut self.cache {
            Some(c) => inputs.iter().map(|i| c.get(i, &self.request)).collect::<Result<_>>()?,
            None => vec![None; inputs.len()],
        };
        let missing: Vec<usize> = (0..inputs.len()).filter(|&i| found[i].is_none()).collect();
        if !missing.is_empty() {
            // With a cache, what its store keeps (perhaps more than this run reads).
            let full = self.cache.as_ref().map_or(&self.request, TargetCache::stored).clone();
            let batch: Vec<Input> = missing.iter().map(|&i| inputs[i].clone()).collect();
            let computed = self.model.teacher_targets(&batch, &full)?;
            for (&i, t) in missing.iter().zip(computed) {
                let rec = Record { hidden: t.hidden, attention: t.attention, logits: t.logits };
                if let Some(c) = &mut self.cache {
                    c.put(&inputs[i], &rec)?;
                }
                found[i] = Some(rec.restrict(&full, &self.request));
            }
        }
        let records: Vec<Record> = found.into_iter().flatten().collect();
        Ok(self.assemble(inputs, &records, device))
    }

    /// Pads per-input records into batch tensors.
    fn assemble(&self, inputs: &[Input], records: &[Record], device: &Device) -> Targets {
        let b = inputs.len();
        let s = inputs.iter().map(|i| i.ids.len()).max().unwrap_or(1).max(1);
        let lens: Vec<usize> = inputs.iter().map(|i| i.ids.len()).collect();
        let hidden = self
            .request
            .hidden
            .iter()
            .enumerate()
            .map(|(k, &h)| {
                let w = records.first().map_or(0, |r| r.hidden[k].len() / lens[0].max(1));
                let mut v = vec![0f32; b * s * w];
                for (i, r) in records.iter().enumerate() {
                    v[i * s * w..i * s * w + lens[i] * w].copy_from_slice(&r.hidden[k]);
                }
                (h, Tensor::from_data(TensorData::new(v, [b, s, w]), device))
            })
            .collect();
        let attention = self
            .request
            .attention
            .iter()
            .enumerate()
            .map(|(k, &a)| {
                let heads = records
                    .first()
                    .map_or(0, |r| r.attention[k].len() / (lens[0] * lens[0]).max(1));
                let mut v = vec![0f32; b * heads * s * s];
                for (i, r) in records.iter().enumerate() {
                    let n = lens[i];
                    for h in 0..heads {
                        for q in 0..n {
                            let src = &r.attention[k][(h * n + q) * n..(h * n + q + 1) * n];
                            let at = ((i * heads + h) * s + q) * s;
                            v[at..at + n].copy_from_slice(src);
                        }
                    }
                }
                (a, Tensor::from_data(TensorData::new(v, [b, heads, s, s]), device))
            })
            .collect();
        let logits = self.request.logits.then(|| {
            if self.token {
                // `[b · s, labels]`, row `i · s + t` (as the student's token head): padding zero.
                let labels =
                    records.first().and_then(|r| r.logits.as_ref()).map_or(0, |l| l.len() / lens[0].max(1));
                let mut v = vec![0f32; b * s * labels];
                for (i, r) in records.iter().enumerate() {
                    let l = r.logits.as_deref().unwrap_or_default();
                    v[i * s * labels..i * s * labels + l.len()].copy_from_slice(l);
                }
                return Tensor::from_data(TensorData::new(v, [b * s, labels]), device);
            }
            let labels = records.first().and_then(|r| r.logits.as_ref()).map_or(0, Vec::len);
            let v: Vec<f32> =
                records.iter().flat_map(|r| r.logits.clone().unwrap_or_default()).collect();
            Tensor::from_data(TensorData::new(v, [b, labels]), device)
        });
        Targets { hidden, attention, logits }
    }
}

/// One input's targets in request order (what the cache stores per text).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Record {
    pub hidden: Vec<Vec<f32>>,
    pub attention: Vec<Vec<f32>>,
    pub logits: Option<Vec<f32>>,
}

impl Record {
    /// The parts `want` asks for of a record made for `made` (which covers `want`).
    fn restrict(mut self, made: &TargetRequest, want: &TargetRequest) -> Record {
        let take = |from: &[usize], all: &mut Vec<Vec<f32>>, pick: &[usize]| -> Vec<Vec<f32>> {
            pick.iter()
                .map(|p| {
                    from.iter()
                        .position(|x| x == p)
                        .map(|k| std::mem::take(&mut all[k]))
                        .unwrap_or_default()
                })
                .collect()
        };
        let hidden = take(&made.hidden, &mut self.hidden, &want.hidden);
        let attention = take(&made.attention, &mut self.attention, &want.attention);
        Record { hidden, attention, logits: if want.logits { self.logits } else { None } }
    }
}
