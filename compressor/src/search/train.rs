//! Block-wise training of the supernet (NAS-BERT). Every step, each stage learns to map the
//! teacher's state at its input to the teacher's state at its output, on one candidate drawn
//! from its pool and on its largest candidate; the embedding learns the teacher's embedding
//! output at a drawn width and at the largest. Every `shrink_every` steps each stage's pool is
//! scored on held-out sentences and, within each size bin, the worse half is dropped (NAS-BERT's
//! progressive shrinking), down to `keep` per bin. Seeded; checkpointed, and a killed run resumes
//! to the weights of an uninterrupted one.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use bertling_runtime::rng::XorShift;
use bertling_runtime::Input;
use burn::optim::GradientsParams;
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::space::{SearchSpace, Stage};
use super::supernet::Supernet;
use crate::corpus::Corpus;
use crate::distill::{load_files, masked_mse, optimizer_with, read_json_state, save_files, Stop};
use crate::error::{CompressError, Result};
use crate::student::{Batch, Encoder, Masks};
use crate::targets::TeacherSource;

/// How the supernet trains.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SupernetConfig {
    pub steps: usize,
    pub batch_size: usize,
    pub max_len: usize,
    /// Peak learning rate (linear warm-up over the first 10 % of steps, then linear decay).
    pub lr: f64,
    pub seed: u64,
    /// Candidates drawn per stage at the start.
    pub pool: usize,
    /// Steps between prunings of the pools (0: never).
    pub shrink_every: usize,
    /// Size bins per stage in which pruning keeps the better half.
    pub bins: usize,
    /// Pruning stops at this many candidates per bin.
    pub keep: usize,
    /// Steps between checkpoints (0: only at the end).
    pub checkpoint_every: usize,
    /// Train only this stage (stage 0 with the embedding): one process per stage, each on its
    /// own device, since the stages learn independently; `None`: all stages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub only_stage: Option<usize>,
}

impl SupernetConfig {
    fn trains(&self, stage: usize) -> bool {
        self.only_stage.is_none_or(|k| k == stage)
    }
}

impl SupernetConfig {
    /// The learning rate of `step` (0-based).
    pub fn lr_at(&self, step: usize) -> f64 {
        let warm = (self.steps / 10).max(1);
        if step < warm {
            self.lr * (step + 1) as f64 / warm as f64
        } else {
            self.lr * (self.steps - step) as f64 / (self.steps - warm).max(1) as f64
        }
    }
}

/// What a checkpoint directory's `state.json` holds.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct SupernetState {
    step: usize,
    lines_read: u64,
    config: SupernetConfig,
    files: String,
    pools: Vec<Vec<Stage>>,
}

/// Held-out sentences and the teacher's states on them at every stage boundary.
pub struct HeldOut {
    batches: Vec<Batch>,
    /// The teacher pools its [CLS] state (else the mean of its tokens').
    cls_pooling: bool,
    /// Per batch, the teacher's states at the boundaries (embedding output first).
    states: Vec<Vec<Tensor<3>>>,
}

impl HeldOut {
    /// Batches of `inputs` on `device` (no gradients) and the teacher's states there.
    pub fn new(
        teacher: &Encoder,
        inputs: &[Input],
        batch_size: usize,
        bounds: &[usize],
        device: &Device,
    ) -> Result<HeldOut> {
        if inputs.is_empty() {
            return Err(CompressError::InvalidArgument(
                "the held-out set is empty: give at least one sentence".into(),
            ));
        }
        let mut batches = Vec::new();
        let mut states = Vec::new();
        for chunk in inputs.chunks(batch_size.max(1)) {
            let batch = Batch::new(chunk, device);
            let hidden = teacher.forward(&batch).hidden;
            states.push(bounds.iter().map(|&b| hidden[b].clone()).collect());
            batches.push(batch);
        }
        Ok(HeldOut { batches, states, cls_pooling: teacher.cls_pooling })
    }

    /// Sentences held out.
    pub fn len(&self) -> usize {
        self.batches.iter().map(|b| b.ids.dims()[0]).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }

    /// The held-out loss of stage `k` on candidate `path` (`net` an inference copy).
    pub fn stage_loss(&self, net: &Supernet, k: usize, path: &Stage) -> f32 {
        self.mean(|batch, states| {
            let y = net.stage_forward(k, path, states[k].clone(), &Masks::new(batch));
            masked_mse(y, states[k + 1].clone(), &batch.mask)
        })
    }

