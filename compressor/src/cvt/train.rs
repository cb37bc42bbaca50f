//! The Cross-View Training loop: the prediction modules, the views, the losses, alternating
//! labelled and unlabelled batches, dev scores, checkpoints from which a killed run resumes to
//! the same weights.

use std::io::Write;
use std::time::Instant;

use bertling_runtime::{Input, ModelData, TargetRequest, TextTokenizer};
use burn::module::Module;
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::activation::{log_softmax, relu, softmax};
use burn::tensor::Distribution;
use serde::{Deserialize, Serialize};

use super::{light_tagger, with_token_head, LightShape};
use crate::convert::{encoder_from_data, encoder_to_data};
use crate::distill::{load_files, optimizer_with, read_json_state, save_files};
use crate::error::{CompressError, Result};
use crate::finetune::{batch_indices, logit_distillation, warmup_then_decay, predict, task_loss, tokenize_tagged, Best, Scores, Tokenized};
use crate::pipeline::{check_resume, open_log, RunFiles};
use crate::student::{Batch, Dense, Encoder, Head, Masks};
use crate::tagging::TaggedSentence;
use crate::task::TaskSpec;

/// The views of the paper, in the order of each task's auxiliary modules.
pub const VIEWS: [&str; 4] = ["forward", "backward", "future", "past"];

/// Settings of a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CvtConfig {
    pub shape: LightShape,
    /// Passes over the labelled sentences.
    pub epochs: usize,
    /// Sentences per batch, labelled and unlabelled.
    pub batch_size: usize,
    /// Peak learning rate (AdamW), linear warm-up over `warmup` of the steps, then linear decay.
    pub lr: f64,
    pub warmup: f64,
    pub weight_decay: f32,
    /// Dropout on the embeddings and on what the prediction modules read while they learn (the
    /// primary module's targets on unlabelled text are made without it, as in the paper).
    pub dropout: f32,
    /// Auxiliary views on unlabelled batches.
    pub cvt: bool,
    /// Weight of the BERT tagger's per-token distributions on unlabelled batches (with a
    /// tagger to distil) and their temperature.
    pub distill_weight: f32,
    pub temperature: f32,
    pub seed: u64,
    /// Checkpoint every this many optimizer steps (0: only at the end).
    pub checkpoint_every: usize,
    /// Score the dev set every this many labelled steps (0: after every epoch); always at the
    /// end. The package is the model of the best dev score.
    pub eval_every: usize,
}

impl Default for CvtConfig {
    fn default() -> Self {
        CvtConfig {
            shape: LightShape::default(),
            epochs: 20,
            batch_size: 32,
            lr: 2e-3,
            warmup: 0.02,
            weight_decay: 0.01,
            dropout: 0.2,
            cvt: true,
            distill_weight: 1.0,
            temperature: 1.0,
            seed: 42,
            checkpoint_every: 500,
            eval_every: 0,
        }
    }
}

/// What a run learns from.
pub struct CvtData<'a> {
    /// The tasks: the first is the package's head; the others share the encoder (multi-task).
    pub tasks: &'a [TaskSpec],
    /// Per task, the labelled sentences (the same sentences, each task's tags).
    pub train: &'a [Vec<TaggedSentence>],
    /// The first task's dev sentences.
    pub dev: &'a [TaggedSentence],
    /// Unlabelled text, one sentence (or paragraph, cut at the length) per entry.
    pub unlabeled: &'a [String],
}

/// Progress after every optimizer step.
#[derive(Clone, Debug)]
pub struct CvtProgress {
    pub step: usize,
    pub steps: usize,
    /// Whether this step was an unlabelled batch.
    pub unlabeled: bool,
    pub losses: CvtLosses,
    pub sentences_per_s: f64,
    pub eta_s: f64,
    pub dev: Option<Scores>,
    pub best: Option<Best>,
}

