//! Task-agnostic distillation on plain text: the student learns the teacher's hidden states
//! (through learned projections where widths differ), attention distributions, embedding
//! output and, when both have a classification head, its label distribution. The same loop trains KDLSQ students: a quantized student is distilled from the
//! full-precision teacher.
//!
//! Deterministic: no dropout, data in file order (spans cut by seed and line position,
//! [`crate::corpus`]), AdamW state and the corpus position saved in checkpoints, so a run
//! resumed from a checkpoint ends with the same weights as an uninterrupted one.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use bertling_runtime::{Input, TextTokenizer};
use burn::module::{Module, Param};
use burn::optim::{AdamWConfig, GradientsAccumulator, GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::corpus::{Augment, Corpus};
use crate::error::{CompressError, Result};
use crate::student::{Batch, Dense, Encoder, Outputs};
use burn::tensor::activation::{log_softmax, softmax};

/// Which teacher layer each student layer learns from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum LayerMap {
    /// Student layer j (of L_s) learns teacher layer ⌈(j+1)·L_t/L_s⌉ − 1.
    Uniform,
    /// Only the last layers are paired.
    Last,
    /// Student layer j learns teacher layer `map[j]` (the genetic search writes these).
    Explicit(Vec<usize>),
}

impl std::str::FromStr for LayerMap {
    type Err = CompressError;
    fn from_str(s: &str) -> Result<LayerMap> {
        match s {
            "uniform" => Ok(LayerMap::Uniform),
            "last" => Ok(LayerMap::Last),
            list => list
                .split(',')
                .map(|v| v.trim().parse::<usize>())
                .collect::<std::result::Result<Vec<_>, _>>()
                .map(LayerMap::Explicit)
                .map_err(|_| CompressError::InvalidArgument(format!("layer map `{s}`: use uniform, last, or a list like 1,3,5"))),
        }
    }
}

/// Hidden-state indices (0 = embeddings, i + 1 = block i) that end a layer: the outputs of
/// feed-forward blocks, or of every block for models without any.
pub fn layer_outputs(enc: &Encoder) -> Vec<usize> {
    let ffn: Vec<usize> = enc.blocks.iter().enumerate().filter(|(_, b)| b.feed_forward.is_some()).map(|(i, _)| i + 1).collect();
    if ffn.is_empty() {
        (1..=enc.blocks.len()).collect()
    } else {
        ffn
    }
}

/// For each layer output, the index (among attention blocks) of the last attention block
/// before it, if any.
fn attention_of_layers(enc: &Encoder, layers: &[usize]) -> Vec<Option<usize>> {
    layers
        .iter()
        .map(|&h| {
            let n = enc.blocks[..h].iter().filter(|b| b.attention.is_some()).count();
            n.checked_sub(1)
        })
        .collect()
}

/// Pairs of (student layer index, teacher layer index) into the layer-output lists.
pub fn pair_layers(map: &LayerMap, student_layers: usize, teacher_layers: usize) -> Result<Vec<(usize, usize)>> {
    if student_layers == 0 || teacher_layers == 0 {
        return Err(CompressError::InvalidArgument("both models need at least one layer".into()));
    }
    Ok(match map {
        LayerMap::Uniform => (0..student_layers).map(|j| (j, ((j + 1) * teacher_layers).div_ceil(student_layers) - 1)).collect(),
        LayerMap::Last => vec![(student_layers - 1, teacher_layers - 1)],
        LayerMap::Explicit(list) => {
            if list.len() != student_layers || list.iter().any(|&t| t >= teacher_layers) {
                return Err(CompressError::InvalidArgument(format!(
                    "layer map {list:?}: give one teacher layer (0..{teacher_layers}) for each of the {student_layers} student layers"
                )));
            }
            list.iter().copied().enumerate().collect()
        }
    })
}

/// Loss weights.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LossWeights {
    pub hidden: f32,
    pub attention: f32,
    pub embedding: f32,
    /// KL(teacher ‖ student) of the head's label distributions, when both have a head.
    pub logits: f32,
    /// 1 − cosine of the mean-pooled last-layer states (the sentence embedding of a
    /// sentence-transformer teacher), when the layer map pairs the two last layers.
    #[serde(default)]
    pub sentence: f32,
}