    /// The held-out loss of the embedding at width `e`.
    pub fn embedding_loss(&self, net: &Supernet, e: usize) -> f32 {
        self.mean(|batch, states| masked_mse(net.embed(batch, e), states[0].clone(), &batch.mask))
    }

    /// Mean cosine of the candidate's mean-pooled final states to the teacher's, over the
    /// held-out sentences (NAS-BERT re-ranks its best few by a measure of the whole model).
    pub fn cosine(&self, net: &Supernet, arch: &super::Arch) -> f32 {
        let mut sum = 0.0;
        for (batch, states) in self.batches.iter().zip(&self.states) {
            let (s, t) = (net.chain(arch, batch), states[states.len() - 1].clone());
            let cos = crate::distill::pooled_cosine(s, t, &batch.mask, self.cls_pooling);
            sum += cos.sum().into_scalar::<f32>();
        }
        sum / self.len().max(1) as f32
    }

    fn mean(&self, loss: impl Fn(&Batch, &[Tensor<3>]) -> Tensor<1>) -> f32 {
        let mut sum = 0.0;
        for (batch, states) in self.batches.iter().zip(&self.states) {
            let l = loss(batch, states).into_scalar::<f32>();
            sum += l * batch.ids.dims()[0] as f32;
        }
        sum / self.len().max(1) as f32
    }
}

/// Hidden-state indices of the stage boundaries: 0, then the end of each stage.
/// What the supernet's training reads of the teacher: its states at the stage boundaries.
pub fn supernet_request(space: &SearchSpace) -> bertling_runtime::TargetRequest {
    bertling_runtime::TargetRequest { hidden: boundaries(space), ..Default::default() }
}

pub fn boundaries(space: &SearchSpace) -> Vec<usize> {
    std::iter::once(0)
        .chain(space.slots.iter().scan(0, |end, n| Some(*end + n).inspect(|v| *end = *v)))
        .collect()
}

/// Progress after each step.
#[derive(Clone, Debug)]
pub struct SupernetProgress {
    pub step: usize,
    pub steps: usize,
    pub loss: f32,
    pub tokens_per_s: f64,
    pub eta_s: f64,
    /// Candidates left per stage.
    pub pools: Vec<usize>,
}

/// What [`train_supernet`] returns.
pub struct TrainedSupernet {
    pub net: Supernet,
    /// Each stage's candidates left after pruning.
    pub pools: Vec<Vec<Stage>>,
    pub step: usize,
}

