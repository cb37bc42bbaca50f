//! Task-agnostic distillation on plain text: the student learns the teacher's hidden states
//! (through learned projections where widths differ), attention distributions, embedding
//! output and, when both have a classification head, its label distribution. The same loop
//! trains KDLSQ students: a quantized student is distilled from the full-precision teacher.
//!
//! Deterministic: no dropout, data in file order (spans cut by seed and line position,
//! [`crate::corpus`]), AdamW state and the corpus position saved in checkpoints, so a run
//! resumed from a checkpoint ends with the same weights as an uninterrupted one.
//!
//! One piece per concern: [`config`] (layer map, loss weights, settings), [`losses`],
//! [`trainee`] (student and projections), [`checkpoint`], [`evaluate`] (held-out texts); this
//! file holds the loop.

mod checkpoint;
mod config;
mod evaluate;
mod losses;
mod trainee;

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::prelude::*;

pub(crate) use self::checkpoint::{load_files, optimizer_with, read_json_state, save_files};
use self::checkpoint::{optimizer, save_checkpoint};
pub use self::checkpoint::{CheckpointState, CHECKPOINT_LAYOUT};
pub(crate) use self::config::attention_of_layers;
pub use self::config::{layer_outputs, pair_layers, DistillConfig, LayerMap, LossWeights};
pub use self::evaluate::{evaluate, EvalResult, EvalSet};
pub(crate) use self::losses::{attention_kl, loss_of_outputs, masked_mse, pooled_cosine};
pub use self::losses::{distill_loss, Losses};
pub use self::trainee::{param_values, projections, trainee, Trainee};
use crate::corpus::Corpus;
use crate::error::{CompressError, Result};
use crate::student::{Batch, Encoder};
use crate::targets::{distill_request, request_covers, TeacherSource};

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
    /// The teacher's target cache, when the run has one: hits and texts added so far.
    pub cache: Option<crate::targets::CacheStats>,
}

/// How a progress callback stops a run early.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// Write a checkpoint of the step just done, then stop (continue it with `--resume`).
    Save,
    /// Stop as if killed: only the checkpoints written so far remain.
    Abandon,
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
/// it holds a checkpoint of the same configuration. The teacher's targets come from `targets`
/// (the runtime's kernels, perhaps a cache; [`TeacherSource::for_distill`] makes one), the
/// burn `teacher` gives the layer structure and the held-out evaluation. `log` receives one JSON line per step and
/// one per evaluation of `eval` (`{"step": N, "eval": {...}}`); `progress` is called after
/// every step and may stop the run early ([`Stop`]).
#[allow(clippy::too_many_arguments)]
pub fn distill(
    mut trainee: Trainee,
    teacher: &Encoder,
    targets: &mut TeacherSource,
    corpus: &mut Corpus,
    cfg: &DistillConfig,
    checkpoint_dir: Option<&Path>,
    device: &Device,
    eval: Option<&EvalSet>,
    mut log: Option<&mut dyn Write>,
    mut progress: impl FnMut(&Progress) -> std::ops::ControlFlow<Stop>,
) -> Result<Trained> {
    if cfg.steps == 0 || cfg.batch_size == 0 || cfg.accumulation == 0 {
        return Err(CompressError::InvalidArgument(
            "steps, batch size and accumulation must be at least 1".into(),
        ));
    }
    let pairs =
        pair_layers(&cfg.map, layer_outputs(&trainee.student).len(), layer_outputs(teacher).len())?;
    if trainee.proj.len() != pairs.len() + 1 {
        return Err(CompressError::InvalidArgument(
            "the trainee's projections do not match the layer map".into(),
        ));
    }
    let need = distill_request(&trainee.student, teacher, &pairs, &cfg.weights);
    if !request_covers(targets.request(), &need) {
        return Err(CompressError::InvalidArgument(format!(
            "the teacher targets give {:?}; this run's losses read {need:?}",
            targets.request()
        )));
    }
    device.seed(cfg.seed);
    let teacher_device = device.clone().without_autodiff();
    corpus.set_augment(cfg.augment, cfg.seed)?;
    let mut optim = optimizer(cfg);
    let mut start = 0;
    let mut last = Losses::default();
    if let Some(dir) = checkpoint_dir {
        if let Some(state) = checkpoint::read_state(dir, cfg)? {
            (trainee, optim) = checkpoint::load(dir, &state, trainee, optim)?;
            corpus.seek(state.lines_read)?;
            start = state.step;
            last = state.losses;
        }
    }
    let write_log = |log: &mut Option<&mut dyn Write>, line: serde_json::Value| -> Result<()> {
        if let Some(w) = log.as_deref_mut() {
            writeln!(w, "{line}")
                .map_err(|e| CompressError::InvalidArgument(format!("writing the log: {e}")))?;
        }
        Ok(())
    };
    let run_eval = |trainee: &Trainee, step: usize| -> Option<EvalResult> {
        let set = eval?;
        let due =
            step == 0 || step == cfg.steps || (set.every > 0 && step.is_multiple_of(set.every));
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
            let batch = Batch::new(&inputs, device);
            let t_out = targets.targets(&inputs, &teacher_device)?;
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
        let line = serde_json::json!({
            "step": step + 1, "lr": lr, "loss": sum.total, "hidden": sum.hidden,
            "attention": sum.attention, "embedding": sum.embedding, "logits": sum.logits,
            "sentence": sum.sentence, "tokens_per_s": tokens as f64 / elapsed,
        });
        write_log(&mut log, line)?;
        let evaluated = run_eval(&trainee, step + 1);
        if let Some(e) = &evaluated {
            write_log(&mut log, serde_json::json!({"step": step + 1, "eval": e}))?;
            last_eval = Some(*e);
        }
        let flow = progress(&Progress {
            step: step + 1,
            steps: cfg.steps,
            losses: sum,
            tokens_per_s: tokens as f64 / elapsed,
            eta_s: eta,
            lr,
            eval: evaluated,
            cache: targets.has_cache().then(|| targets.cache_stats()),
        });
        let at_checkpoint = cfg.checkpoint_every > 0 && (step + 1) % cfg.checkpoint_every == 0;
        let save = at_checkpoint
            || step + 1 == cfg.steps
            || flow == std::ops::ControlFlow::Break(Stop::Save);
        if let (Some(dir), true) = (checkpoint_dir, save) {
            let state = CheckpointState {
                step: step + 1,
                lines_read: corpus.lines_read,
                config: cfg.clone(),
                files: format!("step-{}", step + 1),
                losses: sum,
                layout: checkpoint::CHECKPOINT_LAYOUT,
            };
            save_checkpoint(dir, &trainee, &optim, &state)?;
        }
        if flow.is_break() {
            break;
        }
    }
    Ok(Trained { trainee, losses: last, step: step_done, eval: last_eval })
}
