//! The fine-tuning loop: epochs over the training examples in a seeded order, the task loss
//! (plus distillation from a fine-tuned teacher), dev scores on a schedule, the best dev
//! checkpoint kept, and checkpoints from which a killed run resumes to the same weights.

use std::io::Write;
use std::ops::ControlFlow;
use std::path::Path;
use std::time::Instant;

use bertling_runtime::Input;
use burn::module::Module;
use burn::optim::GradientsParams;
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::objective::{logit_distillation, predict, task_loss, Scores};
use super::theseus::{mixed_logits, modules, Replacing};
use crate::convert::dense_layers_mut;
use crate::distill::{
    layer_outputs, load_files, optimizer_with, pair_layers, projections, read_json_state,
    save_files, LayerMap, LossWeights, Stop, Trainee,
};
use crate::error::{CompressError, Result};
use crate::student::{Batch, Encoder};
use crate::task::{Target, TaskSpec};

/// Weights of the fine-tuning losses.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskWeights {
    /// The gold labels' loss (cross-entropy, or squared error for scores).
    pub gold: f32,
    /// Logit distillation from the teacher (with a teacher only).
    pub logits: f32,
    /// Its temperature.
    pub temperature: f32,
    /// Hidden-state MSE to the teacher's layers, uniformly mapped (with a teacher only).
    pub hidden: f32,
    /// Attention KL to the teacher's (with a teacher only).
    pub attention: f32,
}

impl Default for TaskWeights {
    /// Gold labels and the teacher's logits at T = 1, as KDLSQ and TinyBERT's prediction layer.
    fn default() -> Self {
        TaskWeights { gold: 1.0, logits: 1.0, temperature: 1.0, hidden: 0.0, attention: 0.0 }
    }
}

/// Fine-tuning settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FinetuneConfig {
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    /// Linear warm-up over this fraction of all steps, then linear decay to zero.
    pub warmup: f64,
    pub weight_decay: f32,
    /// Tokens per example (special tokens included; pairs truncated longest first).
    pub max_len: usize,
    pub seed: u64,
    /// Save a checkpoint every this many steps (0: only at the end).
    pub checkpoint_every: usize,
    /// Score the dev set every this many steps (0: after every epoch); always after the last.
    pub eval_every: usize,
    pub weights: TaskWeights,
    /// Weights of the encoder's matrices that are zero at the start stay zero (a
    /// magnitude-pruned model keeps its sparsity).
    #[serde(default)]
    pub keep_zeros: bool,
    /// Progressive module replacing (BERT-of-Theseus) with the teacher's layers as the
    /// predecessors; the student must have the teacher's width.
    #[serde(default)]
    pub replacing: Option<Replacing>,
    /// A new head's classifier is first fitted on the frozen model's features for this many
    /// full-batch steps ([`super::objective::probe_head`]); 0: it starts random.
    #[serde(default)]
    pub head_probe: usize,
}

impl Default for FinetuneConfig {
    /// BERT's GLUE recipe (Devlin et al.): 3 epochs, batch 32, 10 % warm-up, weight decay
    /// 0.01; the learning rate at the top of its 2e-5..5e-5 range, which small students need.
    fn default() -> Self {
        FinetuneConfig {
            epochs: 3,
            batch_size: 32,
            lr: 5e-5,
            warmup: 0.1,
            weight_decay: 0.01,
            max_len: 128,
            seed: 42,
            checkpoint_every: 500,
            eval_every: 0,
            weights: TaskWeights::default(),
            keep_zeros: false,
            replacing: None,
            head_probe: 200,
        }
    }
}

impl FinetuneConfig {
    /// Optimizer steps for `examples` training examples.
    pub fn steps(&self, examples: usize) -> usize {
        self.epochs * examples.div_ceil(self.batch_size.max(1))
    }

    fn lr_at(&self, step: usize, steps: usize) -> f64 {
        warmup_then_decay(self.lr, self.warmup, step, steps)
    }
}

