//! What fine-tuning optimises and how it is scored: a new head, the task loss (cross-entropy
//! or squared error), logit distillation from a fine-tuned teacher, and the dev metrics.

use bertling_runtime::Input;
use burn::prelude::*;
use burn::tensor::activation::{log_softmax, softmax};
use serde::{Deserialize, Serialize};

use super::train::{pick_rows, Tokenized};
use crate::eval::{pearson, spearman, TaskMetrics};
use crate::student::{Batch, Dense, Encoder, Head};
use crate::task::{DataFormat, Target, TaskSpec};

/// The width of an encoder's final states (the embedding width, changed by projections).
pub fn output_width(enc: &Encoder) -> usize {
    enc.blocks
        .iter()
        .rev()
        .find_map(|b| b.projection())
        .map_or(enc.embeddings.word.dims()[1], |p| p.weight.dims()[0])
}

/// A head for `outputs` labels on `width`-wide states: the given pooler (a pretrained one) or a
/// new one, and a new classifier; a token head (`token`) has no pooler. New weights drawn
/// uniformly with BERT's standard deviation 0.02 from `seed`, biases zero.
pub fn new_head(
    width: usize,
    outputs: usize,
    pooler: Option<Dense>,
    token: bool,
    seed: u64,
    device: &Device,
) -> Head {
    let mut rng = bertling_runtime::rng::XorShift::new(seed);
    let bound = 0.02 * 3f32.sqrt();
    let mut dense = |rows: usize, cols: usize| {
        let v: Vec<f32> = (0..rows * cols).map(|_| rng.symmetric(bound)).collect();
        Dense::new(
            Tensor::from_data(TensorData::new(v, [rows, cols]), device),
            Tensor::zeros([rows], device),
        )
    };
    if token {
        return Head { pooler: None, classifier: dense(outputs, width), token };
    }
    let pooler = pooler.unwrap_or_else(|| dense(width, width));
    Head { pooler: Some(pooler), classifier: dense(outputs, width), token }
}

/// Examples (words, for tagging) a new classifier is fitted on before fine-tuning
/// ([`probe_head`]).
pub const PROBE_EXAMPLES: usize = 4096;

/// Fits `head`'s classifier to the task on the frozen model's features (its pooler's outputs on
/// the [CLS] states, or for a token head the final states of the labelled words, of the first
/// [`PROBE_EXAMPLES`] examples of `set`): a linear probe, so that fine-tuning starts from a head
/// that already predicts the labels rather than from a random one that a small learning rate
/// moves too slowly for small data sets (linear probing, then fine-tuning). Full-batch AdamW on
/// the task loss, `iters` steps at learning rate 1e-2, weight decay 1e-4; deterministic. `enc`
/// is the body (on the plain device).
pub fn probe_head(
    enc: &Encoder,
    head: Head,
    set: &Tokenized,
    iters: usize,
    device: &Device,
) -> Head {
    use burn::optim::{AdamWConfig, GradientsParams};
    if set.inputs.is_empty() || iters == 0 {
        return head;
    }
    // Features: the classifier's inputs, computed once.
    let (mut feats, mut targets) = (Vec::new(), Vec::new());
    let all: Vec<usize> = (0..set.inputs.len()).collect();
    for idx in all.chunks(32) {
        if targets.len() >= PROBE_EXAMPLES {
            break;
        }
        let chunk: Vec<Input> = idx.iter().map(|&i| set.inputs[i].clone()).collect();
        let batch = Batch::new(&chunk, device);
        let last = enc.forward(&batch).hidden.pop().expect("an encoder has an embedding output");
        let (t, rows) = set.batch_targets(idx);
        let f = if head.token {
            let [b, s, w] = last.dims();
            pick_rows(last.reshape([b * s, w]), rows.as_deref())
        } else {
            let cls = crate::student::pool(last, batch.mask.clone(), true).unsqueeze_dim::<3>(1);
            let cls = match &head.pooler {
                Some(p) => p.forward(cls).tanh(),
                None => cls,
            };
            cls.squeeze_dim::<2>(1)
        };
        feats.push(f);
        targets.extend(t);
    }
    let x = Tensor::cat(feats, 0);
    let n = targets.len().min(PROBE_EXAMPLES);
    let x = x.narrow(0, 0, n);
    let train = device.clone().autodiff();
    let x = Tensor::<2>::from_data(x.into_data(), &train);
    let Head { pooler, classifier, token } = head;
    let mut c = classifier.to_device(&train).train();
    let mut optim = AdamWConfig::new().with_weight_decay(1e-4).init();
    for _ in 0..iters {
        let logits = c.forward(x.clone().unsqueeze_dim::<3>(0)).squeeze_dim::<2>(0);
        let loss = task_loss(logits, &targets[..n]);
        let grads = GradientsParams::from_grads(loss.backward(), &c);
        c = optim.step(1e-2, c, grads);
    }
    Head { pooler, classifier: c.valid().to_device(device), token }
}

