//! Training commands: `distill`, `quantize` (KDLSQ) and `compress` (the whole chain), with the
//! flags they share.

use std::path::{Path, PathBuf};

use bertling_compressor::convert::QuantPlan;
use bertling_compressor::corpus::Augment;
use bertling_compressor::distill::{DistillConfig, LossWeights, Progress};
use bertling_compressor::etd::{extract, init_named, StudentShape};
use bertling_compressor::eval::read_texts;
use bertling_compressor::pipeline::{
    compress, distill_student, kdlsq, CompressPlan, RunFiles, StudentPlan, TrainDevice,
};
use bertling_compressor::recipe::{self, KdlsqChoices};
use bertling_runtime::{load_model_data, write_package_file, ModelData};
use clap::Args;

use crate::error::{CliError, Result};
use crate::progress::{progress_printer, progress_printer_named};

/// How `quantize` and `compress` quantize, besides the weight bits. Unset options take the
/// measured default recipe of each width (`bertling_compressor::recipe`, RESULTS.md).
#[derive(Args)]
pub(crate) struct QuantFlags {
    /// Columns per step: 16, 32, 64, 128, or `row` (one step per output channel). Default: 32
    /// at 4 bits and more, 16 below.
    #[arg(long)]
    group: Option<String>,
    /// Bits of the embedding tables (compress raises it to each width it trains).
    #[arg(long, default_value_t = 8)]
    embedding_bits: u8,
    /// Columns per step of the embedding tables: 16, 32, 64, 128 or `row`. Default: as --group.
    #[arg(long)]
    embedding_group: Option<String>,
    /// Bits of the activations entering each matrix: 8, 4, or 0 for float activations.
    #[arg(long, default_value_t = 8)]
    act_bits: u8,
    /// Activation steps: `token` (each token's own step, max|x|/Q_P, computed at run time) or
    /// `tensor` (one step per matrix, calibrated and trained). Default: token.
    #[arg(long)]
    act_steps: Option<String>,
    /// Initial weight and embedding steps: mse (least quantization error of each row or group;
    /// much closer to the teacher before training) or lsq (2·mean|w|/√Q_P, LSQ's rule).
    /// Default: mse.
    #[arg(long)]
    weight_init: Option<String>,
    /// Initial activation steps: mse (least quantization error on a calibration batch) or lsq
    /// (2·mean|x|/√Q_P). Default: mse.
    #[arg(long)]
    act_init: Option<String>,
    /// Smooth the activations before quantizing them, with strength α from 0 to 1 (SmoothQuant):
    /// outlier channels move into the weights; 0 turns it off. Default: 0.5 at 4 bits and more
    /// (0.7 with --act-steps tensor), off below (where it costs more than it gives).
    #[arg(long)]
    smooth: Option<f32>,
}

/// One of the format's group sizes or `row` (`None`: one step per row).
fn parse_group(flag: &str, v: &str) -> Result<Option<usize>> {
    use bertling_runtime::quant::GROUP_SIZES;
    match v {
        "row" => Ok(None),
        n => match n.parse::<usize>() {
            Ok(g) if GROUP_SIZES.contains(&g) => Ok(Some(g)),
            _ => Err(CliError::Usage(format!("{flag} {v}: use one of {GROUP_SIZES:?} or row"))),
        },
    }
}

impl QuantFlags {
    fn act_bits(&self) -> Result<Option<u8>> {
        Self::parse_act_bits(self.act_bits)
    }

    /// `--act-steps`: whether activation steps are per token (default: the recipe's).
    pub(crate) fn parse_act_steps(v: Option<&str>) -> Result<bool> {
        match v {
            None => Ok(recipe::ACT_PER_TOKEN),
            Some("token") => Ok(true),
            Some("tensor") => Ok(false),
            Some(other) => {
                Err(CliError::Usage(format!("--act-steps {other}: use token or tensor")))
            }
        }
    }

    pub(crate) fn parse_act_bits(bits: u8) -> Result<Option<u8>> {
        match bits {
            0 => Ok(None),
            4 | 8 => Ok(Some(bits)),
            other => Err(CliError::Usage(format!("--act-bits {other}: use 8, 4 or 0"))),
        }
    }