/// The losses of one step (0 where the step has none of that kind).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CvtLosses {
    pub total: f32,
    /// Gold tags, summed over the tasks (labelled batches).
    pub gold: f32,
    /// The auxiliary modules against their primary, summed over views and tasks.
    pub cvt: f32,
    /// The first task's primary module against the BERT tagger.
    pub distill: f32,
}

/// What a run did.
#[derive(Clone, Debug, Serialize)]
pub struct CvtReport {
    pub task: String,
    /// Every task trained (the first is the package's).
    pub tasks: Vec<String>,
    pub labels: Vec<String>,
    pub train_sentences: usize,
    pub unlabeled_sentences: usize,
    pub dev_words: usize,
    pub steps: usize,
    pub cvt: bool,
    pub distilled: bool,
    pub best: Best,
    pub last: Option<Scores>,
    /// The encoder's and head's multiply-adds per token.
    pub macs_per_token: usize,
    pub train_seconds: f64,
}

/// One view's auxiliary module: a hidden layer (ReLU) over half a state, then the tags.
#[derive(Module, Debug)]
pub struct Predictor {
    pub hidden: Dense,
    pub out: Dense,
}

impl Predictor {
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        self.out.forward(relu(self.hidden.forward(x)))
    }
}

/// A task's prediction modules: the primary one (the package's token head for the first
/// task) and one auxiliary module per view.
#[derive(Module, Debug)]
pub struct TaskModules {
    pub primary: Dense,
    pub views: Vec<Predictor>,
}

/// What trains: the encoder (no head) and every task's modules.
#[derive(Module, Debug)]
pub struct Tagger {
    pub encoder: Encoder,
    pub tasks: Vec<TaskModules>,
}

fn dense(rng: &mut bertling_runtime::rng::XorShift, rows: usize, cols: usize, device: &Device) -> Dense {
    let bound = (3.0 / cols as f32).sqrt();
    let v: Vec<f32> = (0..rows * cols).map(|_| rng.symmetric(bound)).collect();
    Dense::new(Tensor::from_data(TensorData::new(v, [rows, cols]), device), Tensor::zeros([rows], device))
}

impl Tagger {
    fn new(encoder: Encoder, labels: &[usize], width: usize, seed: u64, device: &Device) -> Tagger {
        let mut rng = bertling_runtime::rng::XorShift::new(seed ^ 0xA0C5);
        let hidden = width.min(256);
        let tasks = labels
            .iter()
            .map(|&l| TaskModules {
                primary: dense(&mut rng, l, 2 * width, device),
                views: VIEWS
                    .iter()
                    .map(|_| Predictor { hidden: dense(&mut rng, hidden, width, device), out: dense(&mut rng, l, hidden, device) })
                    .collect(),
            })
            .collect();
        Tagger { encoder, tasks }
    }

    /// Final states `[batch, seq, 2·width]`, with dropout `p` on the embeddings when training.
    fn states(&self, batch: &Batch, p: f32) -> Tensor<3> {
        let masks = Masks::new(batch);
        let mut x = dropout(self.encoder.embed(batch), p);
        for i in 0..self.encoder.blocks.len() {
            x = self.encoder.block_forward(i, x, &masks, &mut |_, _| {}).0;
        }
        x
    }

    /// The encoder with the first task's primary module as its token head (the package).
    fn exported(&self) -> Encoder {
        let mut enc = self.encoder.clone();
        enc.head = Some(Head { pooler: None, classifier: self.tasks[0].primary.clone(), token: true });
        enc
    }
}

fn dropout<const D: usize>(x: Tensor<D>, p: f32) -> Tensor<D> {
    if p <= 0.0 {
        return x;
    }
    let keep = Tensor::<D>::random(x.shape(), Distribution::Bernoulli(1.0 - p as f64), &x.device());
    x * keep.div_scalar(1.0 - p)
}