/// The task loss of a batch: mean cross-entropy of the gold classes, or mean squared error of
/// the gold scores (a one-output head).
pub fn task_loss(logits: Tensor<2>, targets: &[Target]) -> Tensor<1> {
    let [b, labels] = logits.dims();
    let device = logits.device();
    if let Some(Target::Score(_)) = targets.first() {
        let gold: Vec<f32> = targets
            .iter()
            .map(|t| match t {
                Target::Score(s) => *s,
                Target::Class(c) => *c as f32,
            })
            .collect();
        let gold = Tensor::<1>::from_data(TensorData::new(gold, [b]), &device);
        return (logits.reshape([b]) - gold).powi_scalar(2).mean();
    }
    let mut onehot = vec![0f32; b * labels];
    for (i, t) in targets.iter().enumerate() {
        if let Target::Class(c) = t {
            onehot[i * labels + c] = 1.0;
        }
    }
    let onehot = Tensor::<2>::from_data(TensorData::new(onehot, [b, labels]), &device);
    (onehot * log_softmax(logits, 1)).sum_dim(1).mean().neg().reshape([1])
}

/// Logit distillation from a teacher's logits (constants): `T² · KL(softmax(t/T) ‖
/// softmax(s/T))` per example, averaged (Hinton et al.; T = 1 is TinyBERT's prediction-layer
/// loss), or the squared difference of the scores of a regression head.
pub fn logit_distillation(
    student: Tensor<2>,
    teacher: Tensor<2>,
    regression: bool,
    temperature: f32,
) -> Tensor<1> {
    if regression {
        return (student - teacher).powi_scalar(2).mean();
    }
    let t = temperature;
    let (pt, lt) =
        (softmax(teacher.clone().div_scalar(t), 1), log_softmax(teacher.div_scalar(t), 1));
    let ls = log_softmax(student.div_scalar(t), 1);
    (pt * (lt - ls)).sum_dim(1).mean().mul_scalar(t * t).reshape([1])
}

/// A model's dev scores: the task's metric (the one the best checkpoint is chosen by) and the
/// others that apply.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scores {
    /// `accuracy`, `f1` (MRPC), `matthews` (CoLA), `spearman` (regression) or `entity_f1`
    /// (two-column CoNLL tagging; in `f1` too).
    pub metric_name: String,
    pub metric: f64,
    /// Mean task loss (cross-entropy or squared error).
    pub loss: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accuracy: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub f1: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matthews: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pearson: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spearman: Option<f64>,
    pub examples: usize,
}