    /// The settings common to every width; [`KdlsqChoices::resolve`] completes them.
    fn plan(&self, bits: u8) -> Result<QuantPlan> {
        Ok(QuantPlan {
            bits,
            group: None,
            embedding_group: None,
            embedding_bits: self.embedding_bits,
            act_bits: self.act_bits()?,
            act_per_token: Self::parse_act_steps(self.act_steps.as_deref())?,
            weight_init: self.weight_init.as_deref().map_or(Ok(recipe::STEP_INIT), str::parse)?,
            act_init: self.act_init.as_deref().map_or(Ok(recipe::STEP_INIT), str::parse)?,
            smooth: None,
        })
    }

    fn embedding_group(&self) -> Result<Option<Option<usize>>> {
        self.embedding_group.as_deref().map(|g| parse_group("--embedding-group", g)).transpose()
    }

    /// What the user chose of the per-width recipe, with the training flags.
    fn choices(&self, train: &TrainArgs, steps: Option<usize>) -> Result<KdlsqChoices> {
        let smooth = match self.smooth {
            None => None,
            Some(a) if a == 0.0 => Some(None),
            Some(a) if a > 0.0 && a <= 1.0 => Some(Some(a)),
            Some(a) => {
                return Err(CliError::Usage(format!(
                    "--smooth {a}: use a strength from 0 (off) to 1"
                )))
            }
        };
        Ok(KdlsqChoices {
            group: self.group.as_deref().map(|g| parse_group("--group", g)).transpose()?,
            smooth,
            lr: train.lr,
            steps,
            warmup: train.warmup,
            sentence_weight: train.sentence_weight,
        })
    }

    /// The plan and the KDLSQ settings of the run at `bits`.
    pub(crate) fn resolve(
        &self,
        bits: u8,
        train: &TrainArgs,
        base: &DistillConfig,
        steps: Option<usize>,
    ) -> Result<(QuantPlan, DistillConfig)> {
        Ok(self.choices(train, steps)?.resolve(
            bits,
            &self.plan(bits)?,
            self.embedding_group()?,
            base,
        ))
    }
}

#[derive(Args)]
pub(crate) struct CompressArgs {
    #[arg(long)]
    teacher: PathBuf,
    #[arg(long)]
    corpus: PathBuf,
    /// Output directory: packages, checkpoints, train.jsonl, report.json, report.md.
    #[arg(long)]
    out: PathBuf,
    /// Weight bit widths, one package each.
    #[arg(long, value_delimiter = ',', default_value = "8,4,2")]
    bits: Vec<u8>,
    #[command(flatten)]
    quant: QuantFlags,
    /// Skip the student: KDLSQ-quantize the teacher itself.
    #[arg(long, conflicts_with_all = ["layers", "width", "heads", "inner", "arch", "student"])]
    teacher_only: bool,
    /// A searched architecture (an `arch` of `bertling search`'s report.json, e.g.
    /// "e128|256:a4x64,f512,c5,id|..."), cut from the teacher as the search's supernet starts
    /// (units chosen by --init), instead of a uniform student.
    #[arg(long, conflicts_with_all = ["layers", "width", "heads", "inner", "student"])]
    arch: Option<String>,
    /// A float package as the student, e.g. the `student-inherited.bertling` of `bertling search
    /// --search-only` (the trained supernet's weights), instead of cutting one from the teacher.
    #[arg(long, conflicts_with_all = ["layers", "width", "heads", "inner", "init"])]
    student: Option<PathBuf>,
    #[command(flatten)]
    shape: StudentArgs,
    /// Steps of each KDLSQ stage (default: --steps if given, else the recipe's per width).
    #[arg(long)]
    quant_steps: Option<usize>,
    /// STS-B directory (dev.tsv) for the report.
    #[arg(long)]
    stsb: Option<PathBuf>,
    #[command(flatten)]
    train: TrainArgs,
}