/// The four views of states `[b, s, 2h]`: forward `f_t`, backward `b_t`, future `f_{t-1}`,
/// past `b_{t+1}` (zeros beyond the ends), each `[b, s, h]`.
pub fn views(states: Tensor<3>) -> [Tensor<3>; 4] {
    let [b, s, w] = states.dims();
    let h = w / 2;
    let fwd = states.clone().narrow(2, 0, h);
    let bwd = states.narrow(2, h, h);
    let zeros = Tensor::<3>::zeros([b, 1, h], &fwd.device());
    let (future, past) = if s > 1 {
        (
            Tensor::cat(vec![zeros.clone(), fwd.clone().narrow(1, 0, s - 1)], 1),
            Tensor::cat(vec![bwd.clone().narrow(1, 1, s - 1), zeros], 1),
        )
    } else {
        (zeros.clone(), zeros)
    };
    [fwd, bwd, future, past]
}

/// Rows `rows` of `[b, s, labels]` logits flattened to `[b·s, labels]`.
fn rows_of(logits: Tensor<3>, rows: &[usize]) -> Tensor<2> {
    let [b, s, l] = logits.dims();
    let device = logits.device();
    let idx: Vec<i64> = rows.iter().map(|&r| r as i64).collect();
    logits.reshape([b * s, l]).select(0, Tensor::<1, Int>::from_data(TensorData::new(idx, [rows.len()]), &device))
}

/// The rows of a padded batch of `inputs` that the unlabelled losses read: every token but
/// `[CLS]` and `[SEP]`.
fn inner_rows(inputs: &[Input]) -> Vec<usize> {
    let s = inputs.iter().map(|i| i.ids.len()).max().unwrap_or(1).max(1);
    inputs.iter().enumerate().flat_map(|(b, i)| (1..i.ids.len().saturating_sub(1)).map(move |t| b * s + t)).collect()
}

const CVT_LAYOUT: u32 = 1;

#[derive(Clone, Debug, Serialize, Deserialize)]
struct CvtState {
    step: usize,
    config: CvtConfig,
    tasks: Vec<TaskSpec>,
    train: usize,
    unlabeled: usize,
    teacher: bool,
    files: String,
    best: Option<Best>,
    last: Option<Scores>,
    layout: u32,
}

