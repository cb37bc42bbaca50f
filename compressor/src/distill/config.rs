//! What a distillation run is: the layer map, the loss weights and the training settings.

use serde::{Deserialize, Serialize};

use crate::corpus::Augment;
use crate::error::{CompressError, Result};
use crate::student::Encoder;

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
                .map_err(|_| {
                    CompressError::InvalidArgument(format!(
                        "layer map `{s}`: use uniform, last, or a list like 1,3,5"
                    ))
                }),
        }
    }
}

/// Hidden-state indices (0 = embeddings, i + 1 = block i) that end a layer: the outputs of
/// feed-forward blocks, or of every block for models without any. The last layer ends with the
/// model's output: blocks after the last feed-forward one (a searched student's projection back
/// to the teacher's width) belong to it, so that its states are the ones the package pools.
pub fn layer_outputs(enc: &Encoder) -> Vec<usize> {
    let mut ffn: Vec<usize> = enc
        .blocks
        .iter()
        .enumerate()
        .filter(|(_, b)| b.feed_forward().is_some())
        .map(|(i, _)| i + 1)
        .collect();
    if ffn.is_empty() {
        return (1..=enc.blocks.len()).collect();
    }
    if let Some(last) = ffn.last_mut() {
        *last = enc.blocks.len();
    }
    ffn
}

/// For each layer output, the index (among attention blocks) of the last attention block
/// before it, if any.
pub(crate) fn attention_of_layers(enc: &Encoder, layers: &[usize]) -> Vec<Option<usize>> {
    layers
        .iter()
        .map(|&h| {
            let n = enc.blocks[..h].iter().filter(|b| b.attention().is_some()).count();
            n.checked_sub(1)
        })
        .collect()
}

/// Pairs of (student layer index, teacher layer index) into the layer-output lists.
pub fn pair_layers(
    map: &LayerMap,
    student_layers: usize,
    teacher_layers: usize,
) -> Result<Vec<(usize, usize)>> {
    if student_layers == 0 || teacher_layers == 0 {
        return Err(CompressError::InvalidArgument("both models need at least one layer".into()));
    }
    Ok(match map {
        LayerMap::Uniform => (0..student_layers)
            .map(|j| (j, ((j + 1) * teacher_layers).div_ceil(student_layers) - 1))
            .collect(),
        LayerMap::Last => vec![(student_layers - 1, teacher_layers - 1)],
        LayerMap::Explicit(list) => {
            if list.len() != student_layers || list.iter().any(|&t| t >= teacher_layers) {
                return Err(CompressError::InvalidArgument(format!(
                    "layer map {list:?}: give one teacher layer (0..{teacher_layers}) for each \
                     of the {student_layers} student layers"
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
    /// 1 − cosine of the pooled last-layer states (pooled as the teacher's package pools: the
    /// mean, or the [CLS] state), when the layer map pairs the two last layers.
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