impl Default for LossWeights {
    fn default() -> Self {
        LossWeights { hidden: 1.0, attention: 1.0, embedding: 1.0, logits: 1.0, sentence: 1.0 }
    }
}

/// Training settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DistillConfig {
    pub steps: usize,
    /// Sentences per micro-batch.
    pub batch_size: usize,
    /// Micro-batches per optimizer step.
    pub accumulation: usize,
    pub lr: f64,
    /// Linear warm-up steps, then linear decay to zero at `steps`.
    pub warmup: usize,
    pub weight_decay: f32,
    /// Tokens per sentence (special tokens included).
    pub max_len: usize,
    pub seed: u64,
    /// Save a checkpoint every this many steps (0 = only at the end).
    pub checkpoint_every: usize,
    pub map: LayerMap,
    pub weights: LossWeights,
    /// Augmentations of the corpus lines (checkpoints from before they existed had none).
    #[serde(default = "no_augment")]
    pub augment: Augment,
}

fn no_augment() -> Augment {
    Augment::NONE
}

impl Default for DistillConfig {
    fn default() -> Self {
        DistillConfig {
            steps: 1000,
            batch_size: 16,
            accumulation: 1,
            lr: 1e-4,
            warmup: 100,
            weight_decay: 0.01,
            max_len: 128,
            seed: 42,
            checkpoint_every: 200,
            map: LayerMap::Uniform,
            weights: LossWeights::default(),
            augment: Augment::default(),
        }
    }
}

impl DistillConfig {
    /// Learning rate at optimizer step `step` (0-based).
    pub fn lr_at(&self, step: usize) -> f64 {
        if step < self.warmup {
            self.lr * (step + 1) as f64 / self.warmup as f64
        } else {
            let left = self.steps.saturating_sub(step) as f64;
            let span = self.steps.saturating_sub(self.warmup).max(1) as f64;
            self.lr * left / span
        }
    }
}

/// The student with the projections that map its hidden states to the teacher's widths.
#[derive(Module, Debug)]
pub struct Trainee {
    pub student: Encoder,
    /// One per distilled layer pair (then the embedding output), present where widths differ.
    pub proj: Vec<Option<Dense>>,
}

/// The per-step losses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Losses {
    pub total: f32,
    pub hidden: f32,
    pub attention: f32,
    pub embedding: f32,
    pub logits: f32,
    #[serde(default)]
    pub sentence: f32,
}

impl Losses {
    /// `self + w · other`, part by part.
    pub fn add_scaled(self, o: &Losses, w: f32) -> Losses {
        Losses {
            total: self.total + w * o.total,
            hidden: self.hidden + w * o.hidden,
            attention: self.attention + w * o.attention,
            embedding: self.embedding + w * o.embedding,
            logits: self.logits + w * o.logits,
            sentence: self.sentence + w * o.sentence,
        }
    }
}

/// Cosine of the mean-pooled states `[batch, seq, width]` of two models, `[batch, 1]`.
fn pooled_cosine(a: Tensor<3>, b: Tensor<3>, mask: &Tensor<2>) -> Tensor<2> {
    let a = crate::student::mean_pool(a, mask.clone());
    let b = crate::student::mean_pool(b, mask.clone());
    let dot = (a.clone() * b.clone()).sum_dim(1);
    let norms = (a.powi_scalar(2).sum_dim(1) * b.powi_scalar(2).sum_dim(1)).sqrt().clamp_min(1e-12);
    dot / norms
}

/// The pair (index into `pairs`) joining the student's and the teacher's last layers.
fn last_pair(pairs: &[(usize, usize)], student_layers: usize, teacher_layers: usize) -> Option<usize> {
    pairs.iter().position(|&(js, jt)| js + 1 == student_layers && jt + 1 == teacher_layers)
}