impl Scores {
    /// The scores of head outputs (`logits[i]` for example `i`) against the gold targets.
    pub fn of(task: &TaskSpec, logits: &[Vec<f32>], targets: &[Target]) -> Scores {
        let n = targets.len().max(1) as f64;
        if task.is_regression() {
            let pred: Vec<f64> =
                logits.iter().map(|l| l.first().copied().unwrap_or(0.0) as f64).collect();
            let gold: Vec<f64> = targets.iter().map(score).collect();
            let loss = pred.iter().zip(&gold).map(|(p, g)| (p - g).powi(2)).sum::<f64>() / n;
            let (p, s) = (pearson(&pred, &gold), spearman(&pred, &gold));
            return Scores {
                metric_name: "spearman".into(),
                metric: s,
                loss,
                accuracy: None,
                f1: None,
                matthews: None,
                pearson: Some(p),
                spearman: Some(s),
                examples: targets.len(),
            };
        }
        let gold: Vec<usize> = targets.iter().map(|t| score(t) as usize).collect();
        let pred: Vec<usize> = logits.iter().map(|l| argmax(l)).collect();
        let mut loss = 0f64;
        for (l, &g) in logits.iter().zip(&gold) {
            let max = l.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x)) as f64;
            let lse = l.iter().map(|&x| (x as f64 - max).exp()).sum::<f64>().ln() + max;
            loss += lse - l.get(g).copied().unwrap_or(0.0) as f64;
        }
        let m = TaskMetrics::of(&task.name, &gold, &pred);
        let (metric_name, metric) = match (m.f1, m.matthews) {
            (Some(f1), _) => ("f1", f1),
            (_, Some(mcc)) => ("matthews", mcc),
            _ => ("accuracy", m.accuracy),
        };
        Scores {
            metric_name: metric_name.into(),
            metric,
            loss: loss / n,
            accuracy: Some(m.accuracy),
            f1: m.f1,
            matthews: m.matthews,
            pearson: None,
            spearman: None,
            examples: targets.len(),
        }
    }
}

impl Scores {
    /// The dev scores of `set` from its head outputs ([`predict`]): [`Scores::of`], and for a
    /// two-column CoNLL task the entity-level F1 (the metric), read sentence by sentence.
    pub fn of_set(task: &TaskSpec, logits: &[Vec<f32>], set: &Tokenized) -> Scores {
        let mut scores = Scores::of(task, logits, &set.targets);
        if task.format == DataFormat::Conll {
            let names = task.class_names();
            let name = |i: usize| names.get(i).map_or("O", String::as_str);
            let (mut gold, mut pred) = (Vec::new(), Vec::new());
            let mut k = 0;
            for words in &set.positions {
                let n = words.len();
                gold.push(set.targets[k..k + n].iter().map(|t| name(score(t) as usize)).collect());
                pred.push(logits[k..k + n].iter().map(|l| name(argmax(l))).collect());
                k += n;
            }
            let (_, _, f1) = crate::tagging::conll::entity_f1(&gold, &pred);
            scores.f1 = Some(f1);
            (scores.metric_name, scores.metric) = ("entity_f1".into(), f1);
        }
        scores
    }
}

fn score(t: &Target) -> f64 {
    match t {
        Target::Class(c) => *c as f64,
        Target::Score(s) => *s as f64,
    }
}

/// The first index of the largest value (as the runtime picks a label).
pub fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

/// The head outputs of `model` for each example of `set`, in order (batches of 32): one row per
/// input, or, for a tagging set, one per labelled word (as `set.targets`).
pub fn predict(model: &Encoder, set: &Tokenized, device: &Device) -> Vec<Vec<f32>> {
    let mut out = Vec::with_capacity(set.targets.len());
    let all: Vec<usize> = (0..set.inputs.len()).collect();
    for idx in all.chunks(32) {
        let chunk: Vec<Input> = idx.iter().map(|&i| set.inputs[i].clone()).collect();
        let Some(logits) = model.forward(&Batch::new(&chunk, device)).logits else {
            return Vec::new();
        };
        let logits = pick_rows(logits, set.rows(idx).as_deref());
        let labels = logits.dims()[1];
        let v = logits.into_data().try_into_vec_as::<f32>().unwrap_or_default();
        out.extend(v.chunks(labels.max(1)).map(<[f32]>::to_vec));
    }
    out
}

