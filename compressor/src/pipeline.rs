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
use crate::corpus::Corpus;
use crate::distill::{distill, trainee, DistillConfig, EvalSet, Losses, Progress, Stop};
use crate::error::{CompressError, Result};
use crate::student::{Batch, Encoder};

/// Where training runs. The training code is the same on every device (burn's tensors
/// dispatch to the backend the device belongs to); the GPU backends are compiled in with the
/// crate's `cuda` and `wgpu` features.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TrainDevice {
    /// burn's Flex CPU backend, multi-threaded through rayon's global pool.
    #[default]
    Cpu,
    /// An NVIDIA GPU through CUDA, by index (feature `cuda`).
    Cuda(usize),
    /// The best GPU wgpu finds (Vulkan, Metal, DX12; `CUBECL_WGPU_DEFAULT_DEVICE` overrides the
    /// choice) (feature `wgpu`).
    Wgpu,
}

impl std::str::FromStr for TrainDevice {
    type Err = CompressError;
    /// `cpu`, `cuda`, `cuda:N` or `wgpu`.
    fn from_str(s: &str) -> Result<Self> {
        let bad = || CompressError::InvalidArgument(format!("unknown training device `{s}`: use cpu, cuda, cuda:N (GPU index) or wgpu"));
        match s {
            "cpu" => Ok(TrainDevice::Cpu),
            "cuda" => Ok(TrainDevice::Cuda(0)),
            "wgpu" => Ok(TrainDevice::Wgpu),
            _ => s.strip_prefix("cuda:").and_then(|n| n.parse().ok()).map(TrainDevice::Cuda).ok_or_else(bad),
        }
    }
}

impl std::fmt::Display for TrainDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TrainDevice::Cpu => f.write_str("cpu"),
            TrainDevice::Cuda(i) => write!(f, "cuda:{i}"),
            TrainDevice::Wgpu => f.write_str("wgpu"),
        }
    }
}

impl TrainDevice {
    /// The burn device (without autodiff), or an error that says which feature the build lacks.
    pub fn device(self) -> Result<Device> {
        #[cfg(not(all(feature = "cuda", feature = "wgpu")))]
        let missing = |feature: &str| {
            CompressError::InvalidArgument(format!(
                "training on {self} needs a build with the `{feature}` feature (cargo build --release -p bertling-cli --features {feature})"
            ))
        };
        match self {
            TrainDevice::Cpu => Ok(Device::flex()),
            #[cfg(feature = "cuda")]
            TrainDevice::Cuda(i) => Ok(Device::cuda(i)),
            #[cfg(not(feature = "cuda"))]
            TrainDevice::Cuda(_) => Err(missing("cuda")),
            #[cfg(feature = "wgpu")]
            TrainDevice::Wgpu => Ok(Device::wgpu(burn::tensor::DeviceKind::DefaultDevice)),
            #[cfg(not(feature = "wgpu"))]
            TrainDevice::Wgpu => Err(missing("wgpu")),
        }
    }
}

/// Where a training job runs and keeps its state, and how it is watched.
#[derive(Clone, Debug, Default)]
pub struct RunFiles<'a> {
    /// The device the job trains on (checkpoints move between devices: a run may resume on
    /// another one).
    pub device: TrainDevice,
    /// Checkpoint directory.
    pub checkpoint: Option<&'a Path>,
    /// Continue from the checkpoint there (otherwise an existing checkpoint is an error).
    pub resume: bool,
    /// JSON lines of every step and every evaluation.
    pub log: Option<&'a Path>,
    /// Held-out texts evaluated during training (see [`EvalSet`]).
    pub eval_texts: Option<&'a [String]>,
    /// Evaluate every this many steps (0: only before the first and after the last).
    pub eval_every: usize,
    /// Stop (with a checkpoint) after this optimizer step; the job then fails with
    /// [`CompressError::Stopped`] and continues with `resume`.
    pub stop_after: Option<usize>,
    /// Keep the teacher's targets in a cache under this directory ([`crate::targets`]), reused
    /// by every later run of the same teacher, corpus and length.
    pub target_cache: Option<&'a Path>,
}