pub(crate) fn masked_mse(a: Tensor<3>, b: Tensor<3>, mask: &Tensor<2>) -> Tensor<1> {
    let [_, _, w] = a.dims();
    let m = mask.clone().unsqueeze_dim::<3>(2);
    let sq = (a - b).powi_scalar(2) * m.clone();
    sq.sum() / (m.sum().mul_scalar(w as f32))
}

/// KL(teacher ‖ student) of attention rows, averaged over real query tokens and heads
/// (head-averaged distributions when the head counts differ).
pub(crate) fn attention_kl(t: Tensor<4>, s: Tensor<4>, mask: &Tensor<2>) -> Tensor<1> {
    let (t, s) = if t.dims()[1] != s.dims()[1] { (t.mean_dim(1), s.mean_dim(1)) } else { (t, s) };
    let [b, h, q, _] = s.dims();
    let eps = 1e-12;
    let kl = (t.clone() * (t.clamp_min(eps).log() - s.clamp_min(eps).log())).sum_dim(3); // [b,h,q,1]
    let m = mask.clone().reshape([b, 1, q, 1]);
    (kl * m.clone()).sum() / (m.sum().mul_scalar(h as f32))
}

/// The distillation loss of one batch. `teacher` outputs are constants.
pub fn distill_loss(
    trainee: &Trainee,
    teacher: &Outputs,
    teacher_encoder: &Encoder,
    batch: &Batch,
    pairs: &[(usize, usize)],
    weights: &LossWeights,
) -> (Tensor<1>, Losses) {
    let out = trainee.student.forward(batch);
    loss_of_outputs(trainee, &out, teacher, teacher_encoder, batch, pairs, weights)
}

fn loss_of_outputs(
    trainee: &Trainee,
    out: &Outputs,
    teacher: &Outputs,
    teacher_encoder: &Encoder,
    batch: &Batch,
    pairs: &[(usize, usize)],
    weights: &LossWeights,
) -> (Tensor<1>, Losses) {
    let s_layers = layer_outputs(&trainee.student);
    let t_layers = layer_outputs(teacher_encoder);
    let s_att = attention_of_layers(&trainee.student, &s_layers);
    let t_att = attention_of_layers(teacher_encoder, &t_layers);
    let device = batch.mask.device();
    let zero = || Tensor::<1>::zeros([1], &device);
    let project = |i: usize, h: Tensor<3>| match &trainee.proj[i] {
        Some(p) => p.forward(h),
        None => h,
    };
    let mut hidden = zero();
    let mut attention = zero();
    for (k, &(js, jt)) in pairs.iter().enumerate() {
        let hs = project(k, out.hidden[s_layers[js]].clone());
        hidden = hidden + masked_mse(hs, teacher.hidden[t_layers[jt]].clone(), &batch.mask);
        if let (Some(a), Some(b)) = (s_att[js], t_att[jt]) {
            attention = attention + attention_kl(teacher.attentions[b].clone(), out.attentions[a].clone(), &batch.mask);
        }
    }
    let emb = masked_mse(project(pairs.len(), out.hidden[0].clone()), teacher.hidden[0].clone(), &batch.mask);
    let sentence = match last_pair(pairs, s_layers.len(), t_layers.len()) {
        Some(k) if weights.sentence != 0.0 => {
            let (js, jt) = pairs[k];
            let cos = pooled_cosine(project(k, out.hidden[s_layers[js]].clone()), teacher.hidden[t_layers[jt]].clone(), &batch.mask);
            (cos.neg() + 1.0).mean().reshape([1])
        }
        _ => zero(),
    };
    let logits = match (&teacher.logits, &out.logits) {
        (Some(t), Some(s)) => {
            let (pt, lt, ls) = (softmax(t.clone(), 1), log_softmax(t.clone(), 1), log_softmax(s.clone(), 1));
            (pt * (lt - ls)).sum_dim(1).mean().reshape([1])
        }
        _ => zero(),
    };
    let total = hidden.clone().mul_scalar(weights.hidden)
        + attention.clone().mul_scalar(weights.attention)
        + emb.clone().mul_scalar(weights.embedding)
        + logits.clone().mul_scalar(weights.logits)
        + sentence.clone().mul_scalar(weights.sentence);
    let scalar = |t: &Tensor<1>| t.clone().into_scalar::<f32>();
    let losses = Losses {
        total: scalar(&total),
        hidden: scalar(&hidden),
        attention: scalar(&attention),
        embedding: scalar(&emb),
        logits: scalar(&logits),
        sentence: scalar(&sentence),
    };
    (total, losses)
}

