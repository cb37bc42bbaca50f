//! Held-out evaluation during training: the distillation loss without gradients and the cosine
//! of the student's sentence embedding to the teacher's.

use bertling_runtime::{Input, TextTokenizer};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::config::{layer_outputs, LossWeights};
use super::losses::{last_pair, loss_of_outputs, pooled_cosine, Losses};
use super::trainee::Trainee;
use crate::error::{CompressError, Result};
use crate::student::{Batch, Encoder};

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
    pub fn new(
        texts: &[String],
        tokenizer_json: &str,
        max_len: usize,
        batch_size: usize,
        every: usize,
    ) -> Result<EvalSet> {
        if texts.is_empty() {
            return Err(CompressError::InvalidArgument(
                "no evaluation texts: give a file with at least one line".into(),
            ));
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
pub fn evaluate(
    trainee: &Trainee,
    teacher: &Encoder,
    set: &EvalSet,
    pairs: &[(usize, usize)],
    weights: &LossWeights,
    device: &Device,
) -> EvalResult {
    let model = trainee.clone().valid();
    let s_layers = layer_outputs(&model.student);
    let t_layers = layer_outputs(teacher);
    let last = last_pair(pairs, s_layers.len(), t_layers.len());
    let mut sum = Losses::default();
    let mut cos = Vec::new();
    let mut n = 0usize;
    for inputs in &set.batches {
        let batch = Batch::new(inputs, device);
        let t_out = crate::targets::Targets::from_outputs(teacher.forward(&batch));
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
            let c = pooled_cosine(hs, t_out.hidden(t_layers[jt]), &batch.mask, teacher.cls_pooling)
                .into_data()
                .try_into_vec_as::<f32>()
                .unwrap_or_default();
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
