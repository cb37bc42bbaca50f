//! Fine-tuning and task distillation of any model — a teacher, a float student or a quantized
//! one — on a labelled task. A quantized package trains on with its quantization (LSQ, from
//! the package's steps), so a W4A8 student fine-tunes into a W4A8 classifier. The model of the
//! best dev score is the result.
//!
//! [`objective`] holds the head, losses and metrics; [`theseus`] progressive module replacing;
//! [`train`] the loop; this file prepares a run from packages and writes the result's
//! provenance.

mod objective;
mod theseus;
mod train;

use std::io::Write;
use std::ops::ControlFlow;

use bertling_runtime::spec::{HeadKind, HeadSpec};
use bertling_runtime::{ModelData, TextTokenizer};
use burn::prelude::*;
use serde::Serialize;

pub use self::objective::{
    argmax, logit_distillation, new_head, output_width, predict, predict_inputs, probe_head,
    task_loss, Scores,
};
pub use self::theseus::{mixed_logits, modules, Modules, Replacing};
pub use self::train::{
    batch_indices, finetune, warmup_then_decay, Best, FinetuneConfig, FinetuneProgress, Finetuned,
    StepLosses, TaskWeights, Teacher, Tokenized,
};
use crate::convert::{encoder_keeping_quantization, encoder_to_data};
use crate::distill::Stop;
use crate::error::{CompressError, Result};
use crate::pipeline::{check_resume, open_log, RunFiles};
use crate::tagging::TaggedSentence;
use crate::task::{Labels, Target, TaskExample, TaskSpec};

/// Tokenizes examples as the runtime does (`[CLS] a [SEP] b [SEP]` for pairs).
pub fn tokenize(
    examples: &[TaskExample],
    tokenizer_json: &str,
    max_len: usize,
) -> Result<Tokenized> {
    let tok = TextTokenizer::new(tokenizer_json, max_len)?;
    let mut inputs = Vec::with_capacity(examples.len());
    for chunk in examples.chunks(256) {
        let pairs: Vec<(&str, &str)> =
            chunk.iter().map(|e| (e.a.as_str(), e.b.as_deref().unwrap_or(""))).collect();
        inputs.extend(tok.encode_pairs(&pairs)?);
    }
    Ok(Tokenized::sequences(inputs, examples.iter().map(|e| e.target).collect()))
}

/// Tokenizes tagged sentences, each word labelled at its first sub-word, as the runtime's
/// `tag_words` splits them. Returns the set and the number of words truncation at `max_len`
/// left out (they are neither trained on nor scored).
pub fn tokenize_tagged(
    sentences: &[TaggedSentence],
    tokenizer_json: &str,
    max_len: usize,
) -> Result<(Tokenized, usize)> {
    let tok = TextTokenizer::new(tokenizer_json, max_len)?;
    let (mut inputs, mut words, mut cut) = (Vec::new(), Vec::new(), 0);
    for s in sentences {
        let refs: Vec<&str> = s.words.iter().map(String::as_str).collect();
        let (input, first) = tok.encode_words(&refs)?;
        let labelled: Vec<(usize, Target)> = first
            .iter()
            .zip(&s.tags)
            .filter_map(|(p, &t)| p.map(|p| (p, Target::Class(t))))
            .collect();
        cut += s.words.len() - labelled.len();
        inputs.push(input);
        words.push(labelled);
    }
    Ok((Tokenized::tokens(inputs, words), cut))
}

/// `n` of `examples`, drawn without replacement by `seed` (all when `n` is larger), in file
/// order.
pub fn sample<T>(examples: Vec<T>, n: usize, seed: u64) -> Vec<T> {
    if n >= examples.len() {
        return examples;
    }
    let mut keep = batch_indices(examples.len(), examples.len(), seed ^ 0x5A4D_504C, 0);
    keep.truncate(n);
    keep.sort_unstable();
    let mut it = examples.into_iter().enumerate();
    keep.iter().filter_map(|&k| it.by_ref().find(|(i, _)| *i == k).map(|(_, e)| e)).collect()
}

/// What a fine-tuning job did.
#[derive(Clone, Debug, Serialize)]
pub struct FinetuneReport {
    pub task: String,
    pub labels: Vec<String>,
    /// `kept` (the model's head has the task's outputs) or `new`.
    pub head: &'static str,
    /// Whether a teacher was distilled (not only a predecessor of module replacing).
    pub distilled: bool,
    pub train_examples: usize,
    pub dev_examples: usize,
    /// Tagging: the dev set's words, and those longer sentences left out (not scored).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dev_words: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dev_words_cut: Option<usize>,
    pub steps: usize,
    pub best: Best,
    pub last: Option<Scores>,
}