/// Trains the light tagger of `teacher`'s WordPiece table ([`light_tagger`]) on `data`; with
/// `distill_from` (a fine-tuned BERT tagger of the first task, same tokenizer), its per-token
/// distributions on the unlabelled text too. Returns the best dev model as a package's data
/// (the first task's token head, auxiliary modules dropped) and the report.
pub fn cvt(
    teacher: &ModelData,
    distill_from: Option<&ModelData>,
    data: &CvtData,
    cfg: &CvtConfig,
    files: &RunFiles,
    progress: &mut dyn FnMut(&CvtProgress),
) -> Result<(ModelData, CvtReport)> {
    let bad = |what: String| CompressError::InvalidArgument(what);
    if cfg.epochs == 0 || cfg.batch_size == 0 {
        return Err(bad("epochs and batch size must be at least 1".into()));
    }
    if !(0.0..1.0).contains(&cfg.dropout) {
        return Err(bad(format!("dropout {}: use 0 ≤ p < 1", cfg.dropout)));
    }
    if data.tasks.is_empty() || data.tasks.len() != data.train.len() {
        return Err(bad("give each task its labelled sentences".into()));
    }
    if data.tasks.iter().any(|t| !t.is_tagging()) {
        return Err(bad("cross-view training trains taggers: every task must be a tagging task".into()));
    }
    let n = data.train[0].len();
    if n == 0 || data.dev.is_empty() {
        return Err(bad("no labelled training or no dev sentences".into()));
    }
    if data.train.iter().any(|t| t.len() != n || t.iter().zip(&data.train[0]).any(|(a, b)| a.words != b.words)) {
        return Err(bad("the tasks' labelled sentences differ: give the same sentences with each task's tags".into()));
    }
    let use_unlabeled = cfg.cvt || (distill_from.is_some() && cfg.distill_weight > 0.0);
    if use_unlabeled && data.unlabeled.is_empty() {
        return Err(bad("cross-view training and distillation learn from unlabelled text: give some".into()));
    }
    let labels: Vec<String> = data.tasks[0].class_names().to_vec();
    if let Some(t) = distill_from {
        let head = t.spec.head.as_ref().filter(|h| h.kind == bertling_runtime::HeadKind::Token);
        match head {
            None => return Err(bad(format!("the tagger to distil has no token head: fine-tune one on {} first (bertling finetune --task {})", data.tasks[0].name, data.tasks[0].name))),
            Some(h) if h.labels != labels => {
                return Err(bad(format!("the tagger to distil predicts {} ({}), the task {}: fine-tune it on the same task", h.labels.len(), h.labels.join(", "), labels.len())))
            }
            _ => {}
        }
        if t.tokenizer_json != teacher.tokenizer_json {
            return Err(bad("the tagger to distil has another tokenizer than the teacher: fine-tune it from the same teacher".into()));
        }
    }
    check_resume(files)?;
    let plain = files.device.device()?;
    let device = plain.clone().autodiff();
    let shape = cfg.shape;
    let init = light_tagger(teacher, &shape, cfg.seed)?;
    let max_len = init.spec.max_seq_len;
    let sets: Vec<Tokenized> =
        data.train.iter().map(|t| tokenize_tagged(t, &init.tokenizer_json, max_len).map(|(s, _)| s)).collect::<Result<_>>()?;
    let (dev, _) = tokenize_tagged(data.dev, &init.tokenizer_json, max_len)?;
    let dev_words = data.dev.iter().map(|s| s.words.len()).sum();
    let tok = TextTokenizer::new(&init.tokenizer_json, max_len)?;
    let mut unlabeled = Vec::new();
    for chunk in data.unlabeled.chunks(256) {
        let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
        unlabeled.extend(tok.encode(&refs)?.into_iter().filter(|i| i.ids.len() > 2));
    }
    if use_unlabeled && unlabeled.is_empty() {
        return Err(bad("the unlabelled text has no words".into()));
    }
    let mut source = match distill_from {
        Some(t) if cfg.distill_weight > 0.0 => Some(crate::targets::TeacherSource::new(t, TargetRequest { logits: true, ..Default::default() }, 0)?),
        _ => None,
    };

    let encoder = encoder_from_data(&init, &plain)?;
    let outputs: Vec<usize> = data.tasks.iter().map(TaskSpec::outputs).collect();
    let mut model = Tagger::new(encoder, &outputs, shape.width, cfg.seed, &plain).train();
    let template = model.valid();
    let per_epoch = n.div_ceil(cfg.batch_size);
    let labelled_steps = cfg.epochs * per_epoch;
    let steps = if use_unlabeled { 2 * labelled_steps } else { labelled_steps };
    let mut optim = optimizer_with(cfg.weight_decay);
    let (mut start, mut best, mut best_model, mut last): (usize, Option<Best>, Option<Tagger>, Option<Scores>) = (0, None, None, None);
    if let Some(dir) = files.checkpoint {
        if let Some(state) = read_json_state::<CvtState>(dir)? {
            let fail = |what: String| CompressError::Checkpoint { dir: dir.to_path_buf(), what };
            if state.layout != CVT_LAYOUT
                || state.config != *cfg
                || state.tasks != data.tasks
                || state.train != n
                || state.unlabeled != unlabeled.len()
                || state.teacher != source.is_some()
            {
                return Err(fail("it is of another run (other settings, tasks, data or tagger to distil); use the same ones, or another checkpoint directory".into()));
            }
            (model, optim) = load_files(dir, &state.files, "tagger", model, optim)?;
            if state.best.is_some() {
                let path = dir.join(&state.files).join("best");
                best_model = Some(template.clone().try_load_file(path).map_err(|e| fail(format!("reading the best model failed ({e:?}); remove it to start over")))?);
            }
            (start, best, last) = (state.step, state.best, state.last);
        }
    }
    let mut log = open_log(files)?;
    let mut write_log = |line: serde_json::Value| -> Result<()> {
        match log.as_mut() {
            Some(w) => writeln!(w, "{line}").map_err(|e| bad(format!("writing the log: {e}"))),
            None => Ok(()),
        }
    };
    let started = Instant::now();
    let mut seen = 0usize;
    let mut step_done = start;
    for step in start..steps {
        // Every step's random draws (dropout) from its own seed: a resumed run draws the same.
        device.seed(cfg.seed ^ (step as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let unlabeled_step = use_unlabeled && step % 2 == 1;
        let k = if use_unlabeled { step / 2 } else { step };
        let mut losses = CvtLosses::default();
        let scalar = |t: &Tensor<1>| t.clone().into_scalar::<f32>();
        let total = if !unlabeled_step {
            let idx = batch_indices(n, cfg.batch_size, cfg.seed, k);
            let inputs: Vec<Input> = idx.iter().map(|&i| sets[0].inputs[i].clone()).collect();
            seen += inputs.len();
            let states = dropout(model.states(&Batch::new(&inputs, &device), cfg.dropout), cfg.dropout);
            let mut total: Option<Tensor<1>> = None;
            for (t, set) in sets.iter().enumerate() {
                let (targets, rows) = set.batch_targets(&idx);
                let rows = rows.unwrap_or_default();
                let logits = rows_of(model.tasks[t].primary.forward(states.clone()), &rows);
                let l = task_loss(logits, &targets);
                total = Some(match total {
                    None => l,
                    Some(s) => s + l,
                });
            }
            let total = total.ok_or_else(|| bad("no task".into()))?;
            losses.gold = scalar(&total);
            total
        } else {
            let idx = batch_indices(unlabeled.len(), cfg.batch_size, cfg.seed ^ 0x0C7, k);
            let inputs: Vec<Input> = idx.iter().map(|&i| unlabeled[i].clone()).collect();
            seen += inputs.len();
            let rows = inner_rows(&inputs);
            let states = model.states(&Batch::new(&inputs, &device), cfg.dropout);
            let mut total = Tensor::<1>::zeros([1], &device);
            if cfg.cvt {
                let views = views(states.clone());
                for task in &model.tasks {
                    let target = softmax(rows_of(task.primary.forward(states.clone()), &rows), 1).detach();
                    for (view, module) in views.iter().zip(&task.views) {
                        let q = log_softmax(rows_of(module.forward(dropout(view.clone(), cfg.dropout)), &rows), 1);
                        total = total + (target.clone() * q).sum_dim(1).mean().neg().reshape([1]);
                    }
                }
                losses.cvt = scalar(&total);
            }
            if let Some(source) = source.as_mut() {
                let t = source.targets(&inputs, &plain)?;
                let tl = t.logits.ok_or_else(|| bad("the tagger to distil gave no logits".into()))?;
                let [_, labels] = tl.dims();
                let idx: Vec<i64> = rows.iter().map(|&r| r as i64).collect();
                let tl = tl.select(0, Tensor::<1, Int>::from_data(TensorData::new(idx, [rows.len()]), &plain));
                let tl = Tensor::<2>::from_data(tl.into_data(), &device).reshape([rows.len(), labels]);
                let student = rows_of(model.tasks[0].primary.forward(dropout(states, cfg.dropout)), &rows);
                let kd = logit_distillation(student, tl, false, cfg.temperature);
                losses.distill = scalar(&kd);
                total = total + kd.mul_scalar(cfg.distill_weight);
            }
            total
        };
        losses.total = scalar(&total);
        let lr = warmup_then_decay(cfg.lr, cfg.warmup, step, steps);
        let grads = GradientsParams::from_grads(total.backward(), &model);
        model = optim.step(lr, model, grads);
        step_done = step + 1;
        write_log(serde_json::json!({
            "step": step + 1, "unlabeled": unlabeled_step, "lr": lr, "loss": losses.total,
            "gold": losses.gold, "cvt": losses.cvt, "distill": losses.distill,
        }))?;
        // Dev scores after a labelled step on the schedule, and at the end.
        let labelled_done = if use_unlabeled { step / 2 + 1 } else { step + 1 };
        let due = step + 1 == steps
            || (!unlabeled_step
                && match cfg.eval_every {
                    0 => labelled_done % per_epoch == 0,
                    e => labelled_done % e == 0,
                });
        let mut dev_scores = None;
        if due {
            let valid = model.valid();
            let scores = Scores::of_set(&data.tasks[0], &predict(&valid.exported(), &dev, &plain), &dev);
            write_log(serde_json::json!({"step": step + 1, "dev": scores}))?;
            if best.as_ref().is_none_or(|b: &Best| scores.metric > b.scores.metric) {
                best = Some(Best { step: step + 1, scores: scores.clone() });
                best_model = Some(valid);
            }
            last = Some(scores.clone());
            dev_scores = Some(scores);
        }
        let elapsed = started.elapsed().as_secs_f64().max(1e-9);
        progress(&CvtProgress {
            step: step + 1,
            steps,
            unlabeled: unlabeled_step,
            losses,
            sentences_per_s: seen as f64 / elapsed,
            eta_s: elapsed / (step + 1 - start) as f64 * (steps - step - 1) as f64,
            dev: dev_scores,
            best: best.clone(),
        });
        let stop = files.stop_after.is_some_and(|s| step + 1 >= s && step + 1 < steps);
        let save = (cfg.checkpoint_every > 0 && (step + 1) % cfg.checkpoint_every == 0) || step + 1 == steps || stop;
        if let (Some(dir), true) = (files.checkpoint, save) {
            let sub = format!("step-{}", step + 1);
            if let Some(m) = &best_model {
                let fail = |what: String| CompressError::Checkpoint { dir: dir.to_path_buf(), what };
                std::fs::create_dir_all(dir.join(&sub)).map_err(|e| fail(format!("writing it failed: {e}")))?;
                m.clone().save_file(dir.join(&sub).join("best")).map_err(|e| fail(format!("writing the best model failed: {e:?}")))?;
            }
            let state = CvtState {
                step: step + 1,
                config: cfg.clone(),
                tasks: data.tasks.to_vec(),
                train: n,
                unlabeled: unlabeled.len(),
                teacher: source.is_some(),
                files: sub.clone(),
                best: best.clone(),
                last: last.clone(),
                layout: CVT_LAYOUT,
            };
            save_files(dir, &sub, "tagger", &model, &optim, &state)?;
        }
        if stop {
            break;
        }
    }
    let (Some(best_model), Some(best)) = (best_model, best) else {
        return Err(CompressError::Stopped { step: step_done, steps });
    };
    if step_done < steps {
        return Err(CompressError::Stopped { step: step_done, steps });
    }
    let mut out = encoder_to_data(&best_model.exported(), &with_token_head(&init, &labels))?;
    let report = CvtReport {
        task: data.tasks[0].name.clone(),
        tasks: data.tasks.iter().map(|t| t.name.clone()).collect(),
        labels: labels.clone(),
        train_sentences: n,
        unlabeled_sentences: if use_unlabeled { unlabeled.len() } else { 0 },
        dev_words,
        steps,
        cvt: cfg.cvt,
        distilled: source.is_some(),
        best,
        last,
        macs_per_token: shape.macs_per_token(labels.len()),
        train_seconds: started.elapsed().as_secs_f64(),
    };
    let p = &mut out.spec.provenance;
    p.teacher_sha256 = teacher.spec.provenance.teacher_sha256.clone();
    p.source = teacher.spec.provenance.source.clone();
    p.recipe = serde_json::json!({
        "method": "cvt", "tasks": report.tasks, "config": cfg, "cvt": cfg.cvt,
        "distilled_from": distill_from.map(|t| &t.spec.provenance.recipe),
        "train_sentences": n, "unlabeled_sentences": report.unlabeled_sentences,
    });
    p.metrics = serde_json::json!({"dev": report.best.scores, "best_step": report.best.step});
    p.created_by = format!("bertling-compressor {}", env!("CARGO_PKG_VERSION"));
    Ok((out, report))
}
