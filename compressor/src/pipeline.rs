//! The compressor's jobs as the `bertling` command runs them: distil a student, KDLSQ-quantize
//! a model, and evaluate the results. Each returns model data ready to be written as a
//! package, with its provenance (teacher hash, recipe, metrics) filled in.

use std::collections::BTreeMap;
use std::io::Write;
use std::ops::ControlFlow;
use std::path::Path;

use bertling_runtime::ModelData;
use burn::module::Module;
use burn::prelude::*;

use crate::convert::{calibrate_activations, encoder_from_data, encoder_to_data, quantize, QuantPlan};
use crate::distill::{distill, trainee, Corpus, DistillConfig, Losses, Progress};
use crate::error::{CompressError, Result};
use crate::student::{Batch, Encoder};

/// Where a training job keeps its state.
#[derive(Clone, Debug, Default)]
pub struct RunFiles<'a> {
    /// Checkpoint directory.
    pub checkpoint: Option<&'a Path>,
    /// Continue from the checkpoint there (otherwise an existing checkpoint is an error).
    pub resume: bool,
    /// JSON lines of every step.
    pub log: Option<&'a Path>,
}

fn check_resume(files: &RunFiles) -> Result<()> {
    if let Some(dir) = files.checkpoint {
        if dir.join("state.json").is_file() && !files.resume {
            return Err(CompressError::InvalidArgument(format!(
                "{} already holds a checkpoint: pass --resume to continue it, or choose another directory",
                dir.display()
            )));
        }
    }
    Ok(())
}

fn open_log(files: &RunFiles) -> Result<Option<std::fs::File>> {
    files
        .log
        .map(|p| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|e| CompressError::InvalidArgument(format!("cannot open the log {}: {e}", p.display())))
        })
        .transpose()
}

fn train(
    teacher: &ModelData,
    student: Encoder,
    corpus: &Path,
    cfg: &DistillConfig,
    files: &RunFiles,
    progress: &mut dyn FnMut(&Progress),
) -> Result<(Encoder, Losses)> {
    check_resume(files)?;
    let plain = Device::flex();
    let device = plain.clone().autodiff();
    let teacher_enc = encoder_from_data(teacher, &plain)?;
    let t = trainee(student, &teacher_enc, cfg, &device)?;
    let mut corpus = Corpus::open(corpus, &teacher.tokenizer_json, cfg.max_len.min(teacher.spec.max_seq_len))?;
    let mut log = open_log(files)?;
    let (trained, losses) = distill(
        t,
        &teacher_enc,
        &mut corpus,
        cfg,
        files.checkpoint,
        &device,
        log.as_mut().map(|f| f as &mut dyn Write),
        |p| {
            progress(p);
            ControlFlow::Continue(())
        },
    )?;
    Ok((trained.student.valid(), losses))
}

fn record(data: &mut ModelData, teacher: &ModelData, recipe: serde_json::Value, losses: &Losses) {
    data.spec.provenance.teacher_sha256 = teacher.spec.provenance.teacher_sha256.clone();
    data.spec.provenance.source = teacher.spec.provenance.source.clone();
    data.spec.provenance.recipe = recipe;
    data.spec.provenance.metrics = serde_json::json!({"final_loss": losses});
    data.spec.provenance.created_by = format!("bertling-compressor {}", env!("CARGO_PKG_VERSION"));
}

/// Distils `student` (an initialised model, e.g. from ETD) from `teacher` on a corpus.
pub fn distill_student(
    teacher: &ModelData,
    student: &ModelData,
    corpus: &Path,
    cfg: &DistillConfig,
    files: &RunFiles,
    progress: &mut dyn FnMut(&Progress),
) -> Result<ModelData> {
    let enc = encoder_from_data(student, &Device::flex())?;
    let (trained, losses) = train(teacher, enc, corpus, cfg, files, progress)?;
    let mut out = encoder_to_data(&trained, student)?;
    let recipe = serde_json::json!({"method": "distill", "init": student.spec.provenance.recipe, "config": cfg});
    record(&mut out, teacher, recipe, &losses);
    Ok(out)
}

/// KDLSQ: quantizes `student` (or the teacher itself) with learned step sizes, trained by
/// distillation from the full-precision teacher. Activation steps are calibrated on the first
/// batch of the corpus when the plan quantizes activations.
pub fn kdlsq(
    teacher: &ModelData,
    student: &ModelData,
    plan: &QuantPlan,
    corpus: &Path,
    cfg: &DistillConfig,
    files: &RunFiles,
    progress: &mut dyn FnMut(&Progress),
) -> Result<ModelData> {
    let plain = Device::flex();
    let enc = encoder_from_data(student, &plain)?;
    let act_steps = match plan.act_bits {
        None => BTreeMap::new(),
        Some(bits) => {
            let mut c = Corpus::open(corpus, &teacher.tokenizer_json, cfg.max_len.min(teacher.spec.max_seq_len))?;
            let batch = Batch::new(&c.next_batch(cfg.batch_size.max(8))?, &plain);
            calibrate_activations(&enc, &batch, bits)
        }
    };
    let enc = quantize(enc, plan, &act_steps)?;
    let (trained, losses) = train(teacher, enc, corpus, cfg, files, progress)?;
    let mut out = encoder_to_data(&trained, student)?;
    let recipe = serde_json::json!({"method": "kdlsq", "plan": {"bits": plan.bits, "group": plan.group, "embedding_bits": plan.embedding_bits, "act_bits": plan.act_bits}, "from": student.spec.provenance.recipe, "config": cfg});
    record(&mut out, teacher, recipe, &losses);
    Ok(out)
}
