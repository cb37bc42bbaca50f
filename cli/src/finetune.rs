//! `finetune`: train any model (teacher, student, quantized student) on a labelled task or as a
//! tagger (`--task upos|xpos`), with task distillation from a fine-tuned teacher; `prune`: the pruning baselines to fine-tune.

use std::path::{Path, PathBuf};

use bertling_compressor::etd::{extract, Init, StudentShape};
use bertling_compressor::finetune::{
    finetune_model, finetune_tagger, sample, FinetuneConfig, FinetuneProgress, FinetuneReport,
    Replacing, TaskWeights,
};
use bertling_compressor::pipeline::{RunFiles, TrainDevice};
use bertling_compressor::prune;
use bertling_compressor::tagging::{read_tagged, resolve_tag_labels};
use bertling_compressor::task::{Column, DataFormat, Labels, TaskSpec};
use bertling_runtime::{load_model_data, write_package_file, ModelData};
use clap::Args;

use crate::error::{io, CliError, Result};

#[derive(Args)]
pub(crate) struct FinetuneArgs {
    /// The model: a package (float or quantized; a quantized one stays quantized, its steps
    /// trained on) or a Hugging Face directory.
    #[arg(long)]
    model: PathBuf,
    /// sst2, cola, mrpc, stsb, rte or qnli (GLUE's train.tsv/dev.tsv layouts), or upos or
    /// xpos (a part-of-speech tagger: a token head, trained on CoNLL-U). Leave it out and give
    /// --text-columns and --label-column for your own TSV files.
    #[arg(long)]
    task: Option<String>,
    /// Directory holding train.tsv and dev.tsv, or for upos/xpos a treebank's *train.conllu
    /// and *dev.conllu (UD English EWT: ../shared/data/ud_english_ewt).
    #[arg(long)]
    data: PathBuf,
    /// The fine-tuned package to write.
    #[arg(long)]
    out: PathBuf,
    /// A fine-tuned teacher (package or directory, with a head for the same labels; made with
    /// this command): adds distillation of its logits (task distillation).
    #[arg(long)]
    teacher: Option<PathBuf>,
    /// Your own tagging data: `conll`, two-column files (the word first, its tag last; BIO or
    /// BIOES entity tags, scored by entity-level F1) in --data as train.conll and dev.conll (or
    /// train.txt and dev.txt). The tags are those the files hold.
    #[arg(long, value_parser = ["conll"], conflicts_with = "task")]
    format: Option<String>,
    /// Your own TSV: the text's column, then the second text's for pairs, by index from 0 or by
    /// header name (e.g. `review` or `0,1`).
    #[arg(long, value_delimiter = ',', conflicts_with = "task")]
    text_columns: Vec<String>,
    /// Your own TSV: the label's (or score's) column, by index or header name.
    #[arg(long, conflicts_with = "task")]
    label_column: Option<String>,
    /// Your own TSV: class names in logit order (cells hold a name, or its index where the names
    /// are not numbers). Default: the distinct values of train.tsv's label column, sorted.
    #[arg(long, value_delimiter = ',', conflicts_with_all = ["task", "regression"])]
    labels: Vec<String>,
    /// Your own TSV: the label column holds scores; train a one-output regression head.
    #[arg(long, conflicts_with = "task")]
    regression: bool,
    /// Your own TSV: its first line names the columns.
    #[arg(long, conflicts_with = "task")]
    header: bool,
    #[arg(long, default_value_t = FinetuneConfig::default().epochs)]
    epochs: usize,
    /// Examples per step.
    #[arg(long, default_value_t = FinetuneConfig::default().batch_size)]
    batch: usize,
    /// Peak learning rate.
    #[arg(long, default_value_t = FinetuneConfig::default().lr)]
    lr: f64,
    /// Warm-up, as a fraction of all steps (then linear decay to 0).
    #[arg(long, default_value_t = FinetuneConfig::default().warmup)]
    warmup: f64,
    #[arg(long, default_value_t = FinetuneConfig::default().weight_decay)]
    weight_decay: f32,
    /// Tokens per example (pairs are cut longest first).
    #[arg(long, default_value_t = FinetuneConfig::default().max_len)]
    max_len: usize,
    #[arg(long, default_value_t = FinetuneConfig::default().seed)]
    seed: u64,
    /// Train on a seeded sample of this many training examples.
    #[arg(long)]
    train_limit: Option<usize>,
    /// Score only the first this many dev examples.
    #[arg(long)]
    dev_limit: Option<usize>,
    /// Score the dev set every this many steps (0: after every epoch); the package is the model
    /// of the best dev score.
    #[arg(long, default_value_t = 0)]
    eval_every: usize,
    /// Weight of the gold labels' loss (with --teacher, 0 trains on the teacher alone).
    #[arg(long, default_value_t = TaskWeights::default().gold)]
    gold_weight: f32,
    /// Weight of the teacher's logits (with --teacher).
    #[arg(long, default_value_t = TaskWeights::default().logits)]
    logit_weight: f32,
    /// Temperature of the logit distillation.
    #[arg(long, default_value_t = TaskWeights::default().temperature)]
    temperature: f32,
    /// Weight of the teacher's hidden states (with --teacher; layers mapped uniformly).
    #[arg(long, default_value_t = TaskWeights::default().hidden)]
    hidden_weight: f32,
    /// Weight of the teacher's attention distributions (with --teacher).
    #[arg(long, default_value_t = TaskWeights::default().attention)]
    attention_weight: f32,
    /// Worker threads for training (default: all cores).
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
    #[arg(long, default_value_t = FinetuneConfig::default().checkpoint_every)]
    checkpoint_every: usize,
    /// Append one JSON line per step and per dev evaluation to this file.
    #[arg(long)]
    log: Option<PathBuf>,
    /// Stop after this step with a checkpoint; continue later with --resume.
    #[arg(long, requires = "checkpoint")]
    stop_after: Option<usize>,
    /// Weights that are zero stay zero. Default: on for packages of `bertling prune --method
    /// magnitude`, off otherwise.
    #[arg(long)]
    keep_zeros: bool,
    /// A new head's classifier is first fitted on the frozen model's features (the first 4,096
    /// training examples) for this many full-batch steps, so that small data sets learn within
    /// the first epoch (RESULTS.md, "A new head on small data"); 0: a random head.
    #[arg(long, default_value_t = FinetuneConfig::default().head_probe)]
    head_probe: usize,
    /// BERT-of-Theseus: a student of this many layers, cut from --model (a fine-tuned model:
    /// the layers of every group of L/N become one, initialised from the group's last), trained
    /// by progressive module replacing with --model's layers as the predecessors, on the gold
    /// labels (no logit distillation, as in the paper).
    #[arg(long, conflicts_with = "teacher")]
    theseus: Option<usize>,
    /// With --theseus: the replacement probability at the first step.
    #[arg(long, default_value_t = Replacing::default().base_rate, requires = "theseus")]
    replace_rate: f32,
    /// With --theseus: the fraction of the steps at which every module is replaced (the rest
    /// trains the student alone).
    #[arg(long, default_value_t = Replacing::default().full_at, requires = "theseus")]
    replace_full_at: f32,
}