/// Creates the projections for a student/teacher pair: identity-free where widths match,
/// otherwise a learned `teacher_width × student_width` map (small random init from `seed`).
pub fn projections(student: &Encoder, teacher: &Encoder, pairs: &[(usize, usize)], seed: u64, device: &Device) -> Vec<Option<Dense>> {
    let probe_width = |enc: &Encoder, hidden: usize| -> usize {
        // The width of hidden state `hidden`: the embedding width, changed by projections.
        let mut w = enc.embeddings.word.dims()[1];
        for b in &enc.blocks[..hidden] {
            if let Some(p) = &b.projection {
                w = p.weight.dims()[0];
            }
        }
        w
    };
    let (sl, tl) = (layer_outputs(student), layer_outputs(teacher));
    let mut want: Vec<(usize, usize)> = pairs.iter().map(|&(js, jt)| (probe_width(student, sl[js]), probe_width(teacher, tl[jt]))).collect();
    want.push((probe_width(student, 0), probe_width(teacher, 0)));
    let mut rng = bertling_runtime::rng::XorShift::new(seed);
    want.into_iter()
        .map(|(ws, wt)| {
            (ws != wt).then(|| {
                let scale = 1.0 / (ws as f32).sqrt();
                let v: Vec<f32> = (0..ws * wt).map(|_| rng.symmetric(scale)).collect();
                Dense::new(Tensor::from_data(TensorData::new(v, [wt, ws]), device), Tensor::zeros([wt], device))
            })
        })
        .collect()
}

/// Where a run keeps its checkpoints: `state.json` names the complete checkpoint
/// subdirectory (`step-N/`, with the model and optimizer state) it belongs to.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CheckpointState {
    /// Optimizer steps done.
    pub step: usize,
    pub lines_read: u64,
    pub config: DistillConfig,
    /// The subdirectory holding this step's model and optimizer state.
    pub files: String,
    /// The losses of the last step (reported when a finished run is resumed).
    #[serde(default)]
    pub losses: Losses,
}

fn optimizer(cfg: &DistillConfig) -> ModuleOptimizer {
    AdamWConfig::new().with_beta_1(0.9).with_beta_2(0.999).with_epsilon(1e-8).with_weight_decay(cfg.weight_decay).init()
}

/// Writes a checkpoint so that a kill at any moment leaves a complete one: the model and
/// optimizer go into a fresh `step-N/` directory, then `state.json` is switched to it
/// atomically (write + rename), then older step directories are removed.
fn save_checkpoint(dir: &Path, trainee: &Trainee, optim: &ModuleOptimizer, state: &CheckpointState) -> Result<()> {
    let io = |e: std::io::Error| CompressError::InvalidArgument(format!("writing a checkpoint in {}: {e}", dir.display()));
    let files = dir.join(&state.files);
    std::fs::create_dir_all(&files).map_err(io)?;
    let err = |e: burn::store::RecordError| CompressError::InvalidArgument(format!("writing a checkpoint in {}: {e:?}", dir.display()));
    trainee.clone().save_file(files.join("trainee")).map_err(err)?;
    optim.save(files.join("optimizer")).map_err(err)?;
    let tmp = dir.join("state.json.partial");
    std::fs::write(&tmp, serde_json::to_string_pretty(state).unwrap_or_default()).map_err(io)?;
    std::fs::rename(&tmp, dir.join("state.json")).map_err(io)?;
    for entry in std::fs::read_dir(dir).map_err(io)?.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if name.starts_with("step-") && name != state.files {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    Ok(())
}

/// Progress of a run, reported after every optimizer step.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    pub step: usize,
    pub steps: usize,
    pub losses: Losses,
    pub tokens_per_s: f64,
    pub eta_s: f64,
    pub lr: f64,
    /// The held-out evaluation made at this step, if one was due.
    pub eval: Option<EvalResult>,
}

