//! `cvt`: Cross-View Training of a light tagger from a teacher's WordPiece table, labelled
//! CoNLL-U sentences and unlabelled text; optionally distilled from a fine-tuned BERT tagger.

use std::path::PathBuf;

use bertling_compressor::cvt::{cvt, CvtConfig, CvtData, CvtProgress, LightShape};
use bertling_compressor::finetune::sample;
use bertling_compressor::pipeline::{RunFiles, TrainDevice};
use bertling_compressor::tagging::{read_tagged, resolve_tag_labels};
use bertling_compressor::task::TaskSpec;
use bertling_runtime::{load_model_data, write_package_file};
use clap::Args;

use crate::error::{CliError, Result};
use crate::finetune::conllu_file;

#[derive(Args)]
pub(crate) struct CvtArgs {
    /// The BERT teacher whose WordPiece table the tagger's words start from (a Hugging Face
    /// directory or package); the tagger keeps its tokenizer.
    #[arg(long)]
    teacher: PathBuf,
    /// upos or xpos: the package's tags.
    #[arg(long)]
    task: String,
    /// Also train these tagging tasks on the same encoder (multi-task CVT; their modules are
    /// dropped at export). Default: the other of upos/xpos; `none` for the task alone.
    #[arg(long, value_delimiter = ',')]
    also: Vec<String>,
    /// A treebank directory with *train.conllu and *dev.conllu (UD English EWT:
    /// ../shared/data/ud_english_ewt).
    #[arg(long)]
    data: PathBuf,
    /// Unlabelled text, one sentence per line (blank lines skipped; longer lines cut at
    /// --max-len tokens). Needed unless --no-cvt without --distill.
    #[arg(long)]
    unlabeled: Option<PathBuf>,
    /// Read at most this many unlabelled lines.
    #[arg(long)]
    unlabeled_limit: Option<usize>,
    /// With --train-limit: the training sentences left out of the sample are the unlabelled
    /// text (their words joined by spaces), instead of --unlabeled: the semi-supervised case.
    #[arg(long, requires = "train_limit", conflicts_with = "unlabeled")]
    unlabeled_rest: bool,
    /// A fine-tuned BERT tagger of --task (`bertling finetune --task upos`), same tokenizer:
    /// its per-token distributions on the unlabelled text train the package's head too.
    #[arg(long)]
    distill: Option<PathBuf>,
    /// Train on labelled sentences only (no auxiliary views): the supervised baseline.
    #[arg(long)]
    no_cvt: bool,
    /// The package to write.
    #[arg(long)]
    out: PathBuf,
    /// Width of the factorised word table.
    #[arg(long, default_value_t = LightShape::default().embedding)]
    embedding: usize,
    /// Channels of each of the two streams.
    #[arg(long, default_value_t = LightShape::default().width)]
    width: usize,
    /// Two-stream convolution blocks.
    #[arg(long, default_value_t = LightShape::default().layers)]
    layers: usize,
    /// Causal kernel of each block (tokens a stream reads, its own included).
    #[arg(long, default_value_t = LightShape::default().kernel)]
    kernel: usize,
    /// Tokens per sentence.
    #[arg(long, default_value_t = LightShape::default().max_len)]
    max_len: usize,
    /// Passes over the labelled sentences.
    #[arg(long, default_value_t = CvtConfig::default().epochs)]
    epochs: usize,
    /// Sentences per batch.
    #[arg(long, default_value_t = CvtConfig::default().batch_size)]
    batch: usize,
    #[arg(long, default_value_t = CvtConfig::default().lr)]
    lr: f64,
    #[arg(long, default_value_t = CvtConfig::default().warmup)]
    warmup: f64,
    #[arg(long, default_value_t = CvtConfig::default().weight_decay)]
    weight_decay: f32,
    #[arg(long, default_value_t = CvtConfig::default().dropout)]
    dropout: f32,
    /// Weight of the distillation loss (with --distill).
    #[arg(long, default_value_t = CvtConfig::default().distill_weight)]
    distill_weight: f32,
    #[arg(long, default_value_t = CvtConfig::default().temperature)]
    temperature: f32,
    #[arg(long, default_value_t = CvtConfig::default().seed)]
    seed: u64,
    /// Train on a seeded sample of this many labelled sentences (the semi-supervised case).
    #[arg(long)]
    train_limit: Option<usize>,
    /// Score the dev set every this many labelled steps (0: after every epoch).
    #[arg(long, default_value_t = 0)]
    eval_every: usize,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Train on cpu, cuda, cuda:N or wgpu (GPU builds only).
    #[arg(long, default_value = "cpu")]
    device: TrainDevice,
    /// Checkpoint directory (a killed run continues from it with --resume).
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    #[arg(long)]
    resume: bool,
    #[arg(long, default_value_t = CvtConfig::default().checkpoint_every)]
    checkpoint_every: usize,
    /// Append one JSON line per step and per dev evaluation to this file.
    #[arg(long)]
    log: Option<PathBuf>,
    /// Stop after this step with a checkpoint; continue later with --resume.
    #[arg(long, requires = "checkpoint")]
    stop_after: Option<usize>,
}