/// The teacher's targets for a distillation of `student` from `teacher` (burn's copy of
/// `data`), cached when `files` names a cache; the cache's notes go to stderr.
pub fn teacher_source(
    data: &ModelData,
    student: &Encoder,
    teacher: &Encoder,
    cfg: &DistillConfig,
    corpus: &Path,
    files: &RunFiles,
) -> Result<crate::targets::TeacherSource> {
    let source = crate::targets::TeacherSource::for_distill(data, student, teacher, cfg, 0)?;
    match files.target_cache {
        None => Ok(source),
        Some(root) => {
            let store = crate::targets::full_request(teacher);
            let max_len = cfg.max_len.min(data.spec.max_seq_len);
            let (source, notes) = source.cached(data, root, corpus, max_len, &store)?;
            for n in notes {
                eprintln!("{n}");
            }
            Ok(source)
        }
    }
}

pub fn check_resume(files: &RunFiles) -> Result<()> {
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

/// Opens the JSON log for appending (several jobs may share one log, one after the other). A
/// resumed job cuts the log after the last line of its checkpoint's step, dropping the steps a
/// killed run did after its last checkpoint, which it is about to redo, so that the log reads as
/// if the run had never stopped; a line cut off by a kill is dropped in any case.
pub fn open_log(files: &RunFiles) -> Result<Option<std::fs::File>> {
    let Some(path) = files.log else { return Ok(None) };
    let err = |e: std::io::Error| CompressError::InvalidArgument(format!("cannot open the log {}: {e}", path.display()));
    let old = match std::fs::read_to_string(path) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(err(e)),
    };
    let resumed_at = files
        .checkpoint
        .filter(|_| files.resume)
        .and_then(|dir| std::fs::read_to_string(dir.join("state.json")).ok())
        .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
        .and_then(|s| s["step"].as_u64());
    // Whole lines only (a kill may leave the last one unfinished).
    let mut lines: Vec<&str> = old.split_inclusive('\n').filter(|l| l.ends_with('\n')).collect();
    let step_of = |l: &str| serde_json::from_str::<serde_json::Value>(l).ok().and_then(|v| v["step"].as_u64());
    if let Some(step) = resumed_at {
        if let Some(last) = lines.iter().rposition(|l| step_of(l) == Some(step)) {
            lines.truncate(last + 1);
        }
    }
    let kept = lines.concat();
    if kept.len() != old.len() {
        let tmp = path.with_extension("jsonl.partial");
        std::fs::write(&tmp, kept).map_err(err)?;
        std::fs::rename(&tmp, path).map_err(err)?;
    }
    std::fs::OpenOptions::new().create(true).append(true).open(path).map(Some).map_err(err)
}

fn train(
    teacher: &ModelData,
    student: Encoder,
    corpus: &Path,
    cfg: &DistillConfig,
    files: &RunFiles,
    progress: &mut dyn FnMut(&Progress),
) -> Result<(Encoder, Finished)> {
    check_resume(files)?;
    let plain = files.device.device()?;
    let device = plain.clone().autodiff();
    let teacher_enc = encoder_from_data(teacher, &plain)?;
    let t = trainee(student.to_device(&plain), &teacher_enc, cfg, &device)?;
    let mut targets = teacher_source(teacher, &t.student, &teacher_enc, cfg, corpus, files)?;
    let mut corpus = Corpus::open(corpus, &teacher.tokenizer_json, cfg.max_len.min(teacher.spec.max_seq_len))?;
    let mut log = open_log(files)?;
    let eval = files
        .eval_texts
        .map(|texts| EvalSet::new(texts, &teacher.tokenizer_json, cfg.max_len.min(teacher.spec.max_seq_len), cfg.batch_size, files.eval_every))
        .transpose()?;
    let trained = distill(t, &teacher_enc, &mut targets, &mut corpus, cfg, files.checkpoint, &device, eval.as_ref(), log.as_mut().map(|f| f as &mut dyn Write), |p| {
        progress(p);
        match files.stop_after {
            Some(n) if p.step >= n && p.step < p.steps => ControlFlow::Break(Stop::Save),
            _ => ControlFlow::Continue(()),
        }
    })?;
    if trained.step < cfg.steps {
        return Err(CompressError::Stopped { step: trained.step, steps: cfg.steps });
    }
    Ok((trained.trainee.student.valid(), Finished { losses: trained.losses, eval: trained.eval }))
}

/// How a training job ended: its last step's losses and last held-out evaluation.
struct Finished {
    losses: Losses,
    eval: Option<crate::distill::EvalResult>,
}