/// The learning rate of step `step` of `steps`: linear warm-up to `lr` over the fraction
/// `warmup` of the steps, then linear decay to zero.
pub fn warmup_then_decay(lr: f64, warmup: f64, step: usize, steps: usize) -> f64 {
    let warmup = (warmup * steps as f64).round() as usize;
    if step < warmup {
        lr * (step + 1) as f64 / warmup as f64
    } else {
        lr * steps.saturating_sub(step) as f64 / steps.saturating_sub(warmup).max(1) as f64
    }
}

/// Tokenized examples: one target per input (sequence tasks), or, for a tagging task, one per
/// labelled word, the words of every input in order, each at the token `positions[i][k]` of
/// its first sub-word.
#[derive(Clone, Debug)]
pub struct Tokenized {
    pub inputs: Vec<Input>,
    pub targets: Vec<Target>,
    /// Tagging: per input, the token index of each labelled word; empty for sequence tasks.
    pub positions: Vec<Vec<usize>>,
    /// Tagging: where input `i`'s words start in `targets`.
    starts: Vec<usize>,
    tagging: bool,
}

impl Tokenized {
    /// A sequence task's examples: one target per input.
    pub fn sequences(inputs: Vec<Input>, targets: Vec<Target>) -> Tokenized {
        Tokenized { inputs, targets, positions: Vec::new(), starts: Vec::new(), tagging: false }
    }

    /// A tagging task's sentences: per input, its labelled words' token positions and targets.
    pub fn tokens(inputs: Vec<Input>, words: Vec<Vec<(usize, Target)>>) -> Tokenized {
        let mut starts = Vec::with_capacity(words.len());
        let (mut targets, mut positions) = (Vec::new(), Vec::with_capacity(words.len()));
        for w in words {
            starts.push(targets.len());
            positions.push(w.iter().map(|&(p, _)| p).collect());
            targets.extend(w.iter().map(|&(_, t)| t));
        }
        Tokenized { inputs, targets, positions, starts, tagging: true }
    }

    /// Whether the targets are per word (a token head's task).
    pub fn is_tagging(&self) -> bool {
        self.tagging
    }

    /// For tagging, the rows of inputs `idx`'s labelled words in a padded batch's token logits
    /// (`[idx.len() · seq, labels]`, `seq` the longest input); `None` for sequence tasks.
    pub fn rows(&self, idx: &[usize]) -> Option<Vec<usize>> {
        if !self.tagging {
            return None;
        }
        let seq = idx.iter().map(|&i| self.inputs[i].ids.len()).max().unwrap_or(1).max(1);
        Some(
            idx.iter()
                .enumerate()
                .flat_map(|(b, &i)| self.positions[i].iter().map(move |&p| b * seq + p))
                .collect(),
        )
    }

    /// The targets of inputs `idx` (per word for tagging) and their [`Tokenized::rows`].
    pub fn batch_targets(&self, idx: &[usize]) -> (Vec<Target>, Option<Vec<usize>>) {
        if !self.tagging {
            return (idx.iter().map(|&i| self.targets[i]).collect(), None);
        }
        let targets = idx
            .iter()
            .flat_map(|&i| {
                let start = self.starts[i];
                self.targets[start..start + self.positions[i].len()].iter().copied()
            })
            .collect();
        (targets, self.rows(idx))
    }
}

/// The rows `rows` of `logits` (a token head's `[batch · seq, labels]`), or all of them.
pub(crate) fn pick_rows(logits: Tensor<2>, rows: Option<&[usize]>) -> Tensor<2> {
    match rows {
        None => logits,
        Some(r) => {
            let device = logits.device();
            let v: Vec<i64> = r.iter().map(|&x| x as i64).collect();
            let idx = Tensor::<1, Int>::from_data(TensorData::new(v, [r.len()]), &device);
            logits.select(0, idx)
        }
    }
}