/// How a progress callback stops a run early.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// Write a checkpoint of the step just done, then stop (continue it with `--resume`).
    Save,
    /// Stop as if killed: only the checkpoints written so far remain.
    Abandon,
}

/// Held-out texts evaluated every `every` optimizer steps (and before the first step and
/// after the last): the distillation loss without gradients, and the cosine of the student's
/// mean-pooled last-layer states (through the learned projection where widths differ) to the
/// teacher's.
#[derive(Clone, Debug)]
pub struct EvalSet {
    pub every: usize,
    batches: Vec<Vec<Input>>,
}

impl EvalSet {
    /// Tokenizes `texts` (in batches of `batch_size`) with the teacher's tokenizer.
    pub fn new(texts: &[String], tokenizer_json: &str, max_len: usize, batch_size: usize, every: usize) -> Result<EvalSet> {
        if texts.is_empty() {
            return Err(CompressError::InvalidArgument("no evaluation texts: give a file with at least one line".into()));
        }
        let tok = TextTokenizer::new(tokenizer_json, max_len)?;
        let batches = texts
            .chunks(batch_size.max(1))
            .map(|c| tok.encode(&c.iter().map(String::as_str).collect::<Vec<_>>()))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(EvalSet { every, batches })
    }

    pub fn texts(&self) -> usize {
        self.batches.iter().map(Vec::len).sum()
    }
}

/// One held-out evaluation.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalResult {
    /// Distillation losses averaged over the texts.
    pub loss: Losses,
    /// Cosine of the pooled last-layer states to the teacher's (mean, 5th percentile); absent
    /// when the layer map does not pair the two last layers.
    pub cosine_mean: Option<f64>,
    pub cosine_p5: Option<f64>,
    pub texts: usize,
}

/// Evaluates `trainee` (its inference copy, no gradients) on `set`.
pub fn evaluate(trainee: &Trainee, teacher: &Encoder, set: &EvalSet, pairs: &[(usize, usize)], weights: &LossWeights, device: &Device) -> EvalResult {
    let model = trainee.clone().valid();
    let s_layers = layer_outputs(&model.student);
    let t_layers = layer_outputs(teacher);
    let last = last_pair(pairs, s_layers.len(), t_layers.len());
    let mut sum = Losses::default();
    let mut cos = Vec::new();
    let mut n = 0usize;
    for inputs in &set.batches {
        let batch = Batch::new(inputs, device);
        let t_out = teacher.forward(&batch);
        let out = model.student.forward(&batch);
        let (_, l) = loss_of_outputs(&model, &out, &t_out, teacher, &batch, pairs, weights);
        let w = inputs.len() as f32;
        sum = sum.add_scaled(&l, w);
        n += inputs.len();
        if let Some(k) = last {
            let (js, jt) = pairs[k];
            let hs = out.hidden[s_layers[js]].clone();
            let hs = match &model.proj[k] {
                Some(p) => p.forward(hs),
                None => hs,
            };
            let c = pooled_cosine(hs, t_out.hidden[t_layers[jt]].clone(), &batch.mask).into_data().try_into_vec_as::<f32>().unwrap_or_default();
            cos.extend(c.into_iter().map(f64::from));
        }
    }
    let n = n.max(1) as f32;
    let loss = Losses::default().add_scaled(&sum, 1.0 / n);
    let (cosine_mean, cosine_p5) = if cos.is_empty() {
        (None, None)
    } else {
        let mean = cos.iter().sum::<f64>() / cos.len() as f64;
        cos.sort_by(f64::total_cmp);
        (Some(mean), Some(cos[((cos.len() - 1) as f64 * 0.05).round() as usize]))
    };
    EvalResult { loss, cosine_mean, cosine_p5, texts: n as usize }
}