pub(crate) fn cvt_cmd(a: &CvtArgs) -> Result<()> {
    crate::train::training_threads(a.threads)?;
    a.device.device()?;
    let also: Vec<String> = match a.also.as_slice() {
        [] => match a.task.as_str() {
            "upos" => vec!["xpos".into()],
            "xpos" => vec!["upos".into()],
            _ => Vec::new(),
        },
        [none] if none == "none" => Vec::new(),
        list => list.to_vec(),
    };
    if also.contains(&a.task) {
        return Err(CliError::Usage(format!("--also {}: that is --task already", a.task)));
    }
    let (train_path, dev_path) = (conllu_file(&a.data, "train")?, conllu_file(&a.data, "dev")?);
    let mut tasks = Vec::new();
    for name in std::iter::once(&a.task).chain(&also) {
        let mut t = TaskSpec::tagging(name)?;
        resolve_tag_labels(&mut t, &[&train_path, &dev_path])?;
        tasks.push(t);
    }
    // The same seeded sample of sentences for every task (sampled by index, so that the rest
    // is known too).
    let limit = a.train_limit.unwrap_or(usize::MAX);
    let mut rest = Vec::new();
    let mut train = Vec::new();
    for (k, t) in tasks.iter().enumerate() {
        let all = read_tagged(t, &train_path)?;
        let n = all.len();
        let kept: Vec<(usize, _)> = sample(all.into_iter().enumerate().collect(), limit, a.seed);
        if k == 0 && a.unlabeled_rest {
            let mut keep = vec![false; n];
            kept.iter().for_each(|(i, _)| keep[*i] = true);
            let again = read_tagged(t, &train_path)?;
            rest = again.into_iter().zip(keep).filter(|(_, k)| !k).map(|(s, _)| s.words.join(" ")).collect();
        }
        train.push(kept.into_iter().map(|(_, s)| s).collect::<Vec<_>>());
    }
    let dev = read_tagged(&tasks[0], &dev_path)?;
    let cfg = CvtConfig {
        shape: LightShape { embedding: a.embedding, width: a.width, layers: a.layers, kernel: a.kernel, max_len: a.max_len },
        epochs: a.epochs,
        batch_size: a.batch,
        lr: a.lr,
        warmup: a.warmup,
        weight_decay: a.weight_decay,
        dropout: a.dropout,
        cvt: !a.no_cvt,
        distill_weight: a.distill_weight,
        temperature: a.temperature,
        seed: a.seed,
        checkpoint_every: a.checkpoint_every,
        eval_every: a.eval_every,
    };
    let unlabeled = match &a.unlabeled {
        _ if a.unlabeled_rest => {
            rest.truncate(a.unlabeled_limit.unwrap_or(usize::MAX));
            std::mem::take(&mut rest)
        }
        Some(p) => bertling_compressor::eval::read_texts(p, a.unlabeled_limit.unwrap_or(usize::MAX))?,
        None if cfg.cvt || a.distill.is_some() => {
            return Err(CliError::Usage(
                "cross-view training and --distill learn from --unlabeled FILE (one sentence per line); --no-cvt without --distill trains on the labelled sentences alone".into(),
            ))
        }
        None => Vec::new(),
    };
    let teacher = load_model_data(&a.teacher)?;
    let distill = a.distill.as_deref().map(load_model_data).transpose()?;
    let files = RunFiles {
        device: a.device,
        checkpoint: a.checkpoint.as_deref(),
        resume: a.resume,
        log: a.log.as_deref(),
        eval_texts: None,
        eval_every: a.eval_every,
        stop_after: a.stop_after,
        target_cache: None,
    };
    eprintln!(
        "cross-view training a light tagger of {} ({}; {} labelled, {} unlabelled, {} dev sentences){}",
        a.task,
        if also.is_empty() { "one task".to_string() } else { format!("with {}", also.join(", ")) },
        train[0].len(),
        if cfg.cvt || distill.is_some() { unlabeled.len() } else { 0 },
        dev.len(),
        if distill.is_some() { ", distilled from the BERT tagger" } else { "" }
    );
    let data = CvtData { tasks: &tasks, train: &train, dev: &dev, unlabeled: &unlabeled };
    let mut printer = progress_printer();
    let (out, report) = cvt(&teacher, distill.as_ref(), &data, &cfg, &files, &mut printer)?;
    let bytes = write_package_file(&out, &a.out)?;
    eprintln!(
        "wrote {} ({:.2} MB): the model of step {} of {}, dev {} {:.4}",
        a.out.display(),
        bytes as f64 / 1e6,
        report.best.step,
        report.steps,
        report.best.scores.metric_name,
        report.best.scores.metric
    );
    println!("{}", serde_json::to_string(&report).unwrap_or_default());
    Ok(())
}

/// One line per 5 % of the steps (rewritten in place on a terminal), and one per dev score.
fn progress_printer() -> impl FnMut(&CvtProgress) {
    let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
    move |p: &CvtProgress| {
        let l = &p.losses;
        let line = format!(
            "cvt step {:>6}/{} ({}) loss {:.4} (gold {:.4}, views {:.4}, distill {:.4})  {:.1} sentences/s  eta {}",
            p.step,
            p.steps,
            if p.unlabeled { "unlabelled" } else { "labelled" },
            l.total,
            l.gold,
            l.cvt,
            l.distill,
            p.sentences_per_s,
            crate::progress::duration(p.eta_s)
        );
        crate::progress::step_line(tty, &line, p.step, p.steps);
        if let Some(d) = &p.dev {
            let best = p.best.as_ref().map_or(String::new(), |b| format!(" (best {:.4} at step {})", b.scores.metric, b.step));
            let line = format!("cvt dev at step {}: {} {:.4}{best}", p.step, d.metric_name, d.metric);
            crate::progress::lasting_line(tty, &line);
        }
    }
}