impl FinetuneArgs {
    fn task(&self) -> Result<TaskSpec> {
        if self.format.is_some() {
            return Ok(TaskSpec::conll());
        }
        if let Some(t) = &self.task {
            if TAGGING_TASKS.contains(&t.as_str()) {
                return Ok(TaskSpec::tagging(t)?);
            }
            return Ok(TaskSpec::glue(t)?);
        }
        let (Some(text), Some(label)) = (self.text_columns.first(), &self.label_column) else {
            return Err(CliError::Usage(
                "give --task (sst2, cola, mrpc, stsb, rte, qnli), or --text-columns and \
                 --label-column for your own TSV"
                    .into(),
            ));
        };
        if self.text_columns.len() > 2 {
            return Err(CliError::Usage("--text-columns: one column, or two for pairs".into()));
        }
        let parse = |s: &String| s.parse::<Column>().unwrap_or(Column::Index(0));
        Ok(TaskSpec {
            name: "custom".into(),
            text: parse(text),
            text_pair: self.text_columns.get(1).map(parse),
            label: parse(label),
            header: self.header,
            labels: match (self.regression, self.labels.is_empty()) {
                (true, _) => Labels::Regression,
                (false, true) => Labels::FromData,
                (false, false) => Labels::Classes(self.labels.clone()),
            },
            format: bertling_compressor::task::DataFormat::Tsv,
        })
    }