/// The best dev scores so far and the step that had them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Best {
    pub step: usize,
    pub scores: Scores,
}

/// The losses of one step.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StepLosses {
    pub total: f32,
    pub task: f32,
    pub logits: f32,
    pub hidden: f32,
    pub attention: f32,
}

/// Progress of a run, reported after every optimizer step.
#[derive(Clone, Debug)]
pub struct FinetuneProgress {
    pub step: usize,
    pub steps: usize,
    /// The epoch of this step, from 1.
    pub epoch: usize,
    pub epochs: usize,
    pub losses: StepLosses,
    pub examples_per_s: f64,
    pub eta_s: f64,
    pub lr: f64,
    /// The dev scores made at this step, if due.
    pub dev: Option<Scores>,
    pub best: Option<Best>,
}

/// What [`finetune`] returns.
pub struct Finetuned {
    /// The model of the best dev scores (plain device); `None` only when stopped before the
    /// first dev evaluation.
    pub best_model: Option<Encoder>,
    pub best: Option<Best>,
    /// The last dev scores.
    pub last: Option<Scores>,
    pub step: usize,
    pub steps: usize,
}

/// A task-distillation teacher: a fine-tuned encoder with a head for the same labels, as burn's
/// module (module replacing) and as model data (its targets come from the runtime's kernels).
pub struct Teacher<'a> {
    pub encoder: &'a Encoder,
    pub data: &'a bertling_runtime::ModelData,
}

const FINETUNE_LAYOUT: u32 = 1;

#[derive(Clone, Debug, Serialize, Deserialize)]
struct FinetuneState {
    step: usize,
    config: FinetuneConfig,
    task: TaskSpec,
    train_examples: usize,
    dev_examples: usize,
    /// Whether a teacher took part (its outputs are part of the run).
    teacher: bool,
    files: String,
    best: Option<Best>,
    last: Option<Scores>,
    layout: u32,
}

/// The examples of step `step`: epoch `step / per_epoch` visits all examples in an order
/// shuffled by `seed` and the epoch (Fisher–Yates), `batch` at a time.
pub fn batch_indices(n: usize, batch: usize, seed: u64, step: usize) -> Vec<usize> {
    let per_epoch = n.div_ceil(batch);
    let (epoch, k) = (step / per_epoch, step % per_epoch);
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = bertling_runtime::rng::XorShift::new(
        seed ^ (epoch as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15),
    );
    for i in (1..n).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        order.swap(i, j);
    }
    order[k * batch..((k + 1) * batch).min(n)].to_vec()
}

