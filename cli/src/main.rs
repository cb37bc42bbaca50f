//! `bertling`: pack, inspect, embed, classify and benchmark BERT-class models.

use std::io::{BufRead, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use bertling_compressor::convert::QuantPlan;
use bertling_compressor::corpus::Augment;
use bertling_compressor::distill::{DistillConfig, LossWeights, Progress};
use bertling_compressor::etd::{extract, init_named, StudentShape};
use bertling_compressor::eval::{agreement, agreement_by_category, glue_examples, loyalty, read_texts, stsb, AgreementSet};
use bertling_compressor::lsq::StepInit;
use bertling_compressor::pipeline::{compress, distill_student, kdlsq, CompressPlan, RunFiles, TrainDevice};
use bertling_compressor::recipe::{self, KdlsqChoices};
use bertling_runtime::cpu::Team;
use bertling_runtime::gpu::{AdapterChoice, GpuContext, GpuOptions};
use bertling_runtime::profile::{latency_table, percentiles, Profiler, TableConfig};
use bertling_runtime::spec::names;
use bertling_runtime::{cosine, load_model_data, write_package_file, Backend, Input, LoadOptions, Model, ModelData, Precision};
use clap::{Args, Parser, Subcommand};

/// Errors of the command-line tool.
#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error(transparent)]
    Runtime(#[from] bertling_runtime::Error),
    #[error(transparent)]
    Compress(#[from] bertling_compressor::CompressError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Usage(String),
}

type Result<T> = std::result::Result<T, CliError>;

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> CliError {
    let what = what.into();
    move |source| CliError::Io { what, source }
}

#[derive(Parser)]
#[command(name = "bertling", version, about = "Compress BERT encoders into small low-bit students and run them anywhere.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print one JSON array (the sentence embedding) per input line.
    Embed(RunArgs),
    /// Print {"label": ..., "probs": [...]} per input line (models with a classification head).
    Classify(RunArgs),
    /// Describe a model: architecture, parameters, bytes, bits, provenance.
    Inspect {
        /// A bertling package or a Hugging Face model directory.
        path: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Write a bertling package from a Hugging Face directory or another package.
    Pack {
        /// A Hugging Face BERT directory (or a bertling package to re-encode).
        #[arg(long)]
        from: PathBuf,
        /// Weight bits: 32 or 16 for floats, 2..8 for round-to-nearest quantized codes.
        #[arg(long, default_value_t = 32)]
        bits: u8,
        /// Columns per step size (16, 32, 64 or 128); default: one step per output channel.
        #[arg(long)]
        group: Option<usize>,
        /// Bits of the embedding tables when quantizing (2..8).
        #[arg(long, default_value_t = 8)]
        embedding_bits: u8,
        /// The package file to write.
        #[arg(long)]
        out: PathBuf,
        /// Quantize the activations entering each matrix too (8 or 4 bits; 0 = float
        /// activations): the package then runs on the integer kernels. Needs --calibrate.
        #[arg(long, default_value_t = 0)]
        act_bits: u8,
        /// A text file, one sentence per line, to calibrate the activation steps on (least
        /// quantization error); weights get least-error steps too. No training.
        #[arg(long)]
        calibrate: Option<PathBuf>,
        /// Sentences of --calibrate to use.
        #[arg(long, default_value_t = 128)]
        calibration_sentences: usize,
        /// Smoothing strength α (0..1) with --act-bits: outlier activation channels move into
        /// the weights (SmoothQuant); 0 turns it off. Default: 0.5 with per-token steps, 0.7
        /// with --act-steps tensor (the closest all-MiniLM-L6-v2 packages at 8 and 4 bits,
        /// benches/quality/RESULTS.md).
        #[arg(long)]
        smooth: Option<f32>,
        /// Activation steps with --act-bits: `token` (each token's own step, max|x|/Q_P, at run
        /// time; the default) or `tensor` (one calibrated step per matrix).
        #[arg(long)]
        act_steps: Option<String>,
        /// Write the weights as they are, in the newest format version (a version-2 package
        /// gets its tokenizer deflated: 275 KB less for a WordPiece vocabulary of 30k tokens).
        #[arg(long, conflicts_with_all = ["bits", "group", "embedding_bits", "act_bits", "calibrate", "smooth", "act_steps"])]
        rewrite: bool,
    },
    /// Time the encoder on random token ids and print the median latency.
    Bench {
        #[arg(long)]
        model: PathBuf,
        #[arg(long, default_value_t = 1)]
        batch: usize,
        #[arg(long, default_value_t = 128)]
        seq: usize,
        #[arg(long)]
        threads: Option<usize>,
        #[arg(long, default_value_t = 50)]
        runs: usize,
        #[arg(long, default_value_t = 5)]
        warmup: usize,
        #[arg(long, default_value = "cpu")]
        backend: String,
        /// wgpu backend: f16 arithmetic in matrix products where the adapter has SHADER_F16.
        #[arg(long)]
        gpu_f16: bool,
        /// Print one JSON line with `median_ms`.
        #[arg(long)]
        json: bool,
    },
    /// Embed example sentences and print their similarity table and the latency.
    Demo {
        #[arg(long)]
        model: PathBuf,
        #[arg(long)]
        threads: Option<usize>,
        #[arg(long, default_value = "cpu")]
        backend: String,
    },
    /// Measure on-device latency: the per-op latency table of the search space (--out), or the
    /// per-op breakdown of one model (--model).
    Profile(ProfileArgs),
    /// Distil a smaller student from a teacher on plain text (task-agnostic).
    Distill(DistillArgs),
    /// KDLSQ: quantize a student (or the teacher) to 2..8 bits, trained by distillation.
    Quantize(QuantizeArgs),
    /// Compare a student with its teacher: embedding agreement, STS-B, classification loyalty.
    Eval(EvalArgs),
    /// The whole chain: init -> distill -> KDLSQ at each bit width -> export -> report.
    Compress(CompressArgs),
}

/// How `quantize` and `compress` quantize, besides the weight bits. Unset options take the
/// measured default recipe of each width (`bertling_compressor::recipe`, RESULTS.md).
#[derive(Args)]
struct QuantFlags {
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
    fn parse_act_steps(v: Option<&str>) -> Result<bool> {
        match v {
            None => Ok(recipe::ACT_PER_TOKEN),
            Some("token") => Ok(true),
            Some("tensor") => Ok(false),
            Some(other) => Err(CliError::Usage(format!("--act-steps {other}: use token or tensor"))),
        }
    }

    fn parse_act_bits(bits: u8) -> Result<Option<u8>> {
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
            Some(a) => return Err(CliError::Usage(format!("--smooth {a}: use a strength from 0 (off) to 1"))),
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
    fn resolve(&self, bits: u8, train: &TrainArgs, base: &DistillConfig, steps: Option<usize>) -> Result<(QuantPlan, DistillConfig)> {
        Ok(self.choices(train, steps)?.resolve(bits, &self.plan(bits)?, self.embedding_group()?, base))
    }
}

#[derive(Args)]
struct CompressArgs {
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
    #[arg(long, conflicts_with_all = ["layers", "width", "heads", "inner"])]
    teacher_only: bool,
    #[command(flatten)]
    student: StudentArgs,
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
struct TrainArgs {
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
    checkpoint: Option<PathBuf>,
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
struct DistillArgs {
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
struct StudentArgs {
    /// etd-impt, etd-rand or random.
    #[arg(long, default_value = "etd-impt")]
    init: String,
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
struct QuantizeArgs {
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

#[derive(Args)]
struct EvalArgs {
    #[arg(long)]
    teacher: PathBuf,
    #[arg(long)]
    student: PathBuf,
    /// stsb, sst2, cola, mrpc, rte or qnli (with --data).
    #[arg(long)]
    task: Option<String>,
    /// The task's GLUE directory (holding dev.tsv).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Texts for embedding agreement, one per line.
    #[arg(long)]
    texts: Option<PathBuf>,
    /// Embedding agreement per category on the built-in benchmark of what users type (short
    /// queries, single words and characters, punctuation and whitespace, numbers and code,
    /// names, other scripts, paragraphs past 256 tokens, ordinary sentences).
    #[arg(long, conflicts_with = "agreement_set")]
    agreement: bool,
    /// Embedding agreement per category on this JSON-lines file of {"category", "text"}
    /// objects instead of the built-in set.
    #[arg(long, value_name = "FILE")]
    agreement_set: Option<PathBuf>,
    /// At most this many texts or examples.
    #[arg(long, default_value_t = 2000)]
    limit: usize,
    /// Print JSON instead of a Markdown table.
    #[arg(long)]
    json: bool,
    #[arg(long)]
    threads: Option<usize>,
}

#[derive(Args)]
struct ProfileArgs {
    /// cpu, wgpu (any adapter), or auto (a hardware GPU if there is one, else the CPU).
    #[arg(long, default_value = "cpu")]
    backend: String,
    /// Write the latency table of the search space here (JSON, FORMAT.md "Latency table").
    #[arg(long, conflicts_with = "model")]
    out: Option<PathBuf>,
    /// Break down the latency of this model (package or Hugging Face directory) by op.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Model widths of the search space.
    #[arg(long, value_delimiter = ',', default_value = "128,192,256,384,512")]
    widths: Vec<usize>,
    /// Weight bits: 32 (f32), 16 (f16), 2..8 (quantized).
    #[arg(long, value_delimiter = ',', default_value = "32,8,4,2")]
    bits: Vec<u8>,
    /// Columns per step of quantized weights (16, 32, 64, 128); default per output channel.
    #[arg(long)]
    group: Option<usize>,
    /// Sequence lengths.
    #[arg(long, value_delimiter = ',', default_value = "128")]
    seq: Vec<usize>,
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Timed runs per op (after one warm-up).
    #[arg(long, default_value_t = 10)]
    runs: usize,
    #[arg(long)]
    threads: Option<usize>,
    /// With --model: print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct RunArgs {
    /// A bertling package or a Hugging Face model directory.
    #[arg(long)]
    model: PathBuf,
    /// cpu, wgpu (any adapter), or auto (a hardware GPU if there is one, else the CPU).
    #[arg(long, default_value = "cpu")]
    backend: String,
    /// Read inputs from this file, one per line (default: standard input).
    #[arg(long)]
    input: Option<PathBuf>,
    #[arg(long)]
    threads: Option<usize>,
    /// Lines per forward pass.
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// wgpu backend: f16 arithmetic in matrix products where the adapter has SHADER_F16
    /// (faster, about 1e-3 relative error).
    #[arg(long)]
    gpu_f16: bool,
}

fn load(model: &PathBuf, backend: &str, threads: Option<usize>) -> Result<Model> {
    load_with(model, backend, threads, false)
}

fn load_with(model: &PathBuf, backend: &str, threads: Option<usize>, gpu_f16: bool) -> Result<Model> {
    let backend: Backend = backend.parse()?;
    let gpu = GpuOptions { f16: gpu_f16, ..GpuOptions::default() };
    Ok(Model::load(model, &LoadOptions { backend, threads, gpu })?)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::Compress(e @ bertling_compressor::CompressError::Stopped { .. })) => {
            eprintln!("{e}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                eprintln!("  caused by: {s}");
                source = s.source();
            }
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> Result<()> {
    match command {
        Command::Embed(a) => stream(&a, |model, lines, out| {
            for v in model.embed(lines)? {
                serde_json::to_writer(&mut *out, &v).map_err(|e| CliError::Usage(e.to_string()))?;
                writeln!(out).map_err(io("writing output"))?;
            }
            Ok(())
        }),
        Command::Classify(a) => stream(&a, |model, lines, out| {
            for c in model.classify(lines)? {
                let line = serde_json::json!({"label": c.label, "probs": c.probs});
                writeln!(out, "{line}").map_err(io("writing output"))?;
            }
            Ok(())
        }),
        Command::Inspect { path, json } => inspect(&path, json),
        Command::Pack { rewrite: true, from, out, .. } => {
            let bytes = write_package_file(&load_model_data(&from)?, &out)?;
            eprintln!("wrote {} ({:.3} MB, format version {})", out.display(), bytes as f64 / 1e6, bertling_runtime::spec::FORMAT_VERSION);
            Ok(())
        }
        Command::Pack { from, bits, group, embedding_bits, out, act_bits, calibrate, calibration_sentences, smooth, act_steps, rewrite: false } => {
            match act_bits {
                0 if calibrate.is_none() && act_steps.is_none() && smooth.is_none() => pack(&from, bits, group, embedding_bits, &out),
                0 => Err(CliError::Usage("--calibrate, --act-steps and --smooth are for quantized activations: add --act-bits 8 (or 4)".into())),
                _ => {
                    let Some(file) = calibrate else {
                        return Err(CliError::Usage("--act-bits needs --calibrate FILE: a few sentences, one per line, to set the activation steps".into()));
                    };
                    let act_per_token = QuantFlags::parse_act_steps(act_steps.as_deref())?;
                    let plan = QuantPlan {
                        bits,
                        group,
                        embedding_group: group,
                        embedding_bits,
                        act_bits: QuantFlags::parse_act_bits(act_bits)?,
                        act_per_token,
                        weight_init: StepInit::Mse,
                        act_init: StepInit::Mse,
                        smooth: Some(smooth.unwrap_or(recipe::smooth(act_per_token))).filter(|a| *a > 0.0),
                    };
                    pack_calibrated(&from, &plan, &file, calibration_sentences, &out)
                }
            }
        }
        Command::Bench { model, batch, seq, threads, runs, warmup, backend, gpu_f16, json } => {
            let model = load_with(&model, &backend, threads, gpu_f16)?;
            let stats = bench(&model, batch, seq, runs, warmup)?;
            if json {
                let line = serde_json::json!({"batch": batch, "seq": seq, "threads": model.threads(), "device": model.device(), "median_ms": stats.0, "min_ms": stats.1, "runs": runs});
                println!("{line}");
            } else {
                println!("batch {batch} x seq {seq} on {}: median {:.3} ms (min {:.3} ms, {runs} runs)", model.device(), stats.0, stats.1);
            }
            Ok(())
        }
        Command::Demo { model, threads, backend } => demo(&model, threads, &backend),
        Command::Profile(a) => profile(&a),
        Command::Distill(a) => distill_cmd(&a),
        Command::Quantize(a) => quantize_cmd(&a),
        Command::Eval(a) => eval_cmd(&a),
        Command::Compress(a) => compress_cmd(&a),
    }
}

/// Reads lines (an empty line is an empty input) and processes them in batches.
fn stream(a: &RunArgs, f: impl Fn(&Model, &[&str], &mut dyn Write) -> Result<()>) -> Result<()> {
    if a.batch == 0 {
        return Err(CliError::Usage("--batch must be at least 1".into()));
    }
    let model = load_with(&a.model, &a.backend, a.threads, a.gpu_f16)?;
    let reader: Box<dyn BufRead> = match &a.input {
        Some(p) => Box::new(std::io::BufReader::new(std::fs::File::open(p).map_err(io(format!("cannot open {}", p.display())))?)),
        None => Box::new(std::io::stdin().lock()),
    };
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut lines = Vec::with_capacity(a.batch);
    let flush = |lines: &mut Vec<String>, out: &mut BufWriter<std::io::StdoutLock>| -> Result<()> {
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        f(&model, &refs, out)?;
        out.flush().map_err(io("writing output"))?;
        lines.clear();
        Ok(())
    };
    for line in reader.lines() {
        let line = line.map_err(io("reading input (is it UTF-8 text?)"))?;
        lines.push(line.strip_suffix('\r').map(str::to_string).unwrap_or(line));
        if lines.len() == a.batch {
            flush(&mut lines, &mut out)?;
        }
    }
    if !lines.is_empty() {
        flush(&mut lines, &mut out)?;
    }
    Ok(())
}

fn inspect(path: &std::path::Path, json: bool) -> Result<()> {
    let data = load_model_data(path)?;
    let model = Model::from_data(data, &LoadOptions { threads: Some(1), ..Default::default() })?;
    let info = model.info();
    if json {
        println!("{}", serde_json::to_string_pretty(info).map_err(|e| CliError::Usage(e.to_string()))?);
        return Ok(());
    }
    match path.is_file() {
        true => println!("model:        {} (package format version {})", path.display(), info.spec.format_version),
        false => println!("model:        {}", path.display()),
    }
    println!("parameters:   {} ({:.1} M)", info.parameters, info.parameters as f64 / 1e6);
    println!("in memory:    {} bytes of weights ({:.1} MB)", info.bytes, info.bytes as f64 / 1e6);
    println!("matrix bits:  {:?}   embedding bits: {:?}", info.matrix_bits, info.embedding_bits);
    let e = &info.spec.embeddings;
    println!("embeddings:   vocab {} x width {}, {} positions, {} segment types", e.vocab_size, e.width, e.max_positions, e.type_vocab_size);
    println!("blocks:       {}", info.blocks.len());
    for (i, b) in info.blocks.iter().enumerate() {
        let q = info
            .spec
            .quantized
            .iter()
            .filter(|(k, _)| names::block(i).owns(k))
            .map(|(_, q)| {
                let w = format!("{}-bit{}", q.bits, q.group.map(|g| format!("/g{g}")).unwrap_or_default());
                match q.act_bits {
                    None => w,
                    Some(a) => {
                        let steps = if q.act_per_token { "per token" } else { "per tensor" };
                        format!("{w}, A{a} {steps}{}", if q.act_smooth { ", smoothed" } else { "" })
                    }
                }
            })
            .next()
            .unwrap_or_else(|| "float".into());
        println!("  {i:>3} {:<13} {}  [{q}]", b.kind(), serde_json::to_string(b).unwrap_or_default());
    }
    println!("pooling:      {:?}{}", info.spec.pooling.mode, if info.spec.pooling.normalize { ", L2-normalised" } else { "" });
    println!("max tokens:   {}", info.max_seq_len);
    match &info.labels {
        Some(l) => println!("head:         classification, labels {l:?}"),
        None => println!("head:         none (sentence embeddings)"),
    }
    let p = &info.spec.provenance;
    println!("provenance:   teacher sha256 {}, source {}, recipe {}", p.teacher_sha256, p.source, p.recipe);
    if !p.metrics.is_null() {
        println!("metrics:      {}", p.metrics);
    }
    Ok(())
}

fn pack(from: &std::path::Path, bits: u8, group: Option<usize>, embedding_bits: u8, out: &std::path::Path) -> Result<()> {
    let precision = match bits {
        32 => Precision::F32,
        16 => Precision::F16,
        2..=8 => Precision::Quantized { bits, group, embedding_bits },
        other => return Err(CliError::Usage(format!("--bits {other} is not supported: use 32, 16, or 2 to 8"))),
    };
    if group.is_some() && bits > 8 {
        return Err(CliError::Usage("--group applies to quantized packages (--bits 2..8)".into()));
    }
    let data = load_model_data(from)?;
    let mut packed = data.convert(precision)?;
    packed.spec.provenance.recipe = serde_json::json!({
        "method": if bits > 8 { "float" } else { "rtn" },
        "bits": bits,
        "group": group,
        "embedding_bits": if bits > 8 { None } else { Some(embedding_bits) },
        "from": data.spec.provenance.recipe,
    });
    packed.spec.provenance.created_by = format!("bertling {}", env!("CARGO_PKG_VERSION"));
    let bytes = write_package_file(&packed, out)?;
    eprintln!("wrote {} ({:.1} MB, {} parameters, {}-bit matrices)", out.display(), bytes as f64 / 1e6, packed.parameters(), bits);
    Ok(())
}

/// `pack --act-bits`: calibrated round-to-nearest weights and activations, no training; prints
/// the embedding cosine to the source model on the calibration sentences.
fn pack_calibrated(from: &std::path::Path, plan: &QuantPlan, calibration: &std::path::Path, sentences: usize, out: &std::path::Path) -> Result<()> {
    if !(2..=8).contains(&plan.bits) {
        return Err(CliError::Usage(format!("--bits {} with --act-bits: quantized activations need quantized weights (--bits 2..8)", plan.bits)));
    }
    let data = load_model_data(from)?;
    let t = Instant::now();
    let packed = bertling_compressor::pipeline::calibrated_rtn(&data, plan, calibration, sentences)?;
    let bytes = write_package_file(&packed, out)?;
    let texts = read_texts(calibration, sentences)?;
    let opts = LoadOptions::default();
    let (source, student) = (Model::from_data(data, &opts)?, Model::from_data(packed, &opts)?);
    let agree = agreement(&source, &student, &texts)?;
    eprintln!(
        "wrote {} ({:.1} MB, W{}A{} in {:.1} s); embedding cosine to {} on {} calibration sentences: mean {:.4}, 5th percentile {:.4}",
        out.display(),
        bytes as f64 / 1e6,
        plan.bits,
        plan.act_bits.unwrap_or(32),
        t.elapsed().as_secs_f64(),
        from.display(),
        agree.texts,
        agree.mean,
        agree.p5
    );
    Ok(())
}

/// Median and minimum latency in milliseconds of `embed` on random ids of the given shape.
fn bench(model: &Model, batch: usize, seq: usize, runs: usize, warmup: usize) -> Result<(f64, f64)> {
    let info = model.info();
    if batch == 0 || runs == 0 {
        return Err(CliError::Usage("--batch and --runs must be at least 1".into()));
    }
    if seq < 2 || seq > info.max_seq_len {
        return Err(CliError::Usage(format!("--seq must be between 2 and the model's maximum of {}", info.max_seq_len)));
    }
    let inputs = Input::synthetic(batch, seq, info.spec.embeddings.vocab_size);
    for _ in 0..warmup {
        model.embed_inputs(&inputs)?;
    }
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        std::hint::black_box(model.embed_inputs(&inputs)?);
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    Ok((times[times.len() / 2], times[0]))
}

const DEMO_SENTENCES: [&str; 6] = [
    "A man is playing a guitar.",
    "Someone is strumming an acoustic guitar.",
    "The stock market fell sharply today.",
    "Shares dropped steeply in this morning's trading.",
    "A cat sleeps on the sofa.",
    "Ein Mann spielt Gitarre.",
];

fn demo(path: &PathBuf, threads: Option<usize>, backend: &str) -> Result<()> {
    let t0 = Instant::now();
    let model = load(path, backend, threads)?;
    let load_ms = t0.elapsed().as_secs_f64() * 1e3;
    let info = model.info();
    println!(
        "model {} : {:.1} M parameters, {:.1} MB of weights in memory, matrix bits {:?}, loaded in {load_ms:.0} ms",
        path.display(),
        info.parameters as f64 / 1e6,
        info.bytes as f64 / 1e6,
        info.matrix_bits
    );
    let emb = model.embed(&DEMO_SENTENCES)?;
    println!("\ncosine similarity:");
    print!("{:>4}", "");
    for j in 0..DEMO_SENTENCES.len() {
        print!("{j:>7}");
    }
    println!();
    for (i, a) in emb.iter().enumerate() {
        print!("{i:>4}");
        for b in &emb {
            print!("{:>7.3}", cosine(a, b));
        }
        println!("   {}", DEMO_SENTENCES[i]);
    }
    let (one, _) = bench(&model, 1, 16.min(info.max_seq_len), 20, 3)?;
    let (b8, _) = bench(&model, 8, 128.min(info.max_seq_len), 10, 2)?;
    println!("\nlatency on {} (median): batch 1 x 16 tokens {one:.2} ms; batch 8 x 128 tokens {b8:.1} ms", model.device());
    Ok(())
}

fn profiler(backend: &str, threads: Option<usize>) -> Result<Profiler> {
    let cpu = || -> Result<Profiler> {
        let n = threads.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
        Ok(Profiler::Cpu { team: Team::new(n).map_err(io("starting worker threads"))? })
    };
    let gpu = |ctx: GpuContext| Profiler::Gpu { ctx: std::sync::Arc::new(ctx), options: Default::default() };
    match backend.parse::<Backend>()? {
        Backend::Cpu => cpu(),
        Backend::Wgpu => Ok(gpu(GpuContext::new(AdapterChoice::Any)?)),
        // As `Model::load`: a hardware GPU if there is one, else the CPU (never a software adapter).
        Backend::Auto => GpuContext::new(AdapterChoice::HardwareOnly).map(gpu).or_else(|_| cpu()),
    }
}

fn profile(a: &ProfileArgs) -> Result<()> {
    if a.runs == 0 || a.batch == 0 {
        return Err(CliError::Usage("--runs and --batch must be at least 1".into()));
    }
    let p = profiler(&a.backend, a.threads)?;
    if let Some(path) = &a.model {
        let data = load_model_data(path)?;
        let seq = a.seq.first().copied().unwrap_or(128);
        if seq < 2 || seq > data.spec.max_seq_len {
            return Err(CliError::Usage(format!("--seq must be between 2 and the model's maximum of {}", data.spec.max_seq_len)));
        }
        let inputs = Input::synthetic(a.batch, seq, data.spec.embeddings.vocab_size);
        let ops = p.time_ops(&data, &inputs, a.runs)?;
        let total: f64 = ops.iter().map(|(_, _, t)| percentiles(t).0).sum();
        if a.json {
            for (label, kernel, times) in &ops {
                let (median, p10, p90) = percentiles(times);
                println!("{}", serde_json::json!({"op": label, "kernel": kernel, "median_ms": median, "p10_ms": p10, "p90_ms": p90}));
            }
            return Ok(());
        }
        println!("{} on {}, batch {} x seq {seq}, {} runs (median per op)", path.display(), p.backend(), a.batch, a.runs);
        println!("{:<28} {:<34} {:>10} {:>7}", "op", "kernel", "ms", "share");
        for (label, kernel, times) in &ops {
            let m = percentiles(times).0;
            println!("{label:<28} {kernel:<34} {m:>10.4} {:>6.1}%", 100.0 * m / total.max(1e-12));
        }
        println!("{:<28} {:<34} {total:>10.4}", "total", "");
        return Ok(());
    }
    let Some(out) = &a.out else {
        return Err(CliError::Usage("give --out FILE for a latency table, or --model PATH for a breakdown".into()));
    };
    let cfg = TableConfig { widths: a.widths.clone(), bits: a.bits.clone(), group: a.group, seqs: a.seq.clone(), batch: a.batch, runs: a.runs };
    let started = Instant::now();
    let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let table = latency_table(&p, &cfg, |done, total, key| {
        let elapsed = started.elapsed().as_secs_f64();
        let eta = if done > 0 { elapsed / done as f64 * (total - done) as f64 } else { 0.0 };
        let line = format!("[{done:>4}/{total}] {key:<44} elapsed {elapsed:>5.0}s  eta {eta:>5.0}s");
        if tty {
            eprint!("\r\x1b[2K{line}");
            if done == total {
                eprintln!();
            }
        } else if done == total || done % (total / 10).max(1) == 0 {
            eprintln!("{line}");
        }
    })?;
    let text = serde_json::to_string_pretty(&table).map_err(|e| CliError::Usage(e.to_string()))?;
    let tmp = out.with_extension("json.partial");
    std::fs::write(&tmp, text).map_err(io(format!("writing {}", tmp.display())))?;
    std::fs::rename(&tmp, out).map_err(io(format!("writing {}", out.display())))?;
    eprintln!("wrote {} ({} ops, {} on {})", out.display(), table.entries.len(), table.backend, table.device);
    Ok(())
}

impl TrainArgs {
    /// The settings of a run whose unset steps, learning rate, warm-up and sentence weight come
    /// from `recipe` (a KDLSQ run replaces them through [`QuantFlags::resolve`]).
    fn config(&self, recipe: DistillConfig) -> Result<DistillConfig> {
        if let Some(n) = self.threads {
            // Training runs on rayon's global pool; it can be sized once per process.
            rayon::ThreadPoolBuilder::new().num_threads(n).build_global().map_err(|e| CliError::Usage(format!("--threads: {e}")))?;
        }
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
            weights: LossWeights { sentence: self.sentence_weight.unwrap_or(recipe.weights.sentence), ..recipe.weights },
            augment: {
                let a = Augment { spans: self.spans, noise: self.noise };
                a.validate()?;
                a
            },
        })
    }

    /// The texts evaluated during training.
    fn eval_texts(&self, corpus: &std::path::Path) -> Result<Vec<String>> {
        if self.eval_size == 0 {
            return Err(CliError::Usage("--eval-size must be at least 1".into()));
        }
        Ok(read_texts(self.eval_texts.as_deref().unwrap_or(corpus), self.eval_size)?)
    }

    fn files<'a>(&'a self, eval_texts: &'a [String]) -> RunFiles<'a> {
        RunFiles {
            device: self.device,
            checkpoint: self.checkpoint.as_deref(),
            resume: self.resume,
            log: self.log.as_deref(),
            eval_texts: Some(eval_texts),
            eval_every: self.eval_every,
            stop_after: self.stop_after,
        }
    }

    /// --stop-after only makes sense with a checkpoint to continue from.
    fn check_stop(&self) -> Result<()> {
        if self.stop_after.is_some() && self.checkpoint.is_none() {
            return Err(CliError::Usage("--stop-after needs --checkpoint DIR to save the run in".into()));
        }
        Ok(())
    }
}

/// Seconds as `1h02m`, `3m05s` or `42s`.
fn duration(s: f64) -> String {
    let s = s.max(0.0).round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

/// A one-line progress report on stderr (rewritten in place on a terminal, every 5 % otherwise).
fn progress_printer(what: &'static str) -> impl FnMut(&Progress) {
    progress_printer_named(what.to_string())
}

fn progress_printer_named(what: String) -> impl FnMut(&Progress) {
    let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
    move |p: &Progress| {
        let filled = (p.step * 20).checked_div(p.steps).unwrap_or(20).min(20);
        let line = format!(
            "{what} [{}{}] {:>5}/{} loss {:.4} (hidden {:.4}, attention {:.4}, embedding {:.4}, logits {:.4}, sentence {:.4})  {:.0} tok/s  lr {:.2e}  eta {}",
            "#".repeat(filled),
            "-".repeat(20 - filled),
            p.step,
            p.steps,
            p.losses.total,
            p.losses.hidden,
            p.losses.attention,
            p.losses.embedding,
            p.losses.logits,
            p.losses.sentence,
            p.tokens_per_s,
            p.lr,
            duration(p.eta_s)
        );
        if tty {
            eprint!("\r\x1b[2K{line}");
            if p.step == p.steps {
                eprintln!();
            }
        } else if p.step == p.steps || p.step.is_multiple_of((p.steps / 20).max(1)) {
            eprintln!("{line}");
        }
        if let Some(e) = &p.eval {
            let cos = e.cosine_mean.zip(e.cosine_p5).map(|(m, p5)| format!(", cosine to teacher {m:.4} (p5 {p5:.4})")).unwrap_or_default();
            let line = format!("{what} eval at step {}: loss {:.4} over {} texts{cos}", p.step, e.loss.total, e.texts);
            if tty {
                eprint!("\r\x1b[2K{line}\n");
            } else {
                eprintln!("{line}");
            }
        }
    }
}

/// The student shape from the flags, the rest from the teacher.
fn student_shape(teacher: &ModelData, a: &StudentArgs) -> Result<StudentShape> {
    Ok(StudentShape::from_teacher(teacher, a.layers, a.width, a.heads, a.inner)?)
}

fn distill_cmd(a: &DistillArgs) -> Result<()> {
    a.train.check_stop()?;
    let cfg = a.train.config(recipe::distill())?;
    let teacher = bertling_runtime::load_hf_dir(&a.teacher)?;
    let shape = student_shape(&teacher, &a.student)?;
    let init = init_named(&a.student.init, &teacher, &a.corpus, cfg.max_len)?;
    let student = extract(&teacher, &shape, &init, cfg.seed)?;
    let texts = a.train.eval_texts(&a.corpus)?;
    let out = distill_student(&teacher, &student, &a.corpus, &cfg, &a.train.files(&texts), &mut progress_printer("distill"))?;
    let bytes = write_package_file(&out, &a.out)?;
    eprintln!("wrote {} ({:.1} MB, {:.1} M parameters)", a.out.display(), bytes as f64 / 1e6, out.parameters() as f64 / 1e6);
    Ok(())
}

fn quantize_cmd(a: &QuantizeArgs) -> Result<()> {
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
        other => return Err(CliError::Usage(format!("--reference {other}: use student or teacher"))),
    };
    let out = kdlsq(reference, &student, &plan, &a.corpus, &cfg, &a.train.files(&texts), &mut progress_printer("kdlsq"))?;
    let bytes = write_package_file(&out, &a.out)?;
    eprintln!("wrote {} ({:.1} MB, {}-bit)", a.out.display(), bytes as f64 / 1e6, a.bits);
    Ok(())
}

fn eval_cmd(a: &EvalArgs) -> Result<()> {
    let opts = LoadOptions { threads: a.threads, ..Default::default() };
    let teacher = Model::load(&a.teacher, &opts)?;
    let student = Model::load(&a.student, &opts)?;
    let mut report = serde_json::Map::new();
    let mut rows: Vec<(String, String, String)> = Vec::new();
    if let Some(texts) = &a.texts {
        let t = read_texts(texts, a.limit)?;
        let ag = agreement(&teacher, &student, &t)?;
        rows.push(("embedding cosine to teacher (mean)".into(), "1".into(), format!("{:.4}", ag.mean)));
        rows.push(("embedding cosine to teacher (5th pct)".into(), "1".into(), format!("{:.4}", ag.p5)));
        report.insert("agreement".into(), serde_json::to_value(ag).unwrap_or_default());
    }
    let set = match (&a.agreement_set, a.agreement) {
        (Some(path), _) => Some(AgreementSet::read(path)?),
        (None, true) => Some(AgreementSet::builtin()),
        (None, false) => None,
    };
    if let Some(set) = set {
        let by = agreement_by_category(&teacher, &student, &set)?;
        for c in &by {
            let g = &c.agreement;
            let what = format!("cosine to teacher, {} ({} inputs): mean / p5 / min", c.category, g.texts);
            rows.push((what, "1".into(), format!("{:.4} / {:.4} / {:.4}", g.mean, g.p5, g.min)));
        }
        report.insert("agreement_by_category".into(), serde_json::to_value(&by).unwrap_or_default());
    }
    match (a.task.as_deref(), &a.data) {
        (None, None) => {}
        (Some(_), None) | (None, Some(_)) => return Err(CliError::Usage("--task and --data go together".into())),
        (Some("stsb"), Some(dir)) => {
            let (ts, ss) = (stsb(&teacher, dir)?, stsb(&student, dir)?);
            rows.push(("STS-B dev Spearman".into(), format!("{ts:.4}"), format!("{ss:.4}")));
            report.insert("stsb".into(), serde_json::json!({"teacher": ts, "student": ss}));
        }
        (Some(task), Some(dir)) => {
            let mut ex = glue_examples(task, dir)?;
            ex.truncate(a.limit);
            let l = loyalty(&teacher, &student, &ex)?;
            rows.push((format!("{task} accuracy"), format!("{:.4}", l.teacher_accuracy), format!("{:.4}", l.student_accuracy)));
            rows.push(("label loyalty".into(), "1".into(), format!("{:.4}", l.label_loyalty)));
            rows.push(("probability loyalty".into(), "1".into(), format!("{:.4}", l.probability_loyalty)));
            report.insert(task.to_string(), serde_json::to_value(l).unwrap_or_default());
        }
    }
    if rows.is_empty() {
        return Err(CliError::Usage("nothing to evaluate: give --agreement, --agreement-set FILE, --texts FILE and/or --task T --data DIR".into()));
    }
    let (ti, si) = (teacher.info(), student.info());
    report.insert("teacher".into(), serde_json::json!({"path": a.teacher, "parameters": ti.parameters, "bytes": ti.bytes}));
    report.insert("student".into(), serde_json::json!({"path": a.student, "parameters": si.parameters, "bytes": si.bytes, "matrix_bits": si.matrix_bits}));
    if a.json {
        println!("{}", serde_json::Value::Object(report));
    } else {
        println!("| metric | teacher | student |\n|---|---|---|");
        println!("| size (MB) | {:.1} | {:.1} |", ti.bytes as f64 / 1e6, si.bytes as f64 / 1e6);
        for (m, t, s) in rows {
            println!("| {m} | {t} | {s} |");
        }
    }
    Ok(())
}

fn compress_cmd(a: &CompressArgs) -> Result<()> {
    let train = a.train.config(recipe::distill())?;
    if a.train.checkpoint.is_some() {
        return Err(CliError::Usage("compress keeps its checkpoints under --out; drop --checkpoint".into()));
    }
    // --steps sets every stage unless --quant-steps sets the KDLSQ ones.
    let quant_steps = a.quant_steps.or(a.train.steps);
    let kdlsq = a.bits.iter().map(|&b| a.quant.resolve(b, &a.train, &train, quant_steps)).collect::<Result<Vec<_>>>()?;
    let teacher = bertling_runtime::load_hf_dir(&a.teacher)?;
    let student = if a.teacher_only { None } else { Some((student_shape(&teacher, &a.student)?, a.student.init.clone())) };
    let plan = CompressPlan { student, train, kdlsq };
    let texts = read_texts(a.train.eval_texts.as_deref().unwrap_or(&a.corpus), 500.max(a.train.eval_size))?;
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
            let print = printers.entry(stage.to_string()).or_insert_with(|| Box::new(progress_printer_named(stage.to_string())));
            print(p)
        },
    )?;
    println!("{}", report.markdown());
    eprintln!("report: {}", a.out.join("report.md").display());
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations_read_as_hours_minutes_seconds() {
        assert_eq!(super::duration(-3.0), "0s");
        assert_eq!(super::duration(59.4), "59s");
        assert_eq!(super::duration(59.6), "1m00s");
        assert_eq!(super::duration(185.0), "3m05s");
        assert_eq!(super::duration(3720.0), "1h02m");
        assert_eq!(super::duration(90_000.0), "25h00m");
    }
}