    fn config(&self) -> Result<FinetuneConfig> {
        if self.epochs == 0 || self.batch == 0 {
            return Err(CliError::Usage("--epochs and --batch must be at least 1".into()));
        }
        if !(0.0..1.0).contains(&self.warmup) {
            return Err(CliError::Usage("--warmup is a fraction of the steps, from 0 to 1".into()));
        }
        if self.temperature <= 0.0 {
            return Err(CliError::Usage("--temperature must be above 0".into()));
        }
        Ok(FinetuneConfig {
            epochs: self.epochs,
            batch_size: self.batch,
            lr: self.lr,
            warmup: self.warmup,
            weight_decay: self.weight_decay,
            max_len: self.max_len,
            seed: self.seed,
            checkpoint_every: self.checkpoint_every,
            eval_every: self.eval_every,
            weights: TaskWeights {
                gold: self.gold_weight,
                logits: self.logit_weight,
                temperature: self.temperature,
                hidden: self.hidden_weight,
                attention: self.attention_weight,
            },
            keep_zeros: self.keep_zeros,
            head_probe: self.head_probe,
            replacing: self
                .theseus
                .map(|_| Replacing { base_rate: self.replace_rate, full_at: self.replace_full_at }),
        })
    }
}

const TAGGING_TASKS: [&str; 2] = ["upos", "xpos"];