fn record(data: &mut ModelData, teacher: &ModelData, recipe: serde_json::Value, end: &Finished) {
    data.spec.provenance.teacher_sha256 = teacher.spec.provenance.teacher_sha256.clone();
    data.spec.provenance.source = teacher.spec.provenance.source.clone();
    data.spec.provenance.recipe = recipe;
    data.spec.provenance.metrics = serde_json::json!({"final_loss": end.losses, "final_eval": end.eval});
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
    let (trained, end) = train(teacher, enc, corpus, cfg, files, progress)?;
    let mut out = encoder_to_data(&trained, student)?;
    let recipe = serde_json::json!({"method": "distill", "init": student.spec.provenance.recipe, "config": cfg});
    record(&mut out, teacher, recipe, &end);
    Ok(out)
}

/// KDLSQ: quantizes `student` with learned step sizes, trained by distillation from the
/// full-precision `reference` (the student's own float weights, or the teacher it came from;
/// the package's provenance is taken from the reference). Activation steps are calibrated on
/// the first batch of the corpus when the plan quantizes activations.
pub fn kdlsq(
    reference: &ModelData,
    student: &ModelData,
    plan: &QuantPlan,
    corpus: &Path,
    cfg: &DistillConfig,
    files: &RunFiles,
    progress: &mut dyn FnMut(&Progress),
) -> Result<ModelData> {
    let plain = Device::flex();
    let enc = encoder_from_data(student, &plain)?;
    let acts = match plan.act_bits {
        None => BTreeMap::new(),
        Some(bits) => {
            let mut c = Corpus::open(corpus, &reference.tokenizer_json, cfg.max_len.min(reference.spec.max_seq_len))?;
            let batch = Batch::new(&c.next_batch(cfg.batch_size.max(8))?, &plain);
            calibrate_activations(&enc, &batch, bits, plan.act_init, plan.smooth)?
        }
    };
    let enc = quantize(enc, plan, &acts)?;
    let (trained, end) = train(reference, enc, corpus, cfg, files, progress)?;
    let mut out = encoder_to_data(&trained, student)?;
    let recipe = serde_json::json!({"method": "kdlsq", "plan": plan, "from": student.spec.provenance.recipe, "reference": if reference.spec == student.spec { "self (full precision)" } else { "teacher" }, "config": cfg});
    record(&mut out, reference, recipe, &end);
    Ok(out)
}

/// Post-training quantization without any training (`bertling pack --act-bits`): the plan's
/// weight steps (least-error with [`crate::lsq::StepInit::Mse`]) and round-to-nearest codes,
/// activation steps and smoothing factors calibrated on the first `sentences` lines of
/// `calibration` (a text file, one sentence per line; read again from the top if shorter). Gives an A8/A4 package in seconds, e.g. for the
/// integer kernels' speed benchmark; KDLSQ training recovers more accuracy.
pub fn calibrated_rtn(model: &ModelData, plan: &QuantPlan, calibration: &Path, sentences: usize) -> Result<ModelData> {
    let Some(bits) = plan.act_bits else {
        return Err(CompressError::InvalidArgument("calibration quantizes activations: give their bits (8 or 4)".into()));
    };
    if sentences == 0 {
        return Err(CompressError::InvalidArgument("calibrate on at least one sentence".into()));
    }
    let plain = Device::flex();
    let enc = encoder_from_data(model, &plain)?;
    let mut c = Corpus::open(calibration, &model.tokenizer_json, model.spec.max_seq_len)?;
    let batch = Batch::new(&c.next_batch(sentences)?, &plain);
    let acts = calibrate_activations(&enc, &batch, bits, plan.act_init, plan.smooth)?;
    let enc = quantize(enc, plan, &acts)?;
    let mut out = encoder_to_data(&enc, model)?;
    out.spec.provenance = model.spec.provenance.clone();
    out.spec.provenance.recipe =
        serde_json::json!({"method": "rtn-calibrated", "plan": plan, "calibration_sentences": sentences, "from": model.spec.provenance.recipe});
    out.spec.provenance.created_by = format!("bertling-compressor {}", env!("CARGO_PKG_VERSION"));
    Ok(out)
}

/// What `bertling compress` does.
#[derive(Clone, Debug)]
pub struct CompressPlan {
    /// The student; `None` quantizes the teacher itself.
    pub student: Option<StudentPlan>,
    /// Settings of the distillation stage.
    pub train: DistillConfig,
    /// One package per entry: how it is quantized (its weight bits name it) and its KDLSQ
    /// run's settings ([`crate::recipe::KdlsqChoices::resolve`] makes them).
    pub kdlsq: Vec<(QuantPlan, DistillConfig)>,
}