/// Trains `net` block-wise against `teacher` on `corpus` (see the module docs), resuming from
/// `checkpoint_dir` when it holds a checkpoint of the same configuration.
#[allow(clippy::too_many_arguments)]
pub fn train_supernet(
    mut net: Supernet,
    teacher: &mut TeacherSource,
    space: &SearchSpace,
    corpus: &mut Corpus,
    held: &HeldOut,
    cfg: &SupernetConfig,
    checkpoint_dir: Option<&Path>,
    device: &Device,
    mut log: Option<&mut dyn Write>,
    mut progress: impl FnMut(&SupernetProgress) -> std::ops::ControlFlow<Stop>,
) -> Result<TrainedSupernet> {
    if cfg.steps == 0 || cfg.batch_size == 0 || cfg.pool == 0 || cfg.bins == 0 {
        return Err(CompressError::InvalidArgument(
            "steps, batch size, pool and bins must be at least 1".into(),
        ));
    }
    if cfg.only_stage.is_some_and(|k| k >= space.slots.len()) {
        return Err(CompressError::InvalidArgument(format!(
            "stage {} does not exist: the space has stages 0 to {}",
            cfg.only_stage.unwrap_or(0),
            space.slots.len() - 1
        )));
    }
    let bounds = boundaries(space);
    if !bounds.iter().all(|b| teacher.request().hidden.contains(b)) {
        return Err(CompressError::InvalidArgument(format!(
            "the teacher targets give hidden states {:?}; the supernet's stages read {bounds:?} \
             (use supernet_request)",
            teacher.request().hidden
        )));
    }
    let mut rng = XorShift::new(cfg.seed);
    let mut pools: Vec<Vec<Stage>> =
        space.slots.iter().map(|&n| draw_pool(space, n, cfg.pool, &mut rng)).collect();
    let mut optim = optimizer_with(0.0);
    let mut start = 0;
    if let Some(dir) = checkpoint_dir {
        if let Some(state) = read_state(dir, cfg)? {
            (net, optim) = load_files(dir, &state.files, "supernet", net, optim)?;
            corpus.seek(state.lines_read)?;
            start = state.step;
            pools = state.pools;
        }
    }
    let write_log = |log: &mut Option<&mut dyn Write>, line: serde_json::Value| -> Result<()> {
        if let Some(w) = log.as_deref_mut() {
            writeln!(w, "{line}")
                .map_err(|e| CompressError::InvalidArgument(format!("writing the log: {e}")))?;
        }
        Ok(())
    };
    let teacher_device = device.clone().without_autodiff();
    let started = Instant::now();
    let mut tokens = 0usize;
    let mut step_done = start;
    for step in start..cfg.steps {
        // Each step its own stream: a resumed run draws what an uninterrupted one drew.
        let mut rng =
            XorShift::new(cfg.seed ^ (step as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let inputs = corpus.next_batch(cfg.batch_size)?;
        tokens += inputs.iter().map(|i| i.ids.len()).sum::<usize>();
        let t_out = teacher.targets(&inputs, &teacher_device)?;
        let batch = Batch::new(&inputs, device);
        let masks = Masks::new(&batch);
        let widths = &space.embedding_widths;
        let e = widths[rng.below(widths.len() as u64) as usize];
        let mut losses = Vec::new();
        let mut drawn_all = Vec::with_capacity(pools.len());
        if cfg.trains(0) {
            for e in dedup(e, net.embedding_width()) {
                losses.push(masked_mse(net.embed(&batch, e), t_out.hidden(0), &batch.mask));
            }
        }
        for (k, pool) in pools.iter().enumerate() {
            let drawn = &pool[rng.below(pool.len() as u64) as usize];
            drawn_all.push(drawn.clone());
            if !cfg.trains(k) {
                continue;
            }
            let largest = net.largest(k);
            let (x, y) = (&t_out.hidden(bounds[k]), &t_out.hidden(bounds[k + 1]));
            for path in [drawn, &largest] {
                let out = net.stage_forward(k, path, x.clone(), &masks);
                losses.push(masked_mse(out, y.clone(), &batch.mask));
            }
        }
        let loss = losses.into_iter().reduce(|a, b| a + b).expect("a trained stage");
        let value = loss.clone().into_scalar::<f32>();
        let lr = cfg.lr_at(step);
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        net = optim.step(lr, net, grads);
        step_done = step + 1;
        let elapsed = started.elapsed().as_secs_f64().max(1e-9);
        // What was drawn, so that benches/train/reference.py repeats the same computation.
        let drawn = super::Arch { embedding: e, stages: drawn_all }.to_string();
        write_log(
            &mut log,
            serde_json::json!({"step": step + 1, "lr": lr, "loss": value,
                "tokens_per_s": tokens as f64 / elapsed, "drawn": drawn}),
        )?;
        if cfg.shrink_every > 0
            && (step + 1).is_multiple_of(cfg.shrink_every)
            && step + 1 < cfg.steps
        {
            let valid = net.clone().valid();
            let mut held_losses = Vec::new();
            for (k, pool) in pools.iter_mut().enumerate().filter(|(k, _)| cfg.trains(*k)) {
                let scores: Vec<f32> = pool.iter().map(|p| held.stage_loss(&valid, k, p)).collect();
                held_losses.push(scores.iter().copied().fold(f32::INFINITY, f32::min));
                *pool = shrink(std::mem::take(pool), &scores, cfg.bins, cfg.keep);
            }
            let sizes: Vec<usize> = pools.iter().map(Vec::len).collect();
            write_log(
                &mut log,
                serde_json::json!({"step": step + 1, "shrink": {"pools": sizes, "best_held_out": held_losses}}),
            )?;
        }
        let done = step + 1 - start;
        let flow = progress(&SupernetProgress {
            step: step + 1,
            steps: cfg.steps,
            loss: value,
            tokens_per_s: tokens as f64 / elapsed,
            eta_s: elapsed / done as f64 * (cfg.steps - step - 1) as f64,
            pools: pools.iter().map(Vec::len).collect(),
        });
        let due = cfg.checkpoint_every > 0 && (step + 1).is_multiple_of(cfg.checkpoint_every);
        if let (Some(dir), true) = (
            checkpoint_dir,
            due || step + 1 == cfg.steps || flow == std::ops::ControlFlow::Break(Stop::Save),
        ) {
            let files = format!("step-{}", step + 1);
            let state = SupernetState {
                step: step + 1,
                lines_read: corpus.lines_read,
                config: cfg.clone(),
                files: files.clone(),
                pools: pools.clone(),
            };
            save_files(dir, &files, "supernet", &net, &optim, &state)?;
        }
        if flow.is_break() {
            break;
        }
    }
    Ok(TrainedSupernet { net, pools, step: step_done })
}

fn dedup(a: usize, b: usize) -> Vec<usize> {
    if a == b {
        vec![a]
    } else {
        vec![a, b]
    }
}

/// Up to `n` distinct candidates for a stage of `slots` slots (fewer if the space is smaller).
fn draw_pool(space: &SearchSpace, slots: usize, n: usize, rng: &mut XorShift) -> Vec<Stage> {
    let mut pool: Vec<Stage> = Vec::with_capacity(n);
    for _ in 0..n * 20 {
        if pool.len() == n {
            break;
        }
        let s = space.sample_stage(slots, rng);
        if !pool.contains(&s) {
            pool.push(s);
        }
    }
    pool
}

/// Progressive shrinking: the pool sorted by size into `bins` bins of (nearly) equal counts, each
/// keeping its better half by `scores` (lower is better), at least `keep`.
pub fn shrink(pool: Vec<Stage>, scores: &[f32], bins: usize, keep: usize) -> Vec<Stage> {
    let mut order: Vec<usize> = (0..pool.len()).collect();
    order.sort_by_key(|&i| (pool[i].parameters(), i));
    let per = pool.len().div_ceil(bins.max(1)).max(1);
    let mut kept = Vec::new();
    for bin in order.chunks(per) {
        let mut bin = bin.to_vec();
        bin.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]).then(a.cmp(&b)));
        let n = bin.len().div_ceil(2).max(keep.min(bin.len()));
        kept.extend(bin.into_iter().take(n));
    }
    kept.sort_unstable();
    kept.into_iter().map(|i| pool[i].clone()).collect()
}

