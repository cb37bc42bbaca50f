//! Block-wise reconstruction of a quantized student (BRECQ, Li et al. 2021; MREM, Bai et al.
//! 2021): before end-to-end distillation, each block in turn learns to map the *quantized*
//! student's input to the teacher's output of the same block, with only its own parameters
//! (latent weights, weight and activation steps, smoothing factors) trained. A block's forward
//! and backward cost about a twelfth of the whole model's on a 6-layer BERT, and the teacher is
//! run once per block rather than once per step, so many more updates fit in the same time;
//! each block also corrects the error its quantized predecessors pass on.
//!
//! Loss per block: the mean squared error of its output against the teacher's over real
//! tokens, plus, for attention blocks, `attention` × KL(teacher ‖ student) of the attention
//! rows. AdamW without weight decay, learning rate decaying linearly to zero within each block,
//! calibration batches taken in turn. Deterministic: no sampling.

use bertling_runtime::Input;
use burn::optim::{AdamWConfig, GradientsParams};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::distill::{attention_kl, masked_mse};
use crate::error::{CompressError, Result};
use crate::student::{Batch, Encoder, Masks};

/// Settings of [`reconstruct`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BlockwiseConfig {
    /// Optimizer steps per block.
    pub iters: usize,
    /// Peak learning rate (linear decay to zero within each block).
    pub lr: f64,
    /// Weight of the attention-distribution term of attention blocks.
    pub attention: f32,
}

impl Default for BlockwiseConfig {
    fn default() -> Self {
        BlockwiseConfig { iters: 200, lr: 1e-4, attention: 1.0 }
    }
}

/// Progress of [`reconstruct`]: after each optimizer step of each block.
#[derive(Clone, Copy, Debug)]
pub struct BlockProgress {
    pub block: usize,
    pub blocks: usize,
    pub iter: usize,
    pub iters: usize,
    pub loss: f32,
}

/// Reconstructs every block of `student` (quantized, on the autodiff `device`) against
/// `teacher` (same architecture, on the plain device) on the calibration `batches` (tokenized
/// sentences). Returns the student with every block trained in turn.
pub fn reconstruct(
    mut student: Encoder,
    teacher: &Encoder,
    batches: &[Vec<Input>],
    cfg: &BlockwiseConfig,
    device: &Device,
    mut progress: impl FnMut(&BlockProgress),
) -> Result<Encoder> {
    if batches.is_empty() || batches.iter().any(|b| b.is_empty()) {
        return Err(CompressError::InvalidArgument("block-wise reconstruction needs at least one non-empty calibration batch".into()));
    }
    if student.blocks.len() != teacher.blocks.len() {
        return Err(CompressError::InvalidArgument(format!(
            "block-wise reconstruction pairs blocks one to one: the student has {} blocks, the teacher {}",
            student.blocks.len(),
            teacher.blocks.len()
        )));
    }
    let plain = device.clone().without_autodiff();
    let plain_batches: Vec<Batch> = batches.iter().map(|b| Batch::new(b, &plain)).collect();
    let train_batches: Vec<Batch> = batches.iter().map(|b| Batch::new(b, device)).collect();
    let plain_masks: Vec<Masks> = plain_batches.iter().map(Masks::new).collect();
    let train_masks: Vec<Masks> = train_batches.iter().map(Masks::new).collect();
    // Inputs of the current block: the teacher's own, and the quantized student's.
    let mut t_x: Vec<Tensor<3>> = plain_batches.iter().map(|b| teacher.embed(b)).collect();
    let frozen = student.clone().valid();
    let mut s_x: Vec<Tensor<3>> = plain_batches.iter().map(|b| frozen.embed(b)).collect();
    let blocks = student.blocks.len();
    for i in 0..blocks {
        let targets: Vec<(Tensor<3>, Option<Tensor<4>>)> =
            t_x.iter().zip(&plain_masks).map(|(x, m)| teacher.block_forward(i, x.clone(), m, &mut |_, _| {})).collect();
        let has_params = student.blocks[i].num_params() > 0;
        if has_params && cfg.iters > 0 {
            // This block's inputs on the training device, copied once rather than every step.
            let inputs: Vec<Tensor<3>> = s_x.iter().map(|x| Tensor::from_data(x.to_data(), device)).collect();
            let mut optim = AdamWConfig::new().with_beta_1(0.9).with_beta_2(0.999).with_epsilon(1e-8).with_weight_decay(0.0).init();
            for it in 0..cfg.iters {
                let j = it % batches.len();
                let (y, p) = student.block_forward(i, inputs[j].clone(), &train_masks[j], &mut |_, _| {});
                let (ty, tp) = &targets[j];
                if y.dims() != ty.dims() {
                    return Err(CompressError::InvalidArgument(format!(
                        "block {i}: the student's output is {:?} and the teacher's {:?}; block-wise reconstruction needs the teacher's architecture",
                        y.dims(),
                        ty.dims()
                    )));
                }
                let mut loss = masked_mse(y, ty.clone(), &train_batches[j].mask);
                if let (Some(p), Some(tp)) = (p, tp) {
                    loss = loss + attention_kl(tp.clone(), p, &train_batches[j].mask).mul_scalar(cfg.attention);
                }
                let value = loss.clone().into_scalar::<f32>();
                if !value.is_finite() {
                    return Err(CompressError::InvalidArgument(format!(
                        "block {i}: the reconstruction loss became {value} at step {it}; lower the learning rate"
                    )));
                }
                let grads = GradientsParams::from_grads(loss.backward(), &student);
                let lr = cfg.lr * (cfg.iters - it) as f64 / cfg.iters as f64;
                student = optim.step(lr, student, grads);
                progress(&BlockProgress { block: i, blocks, iter: it + 1, iters: cfg.iters, loss: value });
            }
        }
        // The next block's inputs.
        let frozen = student.clone().valid();
        s_x = s_x.into_iter().zip(&plain_masks).map(|(x, m)| frozen.block_forward(i, x, m, &mut |_, _| {}).0).collect();
        t_x = targets.into_iter().map(|(y, _)| y).collect();
    }
    Ok(student)
}