/// Where the student of a compress run comes from.
#[derive(Clone, Debug)]
pub enum StudentPlan {
    /// A uniform student of this shape, initialised as named (`etd-impt`, `etd-rand`, `random`).
    Etd(crate::etd::StudentShape, String),
    /// A student already initialised (e.g. cut from the search's supernet).
    Given(Box<ModelData>),
    /// A searched architecture (`bertling search`'s report) cut from the teacher as the
    /// supernet starts ([`crate::search::inherit`]), its units chosen as the named init
    /// chooses them (`etd-impt`, `etd-rand`).
    Searched(crate::search::Arch, String),
}

/// One package of a compress run and how it measures up.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CompressedModel {
    pub name: String,
    pub path: std::path::PathBuf,
    /// The package file's size.
    pub bytes: usize,
    pub parameters: usize,
    pub bits: u8,
    /// Embedding cosine to the teacher; absent when the student's embeddings have another
    /// width than the teacher's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cosine_mean: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cosine_p5: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stsb: Option<f64>,
    /// Agreement per category of the built-in benchmark of what users type
    /// ([`crate::eval::AgreementSet::builtin`]); empty when the widths differ.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub agreement_by_category: Vec<crate::eval::CategoryAgreement>,
}

/// The report of a compress run.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CompressReport {
    pub teacher: String,
    pub teacher_bytes: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub teacher_stsb: Option<f64>,
    pub eval_texts: usize,
    pub models: Vec<CompressedModel>,
}

impl CompressReport {
    /// A Markdown table of the report.
    pub fn markdown(&self) -> String {
        let fmt = |v: Option<f64>| v.map(|v| format!("{v:.4}")).unwrap_or_else(|| "-".into());
        let mut s = format!(
            "teacher: {} ({:.1} MB{}), agreement over {} texts\n\n| model | bits | MB | params (M) | cosine mean | cosine p5 | STS-B |\n|---|---|---|---|---|---|---|\n",
            self.teacher,
            self.teacher_bytes as f64 / 1e6,
            self.teacher_stsb.map(|v| format!(", STS-B {v:.4}")).unwrap_or_default(),
            self.eval_texts
        );
        for m in &self.models {
            s += &format!(
                "| {} | {} | {:.1} | {:.1} | {} | {} | {} |\n",
                m.name,
                m.bits,
                m.bytes as f64 / 1e6,
                m.parameters as f64 / 1e6,
                fmt(m.cosine_mean),
                fmt(m.cosine_p5),
                fmt(m.stsb)
            );
        }
        // Per category of what users type: mean / 5th percentile / minimum cosine.
        let Some(first) = self.models.iter().find(|m| !m.agreement_by_category.is_empty()) else { return s };
        let cats: Vec<&str> = first.agreement_by_category.iter().map(|c| c.category.as_str()).collect();
        s += "\nCosine to the teacher on what users type (mean / p5 / min per category):\n\n| model |";
        for c in &cats {
            s += &format!(" {c} |");
        }
        s += &format!("\n|---|{}\n", "---|".repeat(cats.len()));
        for m in self.models.iter().filter(|m| !m.agreement_by_category.is_empty()) {
            s += &format!("| {} |", m.name);
            for c in &m.agreement_by_category {
                let g = &c.agreement;
                s += &format!(" {:.3} / {:.3} / {:.3} |", g.mean, g.p5, g.min);
            }
            s += "\n";
        }
        s
    }
}