/// Fine-tunes `model` (with its head; on the plain device) on `train`, scoring `dev`; with a
/// teacher, distils its logits (and, if weighted, hidden states and attention). `log` receives
/// one JSON line per step and one per dev evaluation; `progress` may stop the run ([`Stop`]).
#[allow(clippy::too_many_arguments)]
pub fn finetune(
    model: Encoder,
    teacher: Option<Teacher>,
    task: &TaskSpec,
    train: &Tokenized,
    dev: &Tokenized,
    cfg: &FinetuneConfig,
    checkpoint_dir: Option<&Path>,
    device: &Device,
    mut log: Option<&mut dyn Write>,
    mut progress: impl FnMut(&FinetuneProgress) -> ControlFlow<Stop>,
) -> Result<Finetuned> {
    if cfg.epochs == 0 || cfg.batch_size == 0 {
        return Err(CompressError::InvalidArgument(
            "epochs and batch size must be at least 1".into(),
        ));
    }
    if train.inputs.is_empty() || dev.inputs.is_empty() {
        return Err(CompressError::InvalidArgument("no training or no dev examples".into()));
    }
    if model.head.is_none() {
        return Err(CompressError::InvalidArgument("the model to fine-tune has no head".into()));
    }
    let token_head = model.head.as_ref().is_some_and(|h| h.token);
    if token_head != train.is_tagging() || token_head != dev.is_tagging() {
        return Err(CompressError::InvalidArgument(
            "a token head trains on tagged words and a sequence head on labelled texts: the \
             model's head and the data do not match"
                .into(),
        ));
    }
    if token_head && cfg.replacing.is_some() {
        return Err(CompressError::InvalidArgument(
            "module replacing (--theseus) is for sequence tasks; distil a tagger with --teacher"
                .into(),
        ));
    }
    let plain = device.clone().without_autodiff();
    let w = cfg.weights;
    let distil_states = teacher.is_some() && (w.hidden != 0.0 || w.attention != 0.0);
    let pairs = match &teacher {
        Some(t) if distil_states => pair_layers(
            &LayerMap::Uniform,
            layer_outputs(&model).len(),
            layer_outputs(t.encoder).len(),
        )?,
        _ => Vec::new(),
    };
    // What the losses read of the teacher, from the runtime's kernels.
    let weights =
        LossWeights { hidden: w.hidden, attention: w.attention, embedding: 0.0, logits: 0.0, sentence: 0.0 };
    let mut source = match &teacher {
        Some(t) if w.logits != 0.0 || distil_states => {
            let mut request = if distil_states {
                crate::targets::distill_request(&model, t.encoder, &pairs, &weights)
            } else {
                bertling_runtime::TargetRequest::default()
            };
            request.logits = true;
            Some(crate::targets::TeacherSource::new(t.data, request, 0)?)
        }
        _ => None,
    };
    let proj = match &teacher {
        Some(t) if distil_states => projections(&model, t.encoder, &pairs, cfg.seed, device),
        _ => Vec::new(),
    };
    let theseus =
        match (cfg.replacing, &teacher) {
            (None, _) => None,
            (Some(_), None) => return Err(CompressError::InvalidArgument(
                "module replacing needs the fine-tuned teacher whose modules the student replaces"
                    .into(),
            )),
            (Some(_), Some(_)) if distil_states => {
                return Err(CompressError::InvalidArgument(
                    "module replacing trains without hidden-state and attention losses: set their \
                 weights to 0"
                        .into(),
                ))
            }
            (Some(r), Some(t)) => Some((r, modules(&model, t.encoder)?)),
        };
    let mut trainee = Trainee { student: model, proj }.train();
    let template = trainee.student.valid();
    let steps = cfg.steps(train.inputs.len());
    let per_epoch = train.inputs.len().div_ceil(cfg.batch_size);
    device.seed(cfg.seed);
    let mut optim = optimizer_with(cfg.weight_decay);
    let (mut start, mut best, mut best_model, mut last) = (0, None, None, None);
    if let Some(dir) = checkpoint_dir {
        if let Some(state) = read_json_state::<FinetuneState>(dir)? {
            let fail = |what: String| CompressError::Checkpoint { dir: dir.to_path_buf(), what };
            if state.layout != FINETUNE_LAYOUT
                || state.config != *cfg
                || state.task != *task
                || state.train_examples != train.inputs.len()
                || state.dev_examples != dev.inputs.len()
                || state.teacher != teacher.is_some()
            {
                return Err(fail(
                    "it is of another fine-tuning run (other settings, task, data or teacher); use \
                     the same ones, or another checkpoint directory"
                        .into(),
                ));
            }
            (trainee, optim) = load_files(dir, &state.files, "trainee", trainee, optim)?;
            if state.best.is_some() {
                let path = dir.join(&state.files).join("best");
                best_model = Some(template.clone().try_load_file(path).map_err(|e| {
                    fail(format!("reading the best model failed ({e:?}); remove it to start over"))
                })?);
            }
            (start, best, last) = (state.step, state.best, state.last);
        }
    }
    let write_log = |log: &mut Option<&mut dyn Write>, line: serde_json::Value| -> Result<()> {
        match log.as_deref_mut() {
            Some(w) => writeln!(w, "{line}")
                .map_err(|e| CompressError::InvalidArgument(format!("writing the log: {e}"))),
            None => Ok(()),
        }
    };
    let masks = if cfg.keep_zeros { zero_masks(&mut trainee.student) } else { Vec::new() };
    let regression = task.is_regression();
    let started = Instant::now();
    let mut seen = 0usize;
    let mut step_done = start;
    for step in start..steps {
        let idx = batch_indices(train.inputs.len(), cfg.batch_size, cfg.seed, step);
        let inputs: Vec<Input> = idx.iter().map(|&i| train.inputs[i].clone()).collect();
        let (targets, rows) = train.batch_targets(&idx);
        seen += inputs.len();
        let batch = Batch::new(&inputs, device);
        let no_head =
            || CompressError::InvalidArgument("the model to fine-tune has no head".into());
        let (logits, out) = match (&theseus, &teacher) {
            (Some((r, modules)), Some(t)) => {
                let replace = r.draw(modules.len(), step, steps, cfg.seed);
                let l = mixed_logits(&trainee.student, t.encoder, modules, &replace, &batch);
                (l.ok_or_else(no_head)?, None)
            }
            _ => {
                let out = trainee.student.forward(&batch);
                (out.logits.clone().ok_or_else(no_head)?, Some(out))
            }
        };
        // Tagging: the labelled words' rows (first sub-words) of the token logits.
        let logits = pick_rows(logits, rows.as_deref());
        let gold = task_loss(logits.clone(), &targets);
        let mut total = gold.clone().mul_scalar(w.gold);
        let scalar = |t: &Tensor<1>| t.clone().into_scalar::<f32>();
        let mut losses = StepLosses { task: scalar(&gold), ..StepLosses::default() };
        if let (Some(t), Some(source)) = (teacher.as_ref(), source.as_mut()) {
            let t_out = source.targets(&inputs, &plain)?;
            if let Some(tl) = &t_out.logits {
                let tl = pick_rows(tl.clone(), rows.as_deref());
                let kd = logit_distillation(logits, tl, regression, w.temperature);
                losses.logits = scalar(&kd);
                total = total + kd.mul_scalar(w.logits);
            }
            if let (true, Some(out)) = (distil_states, &out) {
                let (l, parts) = crate::distill::loss_of_outputs(
                    &trainee, out, &t_out, t.encoder, &batch, &pairs, &weights,
                );
                (losses.hidden, losses.attention) = (parts.hidden, parts.attention);
                total = total + l;
            }
        }
        losses.total = scalar(&total);
        let lr = cfg.lr_at(step, steps);
        let grads = GradientsParams::from_grads(total.backward(), &trainee);
        trainee = optim.step(lr, trainee, grads);
        if cfg.keep_zeros {
            keep_zeros(&mut trainee.student, &masks);
        }
        step_done = step + 1;
        let elapsed = started.elapsed().as_secs_f64().max(1e-9);
        let line = serde_json::json!({
            "step": step + 1, "epoch": step / per_epoch + 1, "lr": lr, "loss": losses.total,
            "task": losses.task, "logits": losses.logits, "hidden": losses.hidden,
            "attention": losses.attention,
        });
        write_log(&mut log, line)?;
        let due = step + 1 == steps
            || match cfg.eval_every {
                0 => (step + 1) % per_epoch == 0,
                n => (step + 1) % n == 0,
            };
        let mut dev_scores = None;
        if due {
            let model = trainee.student.valid();
            let scores = Scores::of_set(task, &predict(&model, dev, &plain), dev);
            write_log(&mut log, serde_json::json!({"step": step + 1, "dev": scores}))?;
            if best.as_ref().is_none_or(|b: &Best| scores.metric > b.scores.metric) {
                best = Some(Best { step: step + 1, scores: scores.clone() });
                best_model = Some(model);
            }
            last = Some(scores.clone());
            dev_scores = Some(scores);
        }
        let flow = progress(&FinetuneProgress {
            step: step + 1,
            steps,
            epoch: step / per_epoch + 1,
            epochs: cfg.epochs,
            losses,
            examples_per_s: seen as f64 / elapsed,
            eta_s: elapsed / (step + 1 - start) as f64 * (steps - step - 1) as f64,
            lr,
            dev: dev_scores,
            best: best.clone(),
        });
        let save = (cfg.checkpoint_every > 0 && (step + 1) % cfg.checkpoint_every == 0)
            || step + 1 == steps
            || flow == ControlFlow::Break(Stop::Save);
        if let (Some(dir), true) = (checkpoint_dir, save) {
            let files = format!("step-{}", step + 1);
            if let Some(m) = &best_model {
                let sub = dir.join(&files);
                let fail =
                    |what: String| CompressError::Checkpoint { dir: dir.to_path_buf(), what };
                std::fs::create_dir_all(&sub)
                    .map_err(|e| fail(format!("writing it failed: {e}")))?;
                m.clone()
                    .save_file(sub.join("best"))
                    .map_err(|e| fail(format!("writing the best model failed: {e:?}")))?;
            }
            let state = FinetuneState {
                step: step + 1,
                config: cfg.clone(),
                task: task.clone(),
                train_examples: train.inputs.len(),
                dev_examples: dev.inputs.len(),
                teacher: teacher.is_some(),
                files: files.clone(),
                best: best.clone(),
                last: last.clone(),
                layout: FINETUNE_LAYOUT,
            };
            save_files(dir, &files, "trainee", &trainee, &optim, &state)?;
        }
        if flow.is_break() {
            break;
        }
    }
    Ok(Finetuned { best_model, best, last, step: step_done, steps })
}