/// The treebank file of `split` (train, dev) in `dir`: `*-ud-train.conllu` or `train.conllu`.
pub(crate) fn conllu_file(dir: &Path, split: &str) -> Result<PathBuf> {
    let read = std::fs::read_dir(dir).map_err(io(format!("cannot read {}", dir.display())))?;
    let mut found: Vec<PathBuf> = read
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n == format!("{split}.conllu") || n.ends_with(&format!("-{split}.conllu"))
            })
        })
        .collect();
    found.sort();
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(CliError::Usage(format!(
            "{} has no {split}.conllu or *-{split}.conllu (a UD treebank's directory)",
            dir.display()
        ))),
        _ => Err(CliError::Usage(format!(
            "{} has several {split} files ({}): keep one",
            dir.display(),
            found.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// A two-column file of `split` in `dir`: `split.conll` or `split.txt`.
fn conll_file(dir: &Path, split: &str) -> Result<PathBuf> {
    ["conll", "txt"].iter().map(|ext| dir.join(format!("{split}.{ext}"))).find(|p| p.is_file()).ok_or_else(|| {
        CliError::Usage(format!("{} has no {split}.conll or {split}.txt (two-column files)", dir.display()))
    })
}

pub(crate) fn finetune_cmd(a: &FinetuneArgs) -> Result<()> {
    let mut cfg = a.config()?;
    let mut task = a.task()?;
    crate::train::training_threads(a.threads)?;
    a.device.device()?;
    if task.is_tagging() {
        return finetune_tagger_cmd(a, cfg, task);
    }
    let (train_path, dev_path) = (a.data.join("train.tsv"), a.data.join("dev.tsv"));
    task.resolve_labels(&train_path)?;
    let train = sample(task.read(&train_path)?, a.train_limit.unwrap_or(usize::MAX), a.seed);
    let mut dev = task.read(&dev_path)?;
    dev.truncate(a.dev_limit.unwrap_or(usize::MAX));
    let mut model = load_model_data(&a.model)?;
    cfg.keep_zeros |= model.spec.provenance.recipe["method"] == prune::MAGNITUDE_METHOD;
    let mut teacher = a.teacher.as_deref().map(load_model_data).transpose()?;
    if let Some(layers) = a.theseus {
        if !(0.0..=1.0).contains(&a.replace_rate) || a.replace_full_at <= 0.0 {
            return Err(CliError::Usage(
                "--replace-rate is a probability (0..1); --replace-full-at a fraction above 0"
                    .into(),
            ));
        }
        // The predecessor is the given model; the student, its layers cut to `layers`.
        let shape = StudentShape::from_teacher(&model, Some(layers), None, None, None)?;
        let student = extract(&model, &shape, &Init::EtdRand, a.seed)?;
        cfg.weights.logits = 0.0;
        teacher = Some(std::mem::replace(&mut model, student));
    }
    needs_teacher(a, teacher.is_some())?;
    let files = run_files(a);
    eprintln!(
        "fine-tuning {} on {} ({} training, {} dev examples, {} epochs of {} steps)",
        a.model.display(),
        task.name,
        train.len(),
        dev.len(),
        cfg.epochs,
        train.len().div_ceil(cfg.batch_size)
    );
    let mut printer = progress_printer();
    let (out, report) =
        finetune_model(&model, teacher.as_ref(), &task, &train, &dev, &cfg, &files, &mut printer)?;
    finish(a, &out, &report)
}

/// The flags that only make sense with a teacher.
fn needs_teacher(a: &FinetuneArgs, teacher: bool) -> Result<()> {
    if !teacher && (a.hidden_weight != 0.0 || a.attention_weight != 0.0 || a.gold_weight == 0.0) {
        return Err(CliError::Usage(
            "--hidden-weight, --attention-weight and --gold-weight 0 need --teacher".into(),
        ));
    }
    Ok(())
}

fn run_files(a: &FinetuneArgs) -> RunFiles<'_> {
    RunFiles {
        device: a.device,
        checkpoint: a.checkpoint.as_deref(),
        resume: a.resume,
        log: a.log.as_deref(),
        eval_texts: None,
        eval_every: a.eval_every,
        stop_after: a.stop_after,
        target_cache: None,
    }
}

/// Writes the package and prints the report (JSON on stdout).
fn finish(a: &FinetuneArgs, out: &ModelData, report: &FinetuneReport) -> Result<()> {
    write_package_file(out, &a.out)?;
    let best = &report.best;
    eprintln!(
        "wrote {}: the model of step {} of {}, dev {} {:.4}",
        a.out.display(),
        best.step,
        report.steps,
        best.scores.metric_name,
        best.scores.metric
    );
    println!("{}", serde_json::to_string(report).unwrap_or_default());
    Ok(())
}

/// `finetune --task upos|xpos`: a token head on CoNLL-U sentences.
fn finetune_tagger_cmd(a: &FinetuneArgs, cfg: FinetuneConfig, mut task: TaskSpec) -> Result<()> {
    if a.theseus.is_some() {
        return Err(CliError::Usage(
            "--theseus is for sequence tasks; distil a tagger with --teacher".into(),
        ));
    }
    let (train_path, dev_path) = if task.format == DataFormat::Conll {
        (conll_file(&a.data, "train")?, conll_file(&a.data, "dev")?)
    } else {
        (conllu_file(&a.data, "train")?, conllu_file(&a.data, "dev")?)
    };
    resolve_tag_labels(&mut task, &[&train_path, &dev_path])?;
    let train =
        sample(read_tagged(&task, &train_path)?, a.train_limit.unwrap_or(usize::MAX), a.seed);
    let mut dev = read_tagged(&task, &dev_path)?;
    dev.truncate(a.dev_limit.unwrap_or(usize::MAX));
    let model = load_model_data(&a.model)?;
    let teacher = a.teacher.as_deref().map(load_model_data).transpose()?;
    needs_teacher(a, teacher.is_some())?;
    let files = run_files(a);
    eprintln!(
        "fine-tuning {} as a tagger of {} ({} training, {} dev sentences of {} words, {} \
         epochs of {} steps)",
        a.model.display(),
        task.name,
        train.len(),
        dev.len(),
        dev.iter().map(|s| s.words.len()).sum::<usize>(),
        cfg.epochs,
        train.len().div_ceil(cfg.batch_size)
    );
    let mut printer = progress_printer();
    let (out, report) =
        finetune_tagger(&model, teacher.as_ref(), &task, &train, &dev, &cfg, &files, &mut printer)?;
    finish(a, &out, &report)
}

#[derive(Args)]
pub(crate) struct PruneArgs {
    /// A float package or Hugging Face directory (a fine-tuned one, typically).
    #[arg(long)]
    model: PathBuf,
    /// `magnitude` (the smallest weights of every encoder matrix set to zero; `finetune` keeps
    /// them zero) or `structured` (the least important heads and feed-forward neurons of every
    /// layer removed: a smaller, faster package).
    #[arg(long)]
    method: String,
    /// The fraction to remove: of each matrix's weights, or of each layer's heads and neurons.
    #[arg(long, default_value_t = 0.5)]
    sparsity: f32,
    /// Texts, one per line, on which `structured` measures importance (the first 64).
    #[arg(long)]
    texts: Option<PathBuf>,
    #[arg(long)]
    out: PathBuf,
}

pub(crate) fn prune_cmd(a: &PruneArgs) -> Result<()> {
    let model = load_model_data(&a.model)?;
    let out = match a.method.as_str() {
        "magnitude" => prune::magnitude(&model, a.sparsity)?,
        "structured" => {
            let Some(path) = &a.texts else {
                return Err(CliError::Usage(
                    "--method structured measures importance on --texts FILE (one text per \
                     line, e.g. the task's training sentences)"
                        .into(),
                ));
            };
            let texts = bertling_compressor::eval::read_texts(path, 64)?;
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            let tok = bertling_runtime::TextTokenizer::new(
                &model.tokenizer_json,
                model.spec.max_seq_len.min(128),
            )?;
            prune::structured(&model, a.sparsity, &tok.encode(&refs)?)?
        }
        other => {
            return Err(CliError::Usage(format!("--method {other}: use magnitude or structured")))
        }
    };
    let bytes = write_package_file(&out, &a.out)?;
    eprintln!(
        "wrote {} ({:.1} MB): {} pruning at sparsity {}; fine-tune it on the task next",
        a.out.display(),
        bytes as f64 / 1e6,
        a.method,
        a.sparsity
    );
    Ok(())
}

/// One line per 5 % of the steps (rewritten in place on a terminal), and one per dev score.
fn progress_printer() -> impl FnMut(&FinetuneProgress) {
    let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
    move |p: &FinetuneProgress| {
        let l = &p.losses;
        let line = format!(
            "finetune epoch {}/{} step {:>5}/{} loss {:.4} (task {:.4}, logits {:.4}, hidden \
             {:.4}, attention {:.4})  {:.1} examples/s  lr {:.2e}  eta {}",
            p.epoch,
            p.epochs,
            p.step,
            p.steps,
            l.total,
            l.task,
            l.logits,
            l.hidden,
            l.attention,
            p.examples_per_s,
            p.lr,
            crate::progress::duration(p.eta_s)
        );
        crate::progress::step_line(tty, &line, p.step, p.steps);
        if let Some(d) = &p.dev {
            let best = p.best.as_ref().map_or(String::new(), |b| {
                format!(" (best {:.4} at step {})", b.scores.metric, b.step)
            });
            let line = format!(
                "finetune dev at step {}: {} {:.4}, loss {:.4}{best}",
                p.step, d.metric_name, d.metric, d.loss
            );
            crate::progress::lasting_line(tty, &line);
        }
    }
}