/// init → distill → KDLSQ at each bit width → export → evaluation of `teacher` (named
/// `teacher_name` in the report), into `out_dir`
/// (packages, `checkpoints/`, `train.jsonl`, `report.json`, `report.md`). `run` gives the
/// resume, evaluation and stop settings of every stage (its checkpoint and log are ignored:
/// they live under `out_dir`); stages resume from their checkpoints when `run.resume`.
#[allow(clippy::too_many_arguments)]
pub fn compress(
    teacher: &ModelData,
    teacher_name: &str,
    corpus: &Path,
    out_dir: &Path,
    plan: &CompressPlan,
    eval_texts: &[String],
    stsb_dir: Option<&Path>,
    run: &RunFiles,
    progress: &mut dyn FnMut(&str, &Progress),
) -> Result<CompressReport> {
    use crate::etd::{extract, init_named};
    let io = |e: std::io::Error| CompressError::InvalidArgument(format!("{}: {e}", out_dir.display()));
    std::fs::create_dir_all(out_dir.join("checkpoints")).map_err(io)?;
    let log = out_dir.join("train.jsonl");
    let files = |stage: &str| -> std::path::PathBuf { out_dir.join("checkpoints").join(stage) };
    let mut written: Vec<(String, std::path::PathBuf, u8)> = Vec::new();
    let base = match &plan.student {
        None => teacher.clone(),
        Some(student) => {
            let student = match student {
                StudentPlan::Etd(shape, init) => {
                    let init = init_named(init, teacher, corpus, plan.train.max_len)?;
                    extract(teacher, shape, &init, plan.train.seed)?
                }
                StudentPlan::Given(data) => (**data).clone(),
                StudentPlan::Searched(arch, init) => {
                    let importance = match init_named(init, teacher, corpus, plan.train.max_len)? {
                        crate::etd::Init::EtdImpt(i) => Some(i),
                        crate::etd::Init::EtdRand => {
                            Some(crate::etd::Importance::random(teacher, plan.train.seed)?)
                        }
                        crate::etd::Init::Random => {
                            return Err(CompressError::InvalidArgument(
                                "a searched architecture starts from the teacher: use --init etd-impt or etd-rand".into(),
                            ))
                        }
                    };
                    let mut student = crate::search::inherit(teacher, arch, importance.as_ref(), plan.train.seed)?;
                    student.spec.provenance.recipe = serde_json::json!({"method": "searched architecture", "arch": arch.to_string(), "init": init});
                    student
                }
            };
            let dir = files("distill");
            let run = RunFiles { checkpoint: Some(&dir), log: Some(&log), ..run.clone() };
            let distilled = distill_student(teacher, &student, corpus, &plan.train, &run, &mut |p| progress("distill", p))?;
            let path = out_dir.join("student-f32.bertling");
            bertling_runtime::write_package_file(&distilled, &path)?;
            written.push(("student-f32".into(), path, 32));
            distilled
        }
    };
    for (q, cfg) in &plan.kdlsq {
        let bits = q.bits;
        let stage = format!("kdlsq-w{bits}");
        let dir = files(&stage);
        let run = RunFiles { checkpoint: Some(&dir), log: Some(&log), ..run.clone() };
        // The quantized model learns from its own full-precision weights: same shapes, so every
        // hidden state and attention map is compared directly, without fresh projections.
        let out = kdlsq(&base, &base, q, corpus, cfg, &run, &mut |p| progress(&stage, p))?;
        let name = format!("student-w{bits}");
        let path = out_dir.join(format!("{name}.bertling"));
        bertling_runtime::write_package_file(&out, &path)?;
        written.push((name, path, bits));
    }
    let opts = bertling_runtime::LoadOptions::default();
    let teacher_model = bertling_runtime::Model::from_data(teacher.clone(), &opts)?;
    let teacher_stsb = stsb_dir.map(|d| crate::eval::stsb(&teacher_model, d)).transpose()?;
    let mut models = Vec::new();
    // Parsed once for every model of the report.
    let users_type = crate::eval::AgreementSet::builtin();
    for (name, path, bits) in written {
        let m = bertling_runtime::Model::load(&path, &opts)?;
        let same_width = m.info().output_width == teacher_model.info().output_width;
        let ag = if same_width { Some(crate::eval::agreement(&teacher_model, &m, eval_texts)?) } else { None };
        let by_category = if same_width { crate::eval::agreement_by_category(&teacher_model, &m, &users_type)? } else { Vec::new() };
        let stsb = stsb_dir.map(|d| crate::eval::stsb(&m, d)).transpose()?;
        let (cosine_mean, cosine_p5) = (ag.map(|a| a.mean), ag.map(|a| a.p5));
        // The evaluation goes into the package's provenance too.
        let mut data = bertling_runtime::load_model_data(&path)?;
        if let serde_json::Value::Object(m) = &mut data.spec.provenance.metrics {
            m.insert(
                "report".into(),
                serde_json::json!({"cosine_mean": cosine_mean, "cosine_p5": cosine_p5, "stsb": stsb, "eval_texts": eval_texts.len(), "agreement_by_category": by_category}),
            );
        }
        let bytes = bertling_runtime::write_package_file(&data, &path)?;
        models.push(CompressedModel {
            name,
            path,
            bytes,
            parameters: m.info().parameters,
            bits,
            cosine_mean,
            cosine_p5,
            stsb,
            agreement_by_category: by_category,
        });
    }
    let report =
        CompressReport { teacher: teacher_name.to_string(), teacher_bytes: teacher.stored_bytes(), teacher_stsb, eval_texts: eval_texts.len(), models };
    std::fs::write(out_dir.join("report.json"), serde_json::to_string_pretty(&report).unwrap_or_default()).map_err(io)?;
    std::fs::write(out_dir.join("report.md"), report.markdown()).map_err(io)?;
    Ok(report)
}