/// 1 where a block matrix's weight is not zero, 0 where it is, per matrix in package order.
fn zero_masks(enc: &mut Encoder) -> Vec<Tensor<2>> {
    dense_layers_mut(enc).into_iter().map(|(_, d)| d.weight.val().abs().sign().detach()).collect()
}

/// Sets the weights outside the masks back to zero (the optimizer moves them).
fn keep_zeros(enc: &mut Encoder, masks: &[Tensor<2>]) {
    for ((_, d), m) in dense_layers_mut(enc).into_iter().zip(masks) {
        d.weight = d.weight.clone().map(|w| (w * m.clone()).detach().require_grad());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_epoch_visits_every_example_once_in_a_seeded_order() {
        let (n, b) = (10, 3);
        for epoch in 0..3 {
            let mut seen: Vec<usize> =
                (0..4).flat_map(|k| batch_indices(n, b, 7, epoch * 4 + k)).collect();
            assert_eq!(batch_indices(n, b, 7, epoch * 4 + 3).len(), 1, "the last batch is short");
            seen.sort();
            assert_eq!(seen, (0..n).collect::<Vec<_>>());
        }
        assert_ne!(batch_indices(n, b, 7, 0), batch_indices(n, b, 7, 4), "epochs differ");
        assert_ne!(batch_indices(n, b, 7, 0), batch_indices(n, b, 8, 0), "seeds differ");
        assert_eq!(batch_indices(n, b, 7, 5), batch_indices(n, b, 7, 5));
    }

    #[test]
    fn the_schedule_warms_up_then_decays_to_zero() {
        let cfg = FinetuneConfig { lr: 1.0, warmup: 0.1, ..FinetuneConfig::default() };
        assert!((cfg.lr_at(0, 100) - 0.1).abs() < 1e-12);
        assert!((cfg.lr_at(9, 100) - 1.0).abs() < 1e-12);
        assert!((cfg.lr_at(10, 100) - 1.0).abs() < 1e-12);
        assert!((cfg.lr_at(55, 100) - 0.5).abs() < 1e-12);
        assert!(cfg.lr_at(99, 100) > 0.0);
        let none = FinetuneConfig { warmup: 0.0, ..cfg };
        assert!((none.lr_at(0, 4) - 1.0).abs() < 1e-12);
    }
}