/// Fine-tunes `model` (a package's or Hugging Face directory's data) on `task`: `train` and
/// `dev` are its examples; with `teacher` (a fine-tuned model with a head for the same labels),
/// task distillation. Returns the best dev checkpoint as model data (its quantization kept)
/// with its provenance, and the report.
#[allow(clippy::too_many_arguments)]
pub fn finetune_model(
    model: &ModelData,
    teacher: Option<&ModelData>,
    task: &TaskSpec,
    train: &[TaskExample],
    dev: &[TaskExample],
    cfg: &FinetuneConfig,
    files: &RunFiles,
    progress: &mut dyn FnMut(&FinetuneProgress),
) -> Result<(ModelData, FinetuneReport)> {
    if task.is_tagging() {
        return Err(CompressError::InvalidArgument(format!(
            "{} is a tagging task: fine-tune it with finetune_tagger",
            task.name
        )));
    }
    let max_len = cfg.max_len.min(model.spec.max_seq_len);
    let train_set = tokenize(train, &model.tokenizer_json, max_len)?;
    let dev_set = tokenize(dev, &model.tokenizer_json, max_len)?;
    run(model, teacher, task, (&train_set, train.len()), (&dev_set, dev.len(), None), cfg, files, progress)
}

/// Fine-tunes `model` as a tagger (a token head: each word's label at its first sub-word) on
/// the tagged sentences `train`, scoring `dev` (word accuracy); with `teacher` (a tagger of the
/// same labels), distillation of its per-token distributions. Training sentences are cut at
/// `cfg.max_len` tokens, dev sentences only at the model's maximum length (the report says how
/// many dev words that left out).
#[allow(clippy::too_many_arguments)]
pub fn finetune_tagger(
    model: &ModelData,
    teacher: Option<&ModelData>,
    task: &TaskSpec,
    train: &[TaggedSentence],
    dev: &[TaggedSentence],
    cfg: &FinetuneConfig,
    files: &RunFiles,
    progress: &mut dyn FnMut(&FinetuneProgress),
) -> Result<(ModelData, FinetuneReport)> {
    if !task.is_tagging() {
        return Err(CompressError::InvalidArgument(format!(
            "{} is not a tagging task: fine-tune it with finetune_model",
            task.name
        )));
    }
    let max_len = cfg.max_len.min(model.spec.max_seq_len);
    let (train_set, _) = tokenize_tagged(train, &model.tokenizer_json, max_len)?;
    let (dev_set, cut) = tokenize_tagged(dev, &model.tokenizer_json, model.spec.max_seq_len)?;
    let words = dev.iter().map(|s| s.words.len()).sum::<usize>();
    run(model, teacher, task, (&train_set, train.len()), (&dev_set, dev.len(), Some((words, cut))), cfg, files, progress)
}