#[derive(Args, Clone)]
pub(crate) struct TrainArgs {
    /// Optimizer steps. Default: the recipe's (distillation 1,600; KDLSQ 300 at 4 bits and more,
    /// 700 there with --act-steps tensor, 1,800 below).
    #[arg(long)]
    steps: Option<usize>,
    /// Sentences per micro-batch.
    #[arg(long, default_value_t = recipe::BATCH)]
    batch: usize,
    /// Micro-batches per optimizer step.
    #[arg(long, default_value_t = 1)]
    accumulation: usize,
    /// Peak learning rate. Default: the recipe's (distillation 2e-4; KDLSQ 1e-4 at 4 bits and
    /// more, 3e-4 below).
    #[arg(long)]
    lr: Option<f64>,
    /// Warm-up steps (linear from 0 to --lr, then linear decay to 0 at the last step).
    /// Default: the recipe's (distillation 40, KDLSQ 30).
    #[arg(long)]
    warmup: Option<usize>,
    #[arg(long, default_value_t = 0.01)]
    weight_decay: f32,
    /// Tokens per training sentence.
    #[arg(long, default_value_t = 128)]
    max_len: usize,
    /// Layer map: uniform, last, or a list of teacher layers (one per student layer), e.g. 1,3,5.
    #[arg(long, default_value = "uniform")]
    map: String,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Worker threads for training (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Train on cpu, cuda, cuda:N or wgpu (the GPU ones need a build with `--features cuda` or
    /// `--features wgpu`). A checkpoint may be resumed on another device.
    #[arg(long, default_value = "cpu")]
    device: TrainDevice,
    /// Checkpoint directory (a killed run continues from it with --resume).
    #[arg(long)]
    pub(crate) checkpoint: Option<PathBuf>,
    #[arg(long)]
    resume: bool,
    #[arg(long, default_value_t = 200)]
    checkpoint_every: usize,
    /// Append one JSON line per step and per evaluation to this file.
    #[arg(long)]
    log: Option<PathBuf>,
    /// Held-out texts, one per line, evaluated during training (and, for compress, in the
    /// report's embedding agreement over its first 500 lines). Default: the corpus's first lines,
    /// which training also sees.
    #[arg(long)]
    eval_texts: Option<PathBuf>,
    /// Evaluate every this many steps (0: only before the first and after the last step).
    #[arg(long, default_value_t = 100)]
    eval_every: usize,
    /// Texts evaluated during training (the first N of --eval-texts).
    #[arg(long, default_value_t = 128)]
    eval_size: usize,
    /// Weight of the sentence-embedding loss (1 − cosine of the pooled last-layer states).
    /// Default: the recipe's (1; KDLSQ below 4 bits 5).
    #[arg(long)]
    sentence_weight: Option<f32>,
    /// Stop after this optimizer step with a checkpoint; continue later with --resume.
    #[arg(long)]
    stop_after: Option<usize>,
    /// Keep the teacher's training targets (its hidden states, attention and logits per
    /// training text, f16) in a cache under this directory, e.g. ~/.cache/bertling/targets:
    /// later runs of the same teacher, corpus and --max-len (other students, layer maps, bit
    /// widths, seeds, stages) read them instead of running the teacher. About
    /// (layers + 1)·tokens·width·2 + attention blocks·heads·tokens²·2 bytes per text: ≈ 0.9 MB
    /// for all-MiniLM-L6-v2 at 64 tokens.
    #[arg(long)]
    target_cache: Option<PathBuf>,
    /// Fraction of training lines replaced by a span of random length cut from them (down to
    /// one word or punctuation mark), so that the student also learns the teacher on short
    /// inputs like the queries users type; 0 turns it off.
    #[arg(long, default_value_t = Augment::default().spans)]
    spans: f32,
    /// Fraction of training lines replaced by synthetic noise from the tokenizer's vocabulary:
    /// digit strings, runs of marks, random words (rare words, names, other scripts); spans are
    /// cut from the other lines. Default 0: 0.15 measured no better than none
    /// (benches/quality/RESULTS.md, "Synthetic noise and the spread between seeds").
    #[arg(long, default_value_t = Augment::default().noise)]
    noise: f32,
}

#[derive(Args)]
pub(crate) struct DistillArgs {
    /// Hugging Face BERT directory.
    #[arg(long)]
    teacher: PathBuf,
    /// Plain-text corpus, one sentence or paragraph per line (streamed).
    #[arg(long)]
    corpus: PathBuf,
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    student: StudentArgs,
    #[command(flatten)]
    train: TrainArgs,
}

/// The student's shape and initialisation.
#[derive(Args)]
pub(crate) struct StudentArgs {
    /// etd-impt, etd-rand or random.
    #[arg(long, default_value = "etd-impt")]
    pub(crate) init: String,
    /// Student layers (default: half the teacher's).
    #[arg(long)]
    layers: Option<usize>,
    /// Student width (default: the teacher's).
    #[arg(long)]
    width: Option<usize>,
    /// Attention heads per layer (default: the teacher's, scaled with the width).
    #[arg(long)]
    heads: Option<usize>,
    /// Feed-forward units per layer (default: the teacher's, scaled with the width).
    #[arg(long)]
    inner: Option<usize>,
}

#[derive(Args)]
pub(crate) struct QuantizeArgs {
    /// The full-precision teacher (Hugging Face directory).
    #[arg(long)]
    teacher: PathBuf,
    /// The student to quantize (a package); default: the teacher itself.
    #[arg(long)]
    student: Option<PathBuf>,
    /// The full-precision model the quantized one learns from: `student` (the student's own
    /// float weights: same shapes, no projections) or `teacher`.
    #[arg(long, default_value = "student")]
    reference: String,
    /// Weight bits, 2..8.
    #[arg(long)]
    bits: u8,
    #[command(flatten)]
    quant: QuantFlags,
    #[arg(long)]
    corpus: PathBuf,
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    train: TrainArgs,
}

/// Sizes the pool training runs on (rayon's global pool: once per process) to `--threads`.
pub(crate) fn training_threads(threads: Option<usize>) -> Result<()> {
    if let Some(n) = threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .map_err(|e| CliError::Usage(format!("--threads: {e}")))?;
    }
    Ok(())
}

impl TrainArgs {
    /// The settings of a run whose unset steps, learning rate, warm-up and sentence weight come
    /// from `recipe` (a KDLSQ run replaces them through [`QuantFlags::resolve`]).
    pub(crate) fn config(&self, recipe: DistillConfig) -> Result<DistillConfig> {
        training_threads(self.threads)?;
        // A device this build cannot train on is an error before any work starts.
        self.device.device()?;
        let steps = self.steps.unwrap_or(recipe.steps);
        if steps == 0 || self.batch == 0 {
            return Err(CliError::Usage("--steps and --batch must be at least 1".into()));
        }
        Ok(DistillConfig {
            steps,
            batch_size: self.batch,
            accumulation: self.accumulation,
            lr: self.lr.unwrap_or(recipe.lr),
            warmup: self.warmup.unwrap_or(recipe.warmup).min(steps),
            weight_decay: self.weight_decay,
            max_len: self.max_len,
            seed: self.seed,
            checkpoint_every: self.checkpoint_every,
            map: self.map.parse()?,
            weights: LossWeights {
                sentence: self.sentence_weight.unwrap_or(recipe.weights.sentence),
                ..recipe.weights
            },
            augment: {
                let a = Augment { spans: self.spans, noise: self.noise };
                a.validate()?;
                a
            },
        })
    }

