//! The default recipes: what `quantize`, `compress` and `distill` do when the user passes
//! nothing. Each default is the best setting measured on all-MiniLM-L6-v2
//! (benches/quality/RESULTS.md, section "Default recipes", names the runs that chose it); a
//! user's explicit setting always wins.

use crate::convert::QuantPlan;
use crate::distill::DistillConfig;
use crate::lsq::StepInit;

/// The KDLSQ settings that depend on the weight width.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KdlsqRecipe {
    /// Columns per weight step.
    pub group: Option<usize>,
    /// Smoothing strength when activations are quantized.
    pub smooth: Option<f32>,
    pub lr: f64,
    pub steps: usize,
    pub warmup: usize,
    /// Weight of the sentence-embedding term of the loss.
    pub sentence_weight: f32,
}

/// Least-error initial steps for weights and activations: the W4A8 start is 0.967 against 0.886
/// with LSQ's rule, and W2 0.548 against 0.331.
pub const STEP_INIT: StepInit = StepInit::Mse;

/// Per-token activation steps (each row's `max|x| / Q_P` at run time) instead of one calibrated
/// step per matrix: short and unusual inputs no longer meet a step fitted to sentences
/// (RESULTS.md, "Per-token activation steps").
pub const ACT_PER_TOKEN: bool = true;

/// Smoothing strength with 8-bit activations (round-to-nearest `pack --act-bits`, and KDLSQ at 4
/// bits and more): 0.5 with per-token steps (RTN W8A8 and W4A8 closest to the teacher on every
/// category of the agreement set; KDLSQ W4A8 300 steps above 0.7), 0.7 with one step per matrix
/// (RESULTS.md, "Calibrated round-to-nearest", table (a)).
pub fn smooth(per_token: bool) -> f32 {
    if per_token {
        0.5
    } else {
        0.7
    }
}

/// Sentences per batch in every measured run.
pub const BATCH: usize = 32;

/// The recipe for weights of `bits` bits, with per-token activation steps or one per matrix.
///
/// - 4 bits and more, per-token activation steps: groups of 32, smoothing α 0.5, lr 1e-4, 300
///   steps with 30 warm-up steps (held-out cosine 0.9916, STS-B 0.8674; α 0.7 gave 0.9909 and
///   lower minima on six of the eight categories of what users type; 700 steps gave 0.9902 and
///   STS-B 0.8667, no better at 2.3× the time; one seed each).
/// - 4 bits and more, one step per matrix: smoothing α 0.7, 700 steps (run (a) with smoothing:
///   held-out cosine 0.9908, STS-B 0.8686), the rest as above.
/// - 2 and 3 bits: groups of 16, no smoothing (at 2 bits it lowers the start from 0.543 to
///   0.518), lr 3e-4, sentence weight 5, 1,800 steps with 30 warm-up steps (run (b): 0.9532,
///   STS-B 0.8669). 3 bits has not been measured apart; it takes the low-bit recipe.
pub fn kdlsq(bits: u8, per_token: bool) -> KdlsqRecipe {
    if bits >= 4 {
        let steps = if per_token { 300 } else { 700 };
        KdlsqRecipe { group: Some(32), smooth: Some(smooth(per_token)), lr: 1e-4, steps, warmup: 30, sentence_weight: 1.0 }
    } else {
        KdlsqRecipe { group: Some(16), smooth: None, lr: 3e-4, steps: 1800, warmup: 30, sentence_weight: 5.0 }
    }
}

/// Task-agnostic distillation of a smaller student (run (c): 3 layers × 256, ETD-Impt, STS-B
/// 0.8297 after 1,600 steps).
pub fn distill() -> DistillConfig {
    DistillConfig { steps: 1600, batch_size: BATCH, lr: 2e-4, warmup: 40, ..DistillConfig::default() }
}

/// What a user may set for a KDLSQ run; `None` takes [`kdlsq`]'s value for the width.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct KdlsqChoices {
    /// `Some(None)`: one step per output channel.
    pub group: Option<Option<usize>>,
    /// `Some(None)`: no smoothing.
    pub smooth: Option<Option<f32>>,
    pub lr: Option<f64>,
    pub steps: Option<usize>,
    pub warmup: Option<usize>,
    pub sentence_weight: Option<f32>,
}

impl KdlsqChoices {
    /// The plan and the training settings of a KDLSQ run at `bits`; `plan` and `train` give
    /// everything else. The embedding tables take `embedding_group` when it is `Some`
    /// (`Some(None)`: one step per row), the weights' grouping otherwise.
    pub fn resolve(&self, bits: u8, plan: &QuantPlan, embedding_group: Option<Option<usize>>, train: &DistillConfig) -> (QuantPlan, DistillConfig) {
        let r = kdlsq(bits, plan.act_per_token);
        let group = self.group.unwrap_or(r.group);
        let smooth = plan.act_bits.and(self.smooth.unwrap_or(r.smooth));
        let q = QuantPlan { group, embedding_group: embedding_group.unwrap_or(group), smooth, ..plan.at(bits) };
        let steps = self.steps.unwrap_or(r.steps);
        let mut cfg = DistillConfig { lr: self.lr.unwrap_or(r.lr), steps, warmup: self.warmup.unwrap_or(r.warmup).min(steps), ..train.clone() };
        cfg.weights.sentence = self.sentence_weight.unwrap_or(r.sentence_weight);
        (q, cfg)
    }
}