/// Fine-tuning of either kind: the head, the teacher, the loop, the export.
#[allow(clippy::too_many_arguments)]
fn run(
    model: &ModelData,
    teacher: Option<&ModelData>,
    task: &TaskSpec,
    (train_set, train_examples): (&Tokenized, usize),
    (dev_set, dev_examples, dev_words): (&Tokenized, usize, Option<(usize, usize)>),
    cfg: &FinetuneConfig,
    files: &RunFiles,
    progress: &mut dyn FnMut(&FinetuneProgress),
) -> Result<(ModelData, FinetuneReport)> {
    check_resume(files)?;
    let plain = files.device.device()?;
    let device = plain.clone().autodiff();
    let outputs = task.outputs();
    let token = task.is_tagging();
    let kind = if token { HeadKind::Token } else { HeadKind::Sequence };
    if let Labels::Classes(names) = &task.labels {
        let distinct: std::collections::BTreeSet<&String> = names.iter().collect();
        if names.len() < 2 || distinct.len() != names.len() {
            return Err(CompressError::InvalidArgument(format!(
                "labels {}: a classifier needs at least 2 distinct labels (for scores, a \
                 regression head)",
                names.join(", ")
            )));
        }
    }
    let labels: Vec<String> = match task.class_names() {
        [] => vec!["score".to_string()],
        names => names.to_vec(),
    };
    let mut enc = encoder_keeping_quantization(model, &plain)?;
    // The model's head is trained on when it is of the task's kind and predicts its labels, in
    // the same order.
    let keep = enc.head.as_ref().is_some_and(|h| h.classifier.weight.dims()[0] == outputs)
        && model.spec.head.as_ref().is_some_and(|h| h.labels == labels && h.kind == kind);
    if !keep {
        let pooler = enc.head.take().and_then(|h| h.pooler);
        enc.head = Some(new_head(output_width(&enc), outputs, pooler, token, cfg.seed, &plain));
    }
    let teacher_enc = match teacher {
        None => None,
        Some(t) => Some(teacher_encoder(t, model, task, &labels, kind, &plain)?),
    };
    if !keep && cfg.head_probe > 0 {
        if let Some(head) = enc.head.take() {
            enc.head = Some(probe_head(&enc, head, train_set, cfg.head_probe, &plain));
        }
    }
    let mut log = open_log(files)?;
    let done = finetune(
        enc,
        teacher_enc.as_ref().zip(teacher).map(|(encoder, data)| Teacher { encoder, data }),
        task,
        train_set,
        dev_set,
        cfg,
        files.checkpoint,
        &device,
        log.as_mut().map(|f| f as &mut dyn Write),
        |p| {
            progress(p);
            match files.stop_after {
                Some(n) if p.step >= n && p.step < p.steps => ControlFlow::Break(Stop::Save),
                _ => ControlFlow::Continue(()),
            }
        },
    )?;
    let (Some(best_model), Some(best)) = (done.best_model, done.best) else {
        return Err(CompressError::Stopped { step: done.step, steps: done.steps });
    };
    if done.step < done.steps {
        return Err(CompressError::Stopped { step: done.step, steps: done.steps });
    }
    let mut template = model.clone();
    let pooler = best_model.head.as_ref().is_some_and(|h| h.pooler.is_some());
    template.spec.head = Some(HeadSpec { pooler, labels: labels.clone(), kind });
    let mut out = encoder_to_data(&best_model, &template)?;
    let report = FinetuneReport {
        task: task.name.clone(),
        labels,
        head: if keep { "kept" } else { "new" },
        distilled: teacher.is_some() && cfg.replacing.is_none(),
        train_examples,
        dev_examples,
        dev_words: dev_words.map(|w| w.0),
        dev_words_cut: dev_words.map(|w| w.1),
        steps: done.steps,
        best,
        last: done.last,
    };
    let p = &mut out.spec.provenance;
    p.recipe = serde_json::json!({
        "method": "finetune", "task": task, "config": cfg, "head": report.head,
        "teacher": teacher.map(|t| &t.spec.provenance.recipe), "from": model.spec.provenance.recipe,
    });
    p.metrics = serde_json::json!({"dev": report.best.scores, "best_step": report.best.step});
    p.created_by = format!("bertling-compressor {}", env!("CARGO_PKG_VERSION"));
    Ok((out, report))
}

/// The teacher of task distillation, checked against the student and the task.
fn teacher_encoder(
    t: &ModelData,
    model: &ModelData,
    task: &TaskSpec,
    labels: &[String],
    kind: HeadKind,
    device: &Device,
) -> Result<crate::student::Encoder> {
    let bad = |what: String| CompressError::InvalidArgument(format!("the teacher {what}"));
    let Some(head) = &t.spec.head else {
        return Err(bad(format!(
            "has no classification head: fine-tune it on {} first (bertling finetune) and give \
             that package",
            task.name
        )));
    };
    if head.kind != kind {
        return Err(bad(format!(
            "has a {} head and {} needs a {} one: fine-tune it on {} first",
            if head.kind == HeadKind::Token { "token-classification" } else { "sequence-classification" },
            task.name,
            if kind == HeadKind::Token { "token-classification" } else { "sequence-classification" },
            task.name
        )));
    }
    if head.labels != labels {
        return Err(bad(format!(
            "predicts {} label(s) ({}), the task {} ({}): fine-tune it on the same task first",
            head.labels.len(),
            head.labels.join(", "),
            labels.len(),
            labels.join(", ")
        )));
    }
    if t.tokenizer_json != model.tokenizer_json {
        return Err(bad(
            "has another tokenizer than the model: task distillation needs the same vocabulary \
             (students made from this teacher have it)"
                .into(),
        ));
    }
    encoder_keeping_quantization(t, device)
}
