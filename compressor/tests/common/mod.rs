//! Helpers shared by the fine-tuning tests (classifiers and taggers on the tiny fixtures).
#![allow(dead_code)]

use bertling_compressor::finetune::{FinetuneConfig, FinetuneProgress};

/// A seeded xorshift draw, for the synthetic data sets.
pub struct Rng(pub u64);

impl Rng {
    pub fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }

    /// Uniform in [-1, 1).
    pub fn uniform(&mut self) -> f32 {
        self.below(1 << 24) as f32 / (1u32 << 23) as f32 - 1.0
    }
}

/// What the tiny models learn a small task with: batch 16, lr 3e-3, 32 tokens, no checkpoints.
pub fn config(epochs: usize) -> FinetuneConfig {
    FinetuneConfig { epochs, batch_size: 16, lr: 3e-3, max_len: 32, checkpoint_every: 0, ..FinetuneConfig::default() }
}

pub fn quiet() -> impl FnMut(&FinetuneProgress) {
    |_: &FinetuneProgress| {}
}