fn read_state(dir: &Path, cfg: &SupernetConfig) -> Result<Option<SupernetState>> {
    let Some(state) = read_json_state::<SupernetState>(dir)? else { return Ok(None) };
    let fail = |what: String| CompressError::Checkpoint { dir: dir.to_path_buf(), what };
    if state.config != *cfg {
        return Err(fail(format!(
            "it was made with other settings ({:?}); use the same ones, or another checkpoint directory",
            state.config
        )));
    }
    Ok(Some(state))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::Op;

    #[test]
    fn shrinking_keeps_the_better_half_of_each_size_bin() {
        let st = |inner: usize| Stage { width: 16, ops: vec![Op::FeedForward { inner }] };
        // Sizes grow with `inner`; two bins of three: {16, 24, 32} and {40, 48, 56}.
        let pool: Vec<Stage> = [16, 24, 32, 40, 48, 56].iter().map(|&i| st(i)).collect();
        let scores = [0.5, 0.1, 0.9, 0.3, 0.2, 0.8];
        let kept = shrink(pool.clone(), &scores, 2, 1);
        assert_eq!(kept, vec![st(16), st(24), st(40), st(48)]);
        // Never below `keep` per bin.
        let kept = shrink(pool, &scores, 2, 3);
        assert_eq!(kept.len(), 6);
    }

    #[test]
    fn boundaries_follow_the_stages() {
        let mut s = crate::search::space::test_space();
        s.slots = vec![4, 3, 3];
        assert_eq!(boundaries(&s), [0, 4, 7, 10]);
    }

    #[test]
    fn learning_rate_warms_up_then_decays() {
        let cfg = SupernetConfig {
            steps: 100,
            batch_size: 1,
            max_len: 8,
            lr: 1.0,
            seed: 0,
            pool: 1,
            shrink_every: 0,
            bins: 1,
            keep: 1,
            checkpoint_every: 0,
            only_stage: None,
        };
        assert!((cfg.lr_at(0) - 0.1).abs() < 1e-12);
        assert!((cfg.lr_at(9) - 1.0).abs() < 1e-12);
        assert!(cfg.lr_at(99) > 0.0 && cfg.lr_at(99) < 0.02);
    }
}