/// The head outputs of `model` for each input (batches of 32): a sequence head's rows.
pub fn predict_inputs(model: &Encoder, inputs: &[Input], device: &Device) -> Vec<Vec<f32>> {
    predict(model, &Tokenized::sequences(inputs.to_vec(), Vec::new()), device)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t2(v: Vec<f32>, shape: [usize; 2]) -> Tensor<2> {
        Tensor::from_data(TensorData::new(v, shape), &Device::flex())
    }

    /// The losses against the same formulas in f64.
    #[test]
    fn losses_match_their_closed_forms() {
        let s = [[1.0f64, -0.5, 0.25], [0.0, 2.0, -1.0]];
        let t = [[0.5f64, 0.5, -2.0], [-1.0, 3.0, 0.0]];
        let flat = |m: &[[f64; 3]; 2]| m.iter().flatten().map(|&x| x as f32).collect::<Vec<_>>();
        let lsm = |row: &[f64], temp: f64| -> Vec<f64> {
            let lse = row.iter().map(|x| (x / temp).exp()).sum::<f64>().ln();
            row.iter().map(|x| x / temp - lse).collect()
        };
        // Cross-entropy of gold classes 2 and 1.
        let want = -(lsm(&s[0], 1.0)[2] + lsm(&s[1], 1.0)[1]) / 2.0;
        let got = task_loss(t2(flat(&s), [2, 3]), &[Target::Class(2), Target::Class(1)]);
        assert!((got.into_scalar::<f32>() as f64 - want).abs() < 1e-6);
        for temp in [1.0f64, 2.0] {
            let mut kl = 0.0;
            for (sr, tr) in s.iter().zip(&t) {
                let (ls, lt) = (lsm(sr, temp), lsm(tr, temp));
                kl += lt.iter().zip(&ls).map(|(a, b)| a.exp() * (a - b)).sum::<f64>();
            }
            let want = temp * temp * kl / 2.0;
            let got =
                logit_distillation(t2(flat(&s), [2, 3]), t2(flat(&t), [2, 3]), false, temp as f32);
            assert!((got.into_scalar::<f32>() as f64 - want).abs() < 1e-5, "T = {temp}");
        }
        // Regression: squared errors (1 − 3)² and (0.5 + 1)², averaged.
        let got = task_loss(t2(vec![1.0, 0.5], [2, 1]), &[Target::Score(3.0), Target::Score(-1.0)]);
        assert!((got.into_scalar::<f32>() - 3.125).abs() < 1e-6);
        let got =
            logit_distillation(t2(vec![1.0, 0.5], [2, 1]), t2(vec![2.0, 0.5], [2, 1]), true, 1.0);
        assert!((got.into_scalar::<f32>() - 0.5).abs() < 1e-6);
    }

    #[test]
    fn scores_pick_the_tasks_metric() {
        let spec = |n: &str| TaskSpec::glue(n).unwrap();
        let logits = vec![vec![2.0, 0.0], vec![0.0, 1.0], vec![0.0, 3.0], vec![1.0, 0.0]];
        let gold = [Target::Class(0), Target::Class(1), Target::Class(0), Target::Class(0)];
        let s = Scores::of(&spec("sst2"), &logits, &gold);
        assert_eq!((s.metric_name.as_str(), s.metric), ("accuracy", 0.75));
        let lse = |a: f64, b: f64| (a.exp() + b.exp()).ln();
        let want = ((lse(2.0, 0.0) - 2.0)
            + (lse(0.0, 1.0) - 1.0)
            + (lse(0.0, 3.0))
            + (lse(1.0, 0.0) - 1.0))
            / 4.0;
        assert!((s.loss - want).abs() < 1e-9);
        // MRPC (gold flipped, predictions 0, 1, 1, 0): TP 1, FP 1, FN 2 -> F1 2/5.
        let s = Scores::of(
            &spec("mrpc"),
            &logits,
            &gold.map(|t| if t == Target::Class(0) { Target::Class(1) } else { Target::Class(0) }),
        );
        assert_eq!(s.metric_name, "f1");
        assert!((s.metric - 0.4).abs() < 1e-12, "{s:?}");
        let s = Scores::of(&spec("cola"), &logits, &gold);
        assert_eq!(s.metric_name, "matthews");
        let s = Scores::of(
            &spec("stsb"),
            &[vec![1.0], vec![2.0], vec![3.0]],
            &[Target::Score(0.5), Target::Score(2.5), Target::Score(2.0)],
        );
        assert_eq!((s.metric_name.as_str(), s.metric), ("spearman", 0.5));
        assert!((s.loss - (0.25 + 0.25 + 1.0) / 3.0).abs() < 1e-9);
    }
}
