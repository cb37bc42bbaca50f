//! The distillation losses: hidden states, attention, embeddings, logits and the sentence
//! embedding, weighted by [`LossWeights`].

use burn::prelude::*;
use burn::tensor::activation::{log_softmax, softmax};
use serde::{Deserialize, Serialize};

use super::config::{attention_of_layers, layer_outputs, LossWeights};
use super::trainee::Trainee;
use crate::student::{Batch, Encoder, Outputs};
use crate::targets::Targets;

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

/// Cosine of the pooled states `[batch, seq, width]` of two models (the [CLS] state with `cls`,
/// else the mean), `[batch, 1]`.
pub(crate) fn pooled_cosine(a: Tensor<3>, b: Tensor<3>, mask: &Tensor<2>, cls: bool) -> Tensor<2> {
    let a = crate::student::pool(a, mask.clone(), cls);
    let b = crate::student::pool(b, mask.clone(), cls);
    let dot = (a.clone() * b.clone()).sum_dim(1);
    let norms = (a.powi_scalar(2).sum_dim(1) * b.powi_scalar(2).sum_dim(1)).sqrt().clamp_min(1e-12);
    dot / norms
}

/// The pair (index into `pairs`) joining the student's and the teacher's last layers.
pub(crate) fn last_pair(
    pairs: &[(usize, usize)],
    student_layers: usize,
    teacher_layers: usize,
) -> Option<usize> {
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
    // [b, h, q, 1]
    let kl = (t.clone() * (t.clamp_min(eps).log() - s.clamp_min(eps).log())).sum_dim(3);
    let m = mask.clone().reshape([b, 1, q, 1]);
    (kl * m.clone()).sum() / (m.sum().mul_scalar(h as f32))
}

/// The distillation loss of one batch. `teacher`'s targets are constants (what
/// [`crate::targets::distill_request`] asks for: terms of weight 0 are neither read nor
/// computed, and report 0).
pub fn distill_loss(
    trainee: &Trainee,
    teacher: &Targets,
    teacher_encoder: &Encoder,
    batch: &Batch,
    pairs: &[(usize, usize)],
    weights: &LossWeights,
) -> (Tensor<1>, Losses) {
    let out = trainee.student.forward(batch);
    loss_of_outputs(trainee, &out, teacher, teacher_encoder, batch, pairs, weights)
}

pub(crate) fn loss_of_outputs(
    trainee: &Trainee,
    out: &Outputs,
    teacher: &Targets,
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
        hidden = hidden + masked_mse(hs, teacher.hidden(t_layers[jt]), &batch.mask);
        if let (Some(a), Some(b), true) = (s_att[js], t_att[jt], weights.attention != 0.0) {
            attention =
                attention + attention_kl(teacher.attention(b), out.attentions[a].clone(), &batch.mask);
        }
    }
    let emb = if weights.embedding != 0.0 {
        masked_mse(project(pairs.len(), out.hidden[0].clone()), teacher.hidden(0), &batch.mask)
    } else {
        zero()
    };
    let sentence = match last_pair(pairs, s_layers.len(), t_layers.len()) {
        Some(k) if weights.sentence != 0.0 => {
            let (js, jt) = pairs[k];
            let cos = pooled_cosine(
                project(k, out.hidden[s_layers[js]].clone()),
                teacher.hidden(t_layers[jt]),
                &batch.mask,
                teacher_encoder.cls_pooling,
            );
            (cos.neg() + 1.0).mean().reshape([1])
        }
        _ => zero(),
    };
    let logits = match (&teacher.logits, &out.logits) {
        (Some(t), Some(s)) if weights.logits != 0.0 => {
            let (pt, lt, ls) =
                (softmax(t.clone(), 1), log_softmax(t.clone(), 1), log_softmax(s.clone(), 1));
            let kl = (pt * (lt - ls)).sum_dim(1); // [rows, 1]
            if trainee.student.head.as_ref().is_some_and(|h| h.token) {
                // A tagger's rows are the batch's tokens: the mean over real ones.
                let mask = batch.mask.clone().reshape([-1, 1]);
                (kl * mask.clone()).sum().div(mask.sum()).reshape([1])
            } else {
                kl.mean().reshape([1])
            }
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