/// What [`distill`] returns.
pub struct Trained {
    pub trainee: Trainee,
    /// The losses of the last step.
    pub losses: Losses,
    /// Optimizer steps done (less than the configured steps when stopped early).
    pub step: usize,
    /// The last held-out evaluation of this process, if any.
    pub eval: Option<EvalResult>,
}

/// Distils `trainee.student` from `teacher` on `corpus`, resuming from `checkpoint_dir` when
/// it holds a checkpoint of the same configuration. `log` receives one JSON line per step and
/// one per evaluation of `eval` (`{"step": N, "eval": {...}}`); `progress` is called after
/// every step and may stop the run early ([`Stop`]).
#[allow(clippy::too_many_arguments)]
pub fn distill(
    mut trainee: Trainee,
    teacher: &Encoder,
    corpus: &mut Corpus,
    cfg: &DistillConfig,
    checkpoint_dir: Option<&Path>,
    device: &Device,
    eval: Option<&EvalSet>,
    mut log: Option<&mut dyn Write>,
    mut progress: impl FnMut(&Progress) -> std::ops::ControlFlow<Stop>,
) -> Result<Trained> {
    if cfg.steps == 0 || cfg.batch_size == 0 || cfg.accumulation == 0 {
        return Err(CompressError::InvalidArgument("steps, batch size and accumulation must be at least 1".into()));
    }
    let pairs = pair_layers(&cfg.map, layer_outputs(&trainee.student).len(), layer_outputs(teacher).len())?;
    if trainee.proj.len() != pairs.len() + 1 {
        return Err(CompressError::InvalidArgument("the trainee's projections do not match the layer map".into()));
    }
    device.seed(cfg.seed);
    corpus.set_augment(cfg.augment, cfg.seed)?;
    let mut optim = optimizer(cfg);
    let mut start = 0;
    let mut last = Losses::default();
    if let Some(dir) = checkpoint_dir {
        if dir.join("state.json").is_file() {
            let text = std::fs::read_to_string(dir.join("state.json")).map_err(|e| CompressError::InvalidArgument(e.to_string()))?;
            let state: CheckpointState = serde_json::from_str(&text).map_err(|e| CompressError::InvalidArgument(format!("checkpoint state: {e}")))?;
            if state.config != *cfg {
                return Err(CompressError::InvalidArgument(format!(
                    "the checkpoint in {} was made with other settings ({}); use the same ones, or another checkpoint directory",
                    dir.display(),
                    settings_differ(&state.config, cfg)
                )));
            }
            let err = |e: burn::store::RecordError| CompressError::InvalidArgument(format!("reading the checkpoint: {e:?}"));
            let files = dir.join(&state.files);
            trainee = trainee.try_load_file(files.join("trainee")).map_err(err)?;
            optim = optim.load(files.join("optimizer")).map_err(err)?;
            corpus.seek(state.lines_read)?;
            start = state.step;
            last = state.losses;
        }
    }
    let teacher_device = device.clone().without_autodiff();
    let write_log = |log: &mut Option<&mut dyn Write>, line: serde_json::Value| -> Result<()> {
        if let Some(w) = log.as_deref_mut() {
            writeln!(w, "{line}").map_err(|e| CompressError::InvalidArgument(format!("writing the log: {e}")))?;
        }
        Ok(())
    };
    let run_eval = |trainee: &Trainee, step: usize| -> Option<EvalResult> {
        let set = eval?;
        let due = step == 0 || step == cfg.steps || (set.every > 0 && step.is_multiple_of(set.every));
        due.then(|| evaluate(trainee, teacher, set, &pairs, &cfg.weights, &teacher_device))
    };
    let mut last_eval = None;
    if start == 0 {
        if let Some(e) = run_eval(&trainee, 0) {
            write_log(&mut log, serde_json::json!({"step": 0, "eval": e}))?;
            last_eval = Some(e);
        }
    }
    let started = Instant::now();
    let mut tokens = 0usize;
    let mut step_done = start;
    for step in start..cfg.steps {
        let mut acc = GradientsAccumulator::<Trainee>::new();
        let mut sum = Losses::default();
        for _ in 0..cfg.accumulation {
            let inputs = corpus.next_batch(cfg.batch_size)?;
            tokens += inputs.iter().map(|i| i.ids.len()).sum::<usize>();
            let t_out = teacher.forward(&Batch::new(&inputs, &teacher_device));
            let batch = Batch::new(&inputs, device);
            let (loss, l) = distill_loss(&trainee, &t_out, teacher, &batch, &pairs, &cfg.weights);
            let loss = loss.div_scalar(cfg.accumulation as f32);
            acc.accumulate(&trainee, GradientsParams::from_grads(loss.backward(), &trainee));
            let n = cfg.accumulation as f32;
            sum = sum.add_scaled(&l, 1.0 / n);
        }
        let lr = cfg.lr_at(step);
        trainee = optim.step(lr, trainee, acc.grads());
        last = sum;
        step_done = step + 1;
        let elapsed = started.elapsed().as_secs_f64().max(1e-9);
        let done = step + 1 - start;
        let eta = elapsed / done as f64 * (cfg.steps - step - 1) as f64;
        let line = serde_json::json!({"step": step + 1, "lr": lr, "loss": sum.total, "hidden": sum.hidden, "attention": sum.attention, "embedding": sum.embedding, "logits": sum.logits, "sentence": sum.sentence, "tokens_per_s": tokens as f64 / elapsed});
        write_log(&mut log, line)?;
        let evaluated = run_eval(&trainee, step + 1);
        if let Some(e) = &evaluated {
            write_log(&mut log, serde_json::json!({"step": step + 1, "eval": e}))?;
            last_eval = Some(*e);
        }
        let flow =
            progress(&Progress { step: step + 1, steps: cfg.steps, losses: sum, tokens_per_s: tokens as f64 / elapsed, eta_s: eta, lr, eval: evaluated });
        let at_checkpoint = cfg.checkpoint_every > 0 && (step + 1) % cfg.checkpoint_every == 0;
        let save = at_checkpoint || step + 1 == cfg.steps || flow == std::ops::ControlFlow::Break(Stop::Save);
        if let (Some(dir), true) = (checkpoint_dir, save) {
            let state =
                CheckpointState { step: step + 1, lines_read: corpus.lines_read, config: cfg.clone(), files: format!("step-{}", step + 1), losses: sum };
            save_checkpoint(dir, &trainee, &optim, &state)?;
        }
        if flow.is_break() {
            break;
        }
    }
    Ok(Trained { trainee, losses: last, step: step_done, eval: last_eval })
}