    /// --steps, if given.
    pub(crate) fn steps(&self) -> Option<usize> {
        self.steps
    }

    /// --eval-texts, if given.
    pub(crate) fn eval_texts_path(&self) -> Option<&Path> {
        self.eval_texts.as_deref()
    }

    /// The texts evaluated during training.
    pub(crate) fn eval_texts(&self, corpus: &Path) -> Result<Vec<String>> {
        if self.eval_size == 0 {
            return Err(CliError::Usage("--eval-size must be at least 1".into()));
        }
        Ok(read_texts(self.eval_texts.as_deref().unwrap_or(corpus), self.eval_size)?)
    }

    pub(crate) fn files<'a>(&'a self, eval_texts: &'a [String]) -> RunFiles<'a> {
        RunFiles {
            device: self.device,
            checkpoint: self.checkpoint.as_deref(),
            resume: self.resume,
            log: self.log.as_deref(),
            eval_texts: Some(eval_texts),
            eval_every: self.eval_every,
            stop_after: self.stop_after,
            target_cache: self.target_cache.as_deref(),
        }
    }

    /// --stop-after only makes sense with a checkpoint to continue from.
    fn check_stop(&self) -> Result<()> {
        if self.stop_after.is_some() && self.checkpoint.is_none() {
            return Err(CliError::Usage(
                "--stop-after needs --checkpoint DIR to save the run in".into(),
            ));
        }
        Ok(())
    }
}

/// The student shape from the flags, the rest from the teacher.
pub(crate) fn student_shape(teacher: &ModelData, a: &StudentArgs) -> Result<StudentShape> {
    Ok(StudentShape::from_teacher(teacher, a.layers, a.width, a.heads, a.inner)?)
}

pub(crate) fn distill_cmd(a: &DistillArgs) -> Result<()> {
    a.train.check_stop()?;
    let cfg = a.train.config(recipe::distill())?;
    let teacher = bertling_runtime::load_hf_dir(&a.teacher)?;
    let shape = student_shape(&teacher, &a.student)?;
    let init = init_named(&a.student.init, &teacher, &a.corpus, cfg.max_len)?;
    let student = extract(&teacher, &shape, &init, cfg.seed)?;
    let texts = a.train.eval_texts(&a.corpus)?;
    let out = distill_student(
        &teacher,
        &student,
        &a.corpus,
        &cfg,
        &a.train.files(&texts),
        &mut progress_printer("distill"),
    )?;
    let bytes = write_package_file(&out, &a.out)?;
    eprintln!(
        "wrote {} ({:.1} MB, {:.1} M parameters)",
        a.out.display(),
        bytes as f64 / 1e6,
        out.parameters() as f64 / 1e6
    );
    Ok(())
}

pub(crate) fn quantize_cmd(a: &QuantizeArgs) -> Result<()> {
    a.train.check_stop()?;
    let base = a.train.config(recipe::distill())?;
    let (plan, cfg) = a.quant.resolve(a.bits, &a.train, &base, a.train.steps)?;
    let teacher = bertling_runtime::load_hf_dir(&a.teacher)?;
    let student = match &a.student {
        Some(p) => load_model_data(p)?,
        None => teacher.clone(),
    };
    let texts = a.train.eval_texts(&a.corpus)?;
    let reference = match a.reference.as_str() {
        "student" => &student,
        "teacher" => &teacher,
        other => {
            return Err(CliError::Usage(format!("--reference {other}: use student or teacher")))
        }
    };
    let out = kdlsq(
        reference,
        &student,
        &plan,
        &a.corpus,
        &cfg,
        &a.train.files(&texts),
        &mut progress_printer("kdlsq"),
    )?;
    let bytes = write_package_file(&out, &a.out)?;
    eprintln!("wrote {} ({:.1} MB, {}-bit)", a.out.display(), bytes as f64 / 1e6, a.bits);
    Ok(())
}

pub(crate) fn compress_cmd(a: &CompressArgs) -> Result<()> {
    let train = a.train.config(recipe::distill())?;
    if a.train.checkpoint.is_some() {
        return Err(CliError::Usage(
            "compress keeps its checkpoints under --out; drop --checkpoint".into(),
        ));
    }
    if a.train.log.is_some() {
        // Accepting it silently once cost a benchmark its per-step rows (the log was elsewhere).
        return Err(CliError::Usage(
            "compress writes its log to OUT/train.jsonl; drop --log".into(),
        ));
    }
    // --steps sets every stage unless --quant-steps sets the KDLSQ ones.
    let quant_steps = a.quant_steps.or(a.train.steps);
    let kdlsq = a
        .bits
        .iter()
        .map(|&b| a.quant.resolve(b, &a.train, &train, quant_steps))
        .collect::<Result<Vec<_>>>()?;
    let teacher = bertling_runtime::load_hf_dir(&a.teacher)?;
    let student = if a.teacher_only {
        None
    } else if let Some(arch) = &a.arch {
        let arch = arch.parse().map_err(|e| CliError::Usage(format!("--arch: {e}")))?;
        Some(StudentPlan::Searched(arch, a.shape.init.clone()))
    } else if let Some(path) = &a.student {
        let data = load_model_data(path)?;
        if !data.spec.quantized.is_empty() {
            return Err(CliError::Usage(format!(
                "--student {} is quantized; give a float package (student-f32.bertling, or the \
                 search's student-inherited.bertling)",
                path.display()
            )));
        }
        Some(StudentPlan::Given(Box::new(data)))
    } else {
        Some(StudentPlan::Etd(student_shape(&teacher, &a.shape)?, a.shape.init.clone()))
    };
    let plan = CompressPlan { student, train, kdlsq };
    let texts =
        read_texts(a.train.eval_texts.as_deref().unwrap_or(&a.corpus), 500.max(a.train.eval_size))?;
    let train_texts = a.train.eval_texts(&a.corpus)?;
    type Printer = Box<dyn FnMut(&Progress)>;
    let mut printers: std::collections::BTreeMap<String, Printer> = Default::default();
    let report = compress(
        &teacher,
        &a.teacher.display().to_string(),
        &a.corpus,
        &a.out,
        &plan,
        &texts,
        a.stsb.as_deref(),
        &a.train.files(&train_texts),
        &mut |stage, p| {
            let print = printers
                .entry(stage.to_string())
                .or_insert_with(|| Box::new(progress_printer_named(stage.to_string())));
            print(p)
        },
    )?;
    println!("{}", report.markdown());
    eprintln!("report: {}", a.out.join("report.md").display());
    Ok(())
}