/// The settings that differ, as `name: checkpoint's value, not this run's` (e.g. a checkpoint
/// from before span augmentation: `augment: {"spans":0.0}, not {"spans":0.25}`, so
/// `--spans 0` resumes it).
fn settings_differ(saved: &DistillConfig, now: &DistillConfig) -> String {
    let (a, b) = (serde_json::to_value(saved).unwrap_or_default(), serde_json::to_value(now).unwrap_or_default());
    let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else { return String::new() };
    a.iter().filter(|(k, v)| b.get(*k) != Some(v)).map(|(k, v)| format!("{k}: {v}, not {}", b.get(k).unwrap_or(&serde_json::Value::Null))).collect::<Vec<_>>().join("; ")
}

/// Turns a plain module into the student of a trainee on `device` (autodiff for training).
pub fn trainee(student: Encoder, teacher: &Encoder, cfg: &DistillConfig, device: &Device) -> Result<Trainee> {
    let pairs = pair_layers(&cfg.map, layer_outputs(&student).len(), layer_outputs(teacher).len())?;
    let proj = projections(&student, teacher, &pairs, cfg.seed, device);
    Ok(Trainee { student, proj }.train())
}

/// Reads a parameter back (tests, export).
pub fn param_values<const D: usize>(p: &Param<Tensor<D>>) -> Vec<f32> {
    p.val().into_data().try_into_vec_as::<f32>().unwrap_or_default()
}
