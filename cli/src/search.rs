//! Architecture search commands: `search` (a family of students, one per budget) and
//! `predict-latency` (the latency predictor, and its error against `bench` on sampled
//! architectures).

use std::path::PathBuf;

use bertling_compressor::distill::Progress;
use bertling_compressor::eval::read_texts;
use bertling_compressor::search::{Arch, LatencyModel, RunSettings, SearchSpace};
use bertling_runtime::profile::{random_model, LatencyTable};
use bertling_runtime::rng::XorShift;
use bertling_runtime::{load_model_data, Backend, LoadOptions, Model, ModelSpec, Precision};
use clap::Args;

use crate::error::{io, CliError, Result};
use crate::infer::bench;
use crate::progress::progress_printer_named;
use crate::train::{student_shape, QuantFlags, StudentArgs, TrainArgs};
use bertling_compressor::recipe;
use bertling_compressor::search::{
    map_search, proxy_score, search_family, Budget, FamilyPlan, MapSearchConfig, SupernetConfig,
};

#[derive(Args)]
pub(crate) struct SearchArgs {
    /// The teacher: a Hugging Face directory (a standard BERT).
    #[arg(long)]
    teacher: PathBuf,
    /// Plain text, one sentence per line; its first --held-out lines are held out.
    #[arg(long)]
    corpus: PathBuf,
    /// Output directory: one directory of packages per budget, checkpoints, supernet.jsonl,
    /// report.json, report.md, family.svg.
    #[arg(long)]
    out: PathBuf,
    /// Budgets, one student each: bytes (4MB, 800KB), milliseconds from the latency table
    /// (12ms), or both (7MB+12ms).
    #[arg(long, value_delimiter = ',', required = true)]
    budgets: Vec<String>,
    /// The target's latency table (`bertling profile --out`, with the --bits, --group and
    /// --act-bits the students will have); without it, budgets can only be bytes.
    #[arg(long)]
    latency_table: Option<PathBuf>,
    /// Sequence length and batch the latency budgets are for.
    #[arg(long, default_value_t = 128)]
    latency_seq: usize,
    #[arg(long, default_value_t = 1)]
    latency_batch: usize,
    /// Stages the teacher's blocks split into.
    #[arg(long, default_value_t = 3)]
    stages: usize,
    /// Stage and embedding widths of the search space.
    #[arg(long, value_delimiter = ',', default_value = "128,192,256,384")]
    widths: Vec<usize>,
    /// Supernet training steps.
    #[arg(long, default_value_t = 2000)]
    supernet_steps: usize,
    /// Supernet learning rate (peak).
    #[arg(long, default_value_t = 2e-4)]
    supernet_lr: f64,
    /// Candidates drawn per stage.
    #[arg(long, default_value_t = 200)]
    pool: usize,
    /// Steps between prunings of the candidates (0: never).
    #[arg(long, default_value_t = 250)]
    shrink_every: usize,
    /// Size bins per stage in which pruning keeps the better half.
    #[arg(long, default_value_t = 10)]
    bins: usize,
    /// Pruning stops at this many candidates per bin.
    #[arg(long, default_value_t = 4)]
    keep: usize,
    /// Held-out sentences (the corpus's first lines) that score the candidates.
    #[arg(long, default_value_t = 64)]
    held_out: usize,
    /// Best candidates per budget re-ranked by the held-out cosine of the whole candidate.
    #[arg(long, default_value_t = 5)]
    top: usize,
    /// Weight bits of the students (KDLSQ after distillation); 32 keeps them float.
    #[arg(long, default_value_t = 4)]
    bits: u8,
    #[command(flatten)]
    quant: QuantFlags,
    /// Steps of each student's KDLSQ (default: the recipe's).
    #[arg(long)]
    quant_steps: Option<usize>,
    /// Train only this stage of the supernet, then stop (stage 0 trains the embedding too). The
    /// stages learn independently, so several processes (one per GPU with --device cuda:N, or
    /// per machine sharing --out) train them at once; a last run without --train-stage merges
    /// them and searches.
    #[arg(long)]
    train_stage: Option<usize>,
    /// Stop after choosing: write each budget's student with the supernet's weights, untrained.
    #[arg(long)]
    search_only: bool,
    /// Packages to compare with in the report and the plot (e.g. uniform ETD students).
    #[arg(long)]
    baseline: Vec<PathBuf>,
    /// STS-B directory (dev.tsv) for the report.
    #[arg(long)]
    stsb: Option<PathBuf>,
    /// Check the supernet's ranking: distil this many candidates of the budgets' ranked lists
    /// (every budget's best first) from their inherited weights for --verify-steps steps each,
    /// and report Kendall τ between their supernet and trained cosines (0: no check).
    #[arg(long, default_value_t = 0)]
    verify: usize,
    /// Distillation steps of each verified candidate.
    #[arg(long, default_value_t = 200)]
    verify_steps: usize,
    #[command(flatten)]
    train: TrainArgs,
}

pub(crate) fn search_cmd(a: &SearchArgs) -> Result<()> {
    if a.train.checkpoint.is_some() {
        return Err(CliError::Usage(
            "search keeps its checkpoints under --out; drop --checkpoint".into(),
        ));
    }
    let budgets =
        a.budgets.iter().map(|b| Budget::parse(b)).collect::<std::result::Result<Vec<_>, _>>()?;
    let table =
        match &a.latency_table {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(io(format!("reading the latency table {}", path.display())))?;
                Some(LatencyTable::from_json(&text)?)
            }
            None if budgets.iter().any(|b| b.ms.is_some()) => return Err(CliError::Usage(
                "a budget in milliseconds needs --latency-table (bertling profile --out T.json)"
                    .into(),
            )),
            None => None,
        };
    let train = a.train.config(recipe::distill())?;
    let teacher = bertling_runtime::load_hf_dir(&a.teacher)?;
    let space = SearchSpace::for_teacher(&teacher.spec, a.stages, &a.widths)?;
    let kdlsq = if a.bits == 32 {
        Vec::new()
    } else {
        vec![a.quant.resolve(a.bits, &a.train, &train, a.quant_steps.or(a.train.steps()))?]
    };
    let run = match kdlsq.first() {
        Some((q, _)) => RunSettings {
            bits: q.bits,
            group: q.group,
            act_bits: q.act_bits.unwrap_or(0),
            seq: a.latency_seq,
            batch: a.latency_batch,
        },
        None => RunSettings {
            bits: 32,
            group: None,
            act_bits: 0,
            seq: a.latency_seq,
            batch: a.latency_batch,
        },
    };
    let plan = FamilyPlan {
        space,
        supernet: SupernetConfig {
            steps: a.supernet_steps,
            batch_size: train.batch_size,
            max_len: train.max_len,
            lr: a.supernet_lr,
            seed: train.seed,
            pool: a.pool,
            shrink_every: a.shrink_every,
            bins: a.bins,
            keep: a.keep,
            checkpoint_every: train.checkpoint_every,
            only_stage: None,
        },
        held_out: a.held_out,
        top: a.top,
        budgets,
        run,
        train: (!a.search_only).then(|| (train.clone(), kdlsq)),
        baselines: a.baseline.clone(),
        train_stage: a.train_stage,
        verify: (a.verify > 0).then(|| bertling_compressor::search::Verify {
            count: a.verify,
            train: bertling_compressor::distill::DistillConfig {
                steps: a.verify_steps,
                warmup: train.warmup.min(a.verify_steps / 4),
                ..train.clone()
            },
        }),
    };
    let texts = read_texts(a.train.eval_texts_path().unwrap_or(&a.corpus), 500)?;
    let train_texts = a.train.eval_texts(&a.corpus)?;
    let started = std::time::Instant::now();
    let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
    type Printer = Box<dyn FnMut(&Progress)>;
    let mut printers: std::collections::BTreeMap<String, Printer> = Default::default();
    let report = search_family(
        &teacher,
        &a.teacher.display().to_string(),
        &a.corpus,
        &a.out,
        &plan,
        table.as_ref(),
        &texts,
        a.stsb.as_deref(),
        &a.train.files(&train_texts),
        &mut |p| {
            let line = format!(
                "supernet step {}/{} loss {:.4}  {:.0} tok/s  pools {:?}  elapsed {:.0}s eta {:.0}s",
                p.step,
                p.steps,
                p.loss,
                p.tokens_per_s,
                p.pools,
                started.elapsed().as_secs_f64(),
                p.eta_s
            );
            if tty {
                eprint!("\r\x1b[2K{line}");
                if p.step == p.steps {
                    eprintln!();
                }
            } else if p.step == p.steps || p.step % (p.steps / 20).max(1) == 0 {
                eprintln!("{line}");
            }
        },
        &mut |stage, p| {
            let print = printers
                .entry(stage.to_string())
                .or_insert_with(|| Box::new(progress_printer_named(stage.to_string())));
            print(p)
        },
    )?;
    let Some(report) = report else {
        eprintln!(
            "stage {} of the supernet is trained; when every stage is, run the command without \
             --train-stage to search",
            a.train_stage.unwrap_or(0)
        );
        return Ok(());
    };
    println!("{}", report.markdown());
    eprintln!(
        "report: {} (plot: {})",
        a.out.join("report.md").display(),
        a.out.join("family.svg").display()
    );
    Ok(())
}

#[derive(Args)]
pub(crate) struct PredictLatencyArgs {
    /// The teacher (Hugging Face directory or package): the students' vocabulary, positions and
    /// output width, and the blocks the stages split.
    #[arg(long)]
    teacher: PathBuf,
    /// The latency table of the target (`bertling profile --out`).
    #[arg(long)]
    table: PathBuf,
    /// Architectures to predict, as `e128|256:a4x64,f512,c5,id|...` (repeat the flag).
    #[arg(long)]
    arch: Vec<String>,
    /// Also draw this many architectures of the search space at random.
    #[arg(long, default_value_t = 0)]
    sample: usize,
    /// Time each architecture (random weights, as `bertling bench` times a package) and
    /// report the predictor's error.
    #[arg(long)]
    measure: bool,
    /// Seed of the sampled architectures and their random weights.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Stages the teacher's blocks split into.
    #[arg(long, default_value_t = 3)]
    stages: usize,
    /// Stage and embedding widths of the search space.
    #[arg(long, value_delimiter = ',', default_value = "128,192,256,384")]
    widths: Vec<usize>,
    /// Weight bits of the students: 32 (f32), 16 (f16) or 2..8.
    #[arg(long, default_value_t = 4)]
    bits: u8,
    /// Columns per weight step (0 = per output channel).
    #[arg(long, default_value_t = 32)]
    group: usize,
    /// Activation bits (per-token steps; 0 = float activations).
    #[arg(long, default_value_t = 8)]
    act_bits: u8,
    #[arg(long, default_value_t = 128)]
    seq: usize,
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Timed runs per architecture with --measure (after the warm-up).
    #[arg(long, default_value_t = 20)]
    runs: usize,
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    /// CPU threads with --measure; default the table's.
    #[arg(long)]
    threads: Option<usize>,
    /// Write each measured architecture's random-weight package here (to time it again with
    /// `bertling bench`).
    #[arg(long)]
    keep: Option<PathBuf>,
    /// One JSON object per architecture, then a summary object.
    #[arg(long)]
    json: bool,
}

pub(crate) fn predict_latency(a: &PredictLatencyArgs) -> Result<()> {
    let text = std::fs::read_to_string(&a.table)
        .map_err(io(format!("reading the latency table {}", a.table.display())))?;
    let table = LatencyTable::from_json(&text)?;
    let teacher_data = load_model_data(&a.teacher)?;
    let teacher = &teacher_data.spec;
    let space = SearchSpace::for_teacher(teacher, a.stages, &a.widths)?;
    let run = RunSettings {
        bits: a.bits,
        group: (a.group > 0 && a.bits <= 8).then_some(a.group),
        act_bits: if a.bits <= 8 { a.act_bits } else { 0 },
        seq: a.seq,
        batch: a.batch,
    };
    let predictor = LatencyModel::new(&table, run)?;
    let mut archs =
        a.arch.iter().map(|s| s.parse::<Arch>()).collect::<std::result::Result<Vec<_>, _>>()?;
    let mut rng = XorShift::new(a.seed);
    while archs.len() < a.arch.len() + a.sample {
        let arch = space.sample(&mut rng);
        if !archs.contains(&arch) {
            archs.push(arch);
        }
    }
    if archs.is_empty() {
        return Err(CliError::Usage("give --arch ARCH (repeatable) or --sample N".into()));
    }
    if a.measure && table.backend != "cpu" {
        return Err(CliError::Usage(format!(
            "--measure times on the CPU, but the table was measured on {} ({}): predict only, \
             or profile the CPU",
            table.backend, table.device
        )));
    }
    let threads = a.threads.unwrap_or(table.threads.max(1));
    if let Some(dir) = &a.keep {
        std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
    }
    let mut errors = Vec::new();
    let mut pairs = Vec::new();
    if !a.json {
        let measured =
            if a.measure { format!("{:>10} {:>8}", "measured", "error") } else { String::new() };
        println!("{:>10} {measured}  {:>6}  architecture", "predicted", "MB");
    }
    for (i, arch) in archs.iter().enumerate() {
        let spec = arch.spec(teacher);
        let predicted = predictor.predict(&spec)?;
        let mut data = random_model(spec.clone(), precision(&run)?, a.seed.wrapping_add(i as u64))?;
        // The teacher's tokenizer: the package loads like any other (bench times no tokenizing).
        data.tokenizer_json = teacher_data.tokenizer_json.clone();
        let data = if run.act_bits > 0 { data.with_token_activations(run.act_bits)? } else { data };
        // The package file's size, tokenizer and header included, as a budget counts it.
        let mb = bertling_runtime::write_package(&data)?.len() as f64 / 1e6;
        let mut measured = None;
        if a.measure {
            if let Some(dir) = &a.keep {
                let path = dir.join(format!("arch-{i:03}.bertling"));
                bertling_runtime::write_package_file(&data, &path)?;
            }
            let model = Model::from_data(data, &LoadOptions::new(Backend::Cpu, threads))?;
            let (median, min) = bench(&model, run.batch, run.seq, a.runs, a.warmup)?;
            errors.push((predicted - median) / median);
            pairs.push((predicted, median));
            measured = Some((median, min));
        }
        report_one(a.json, arch, &spec, predicted, measured, mb);
    }
    if a.measure {
        summary(a.json, &table, &run, threads, &errors, &pairs);
    }
    Ok(())
}

fn precision(run: &RunSettings) -> Result<Precision> {
    Ok(match run.bits {
        32 => Precision::F32,
        16 => Precision::F16,
        2..=8 => Precision::Quantized { bits: run.bits, group: run.group, embedding_bits: 8 },
        b => return Err(CliError::Usage(format!("--bits {b}: use 32, 16 or 2..8"))),
    })
}

fn report_one(
    json: bool,
    arch: &Arch,
    spec: &ModelSpec,
    predicted: f64,
    measured: Option<(f64, f64)>,
    mb: f64,
) {
    if json {
        let line = serde_json::json!({
            "arch": arch.to_string(), "blocks": spec.blocks.len(), "predicted_ms": predicted,
            "measured_ms": measured.map(|m| m.0), "measured_min_ms": measured.map(|m| m.1),
            "megabytes": mb,
        });
        println!("{line}");
        return;
    }
    let m = match measured.map(|m| m.0) {
        Some(m) => format!("{m:>10.3} {:>+7.1}%", 100.0 * (predicted - m) / m),
        None => String::new(),
    };
    println!("{predicted:>10.3} {m}  {mb:>6.2}  {arch}");
}

fn summary(
    json: bool,
    table: &LatencyTable,
    run: &RunSettings,
    threads: usize,
    errors: &[f64],
    pairs: &[(f64, f64)],
) {
    let n = errors.len().max(1) as f64;
    let mae = errors.iter().map(|e| e.abs()).sum::<f64>() / n;
    let bias = errors.iter().sum::<f64>() / n;
    let max = errors.iter().fold(0f64, |m, e| m.max(e.abs()));
    let (p, m): (Vec<f64>, Vec<f64>) = pairs.iter().copied().unzip();
    let rho = bertling_compressor::eval::spearman(&p, &m);
    if json {
        let line = serde_json::json!({
            "summary": true, "architectures": errors.len(), "mean_abs_error": mae,
            "mean_error": bias, "max_abs_error": max, "spearman": rho, "threads": threads,
            "table_device": table.device, "settings": bertling_compressor::search::latency::describe(run),
        });
        println!("{line}");
    } else {
        println!(
            "{} architectures, {} on {threads} threads: mean absolute error {:.1}% (mean {:+.1}%, \
             max {:.1}%), rank correlation {rho:.3}",
            errors.len(),
            bertling_compressor::search::latency::describe(run),
            100.0 * mae,
            100.0 * bias,
            100.0 * max
        );
    }
}

#[derive(Args)]
pub(crate) struct MapSearchArgs {
    /// The teacher (Hugging Face directory).
    #[arg(long)]
    teacher: PathBuf,
    /// Plain text, one sentence per line (the proxy runs distil on it).
    #[arg(long)]
    corpus: PathBuf,
    #[command(flatten)]
    student: StudentArgs,
    /// Maps per generation.
    #[arg(long, default_value_t = 8)]
    population: usize,
    #[arg(long, default_value_t = 5)]
    generations: usize,
    /// Probability that each layer of a child map moves to a neighbouring teacher layer.
    #[arg(long, default_value_t = 0.3)]
    mutation: f64,
    /// Distillation steps of each proxy run (default: --steps if given, else 200).
    #[arg(long)]
    proxy_steps: Option<usize>,
    /// STS-B directory (dev.tsv): averaged into the fitness with the held-out cosine.
    #[arg(long)]
    stsb: Option<PathBuf>,
    /// Write the report (every evaluated map, best first, and uniform's) here as JSON. It is
    /// rewritten as each map is scored, so a killed search run again with the same settings and
    /// --out scores only the maps not yet there.
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    train: TrainArgs,
}

pub(crate) fn map_search_cmd(a: &MapSearchArgs) -> Result<()> {
    if a.train.checkpoint.is_some() {
        return Err(CliError::Usage("proxy runs keep no checkpoints; drop --checkpoint".into()));
    }
    let mut proxy = a.train.config(recipe::distill())?;
    proxy.steps = a.proxy_steps.or(a.train.steps()).unwrap_or(200);
    proxy.warmup = proxy.warmup.min(proxy.steps);
    let teacher = bertling_runtime::load_hf_dir(&a.teacher)?;
    let shape = student_shape(&teacher, &a.student)?;
    let init =
        bertling_compressor::etd::init_named(&a.student.init, &teacher, &a.corpus, proxy.max_len)?;
    let student = bertling_compressor::etd::extract(&teacher, &shape, &init, proxy.seed)?;
    let texts = a.train.eval_texts(&a.corpus)?;
    let files = a.train.files(&texts);
    let (s, t) = (
        bertling_compressor::search::mapping::layers_of(&student)?,
        bertling_compressor::search::mapping::layers_of(&teacher)?,
    );
    let cfg = MapSearchConfig {
        population: a.population,
        generations: a.generations,
        mutation: a.mutation,
        seed: proxy.seed,
        proxy: proxy.clone(),
    };
    let settings = serde_json::json!({
        "teacher": a.teacher, "corpus": a.corpus, "student": format!("{shape:?}"),
        "init": a.student.init, "search": cfg, "stsb": a.stsb,
        "eval_texts": a.train.eval_texts_path(), "eval_size": texts.len(),
    });
    let file = match &a.out {
        Some(out) => Some(ScoresFile::open(out, settings)?),
        None => None,
    };
    let known = file.as_ref().map(|f| f.known.clone()).unwrap_or_default();
    let mut scored = known.clone();
    if !known.is_empty() {
        eprintln!("resuming: {} maps already scored", known.len());
    }
    let report = map_search(
        s,
        t,
        &cfg,
        &known,
        |map| {
            proxy_score(
                &teacher,
                &student,
                &a.corpus,
                &proxy,
                map,
                &texts,
                a.stsb.as_deref(),
                &files,
                &mut |_| {},
            )
        },
        |n, sc| {
            let stsb = sc.stsb.map(|r| format!(", STS-B {r:.4}")).unwrap_or_default();
            eprintln!("[{n}] map {:?}: cosine {:.4}{stsb}", sc.map, sc.cosine);
            scored.push(sc.clone());
            if let Some(f) = &file {
                if let Err(e) = f.write(serde_json::json!({ "evaluated": scored }), false) {
                    eprintln!("warning: {e}");
                }
            }
        },
    )?;
    if let Some(f) = &file {
        f.write(serde_json::to_value(&report).unwrap_or_default(), true)?;
    }
    let how = if report.exhaustive { "every one evaluated" } else { "genetic search" };
    println!(
        "{} monotone maps of {s} student layers onto {t} ({how}, {} evaluated)",
        report.space,
        report.evaluated.len()
    );
    println!("{:<24} {:>8} {:>8}", "map", "cosine", "STS-B");
    for sc in report.evaluated.iter().take(5).chain(std::iter::once(&report.uniform)) {
        let stsb = sc.stsb.map(|r| format!("{r:.4}")).unwrap_or_else(|| "-".into());
        let name = if sc.map == report.uniform.map { " (uniform)" } else { "" };
        println!("{:<24} {:>8.4} {stsb:>8}", format!("{:?}{name}", sc.map), sc.cosine);
    }
    let best = &report.evaluated[0];
    let list: Vec<String> = best.map.iter().map(usize::to_string).collect();
    println!("best: --map {}", list.join(","));
    Ok(())
}

/// The map search's report file, rewritten after every scored map (`"complete": false` until
/// the search ends), with the settings it was made with: a search run again with the same
/// settings and `--out` scores only the maps the file does not have.
struct ScoresFile {
    path: PathBuf,
    settings: serde_json::Value,
    known: Vec<bertling_compressor::search::mapping::Scored>,
}

impl ScoresFile {
    fn open(path: &std::path::Path, settings: serde_json::Value) -> Result<ScoresFile> {
        let mut known = Vec::new();
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let old: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
                    CliError::Usage(format!(
                        "{} is not a map search's report ({e}): delete it or give another --out",
                        path.display()
                    ))
                })?;
                if old.get("settings") != Some(&settings) {
                    return Err(CliError::Usage(format!(
                        "{} holds the maps of a map search with other settings: delete it to \
                         start afresh, or give another --out",
                        path.display()
                    )));
                }
                if let Some(list) = old.get("evaluated") {
                    known = serde_json::from_value(list.clone()).map_err(|e| {
                        CliError::Usage(format!("{}: {e}: delete it", path.display()))
                    })?;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(format!("reading {}", path.display()))(e)),
        }
        Ok(ScoresFile { path: path.to_path_buf(), settings, known })
    }

    /// Writes `report` (an object) with the settings, atomically.
    fn write(&self, mut report: serde_json::Value, complete: bool) -> Result<()> {
        if let Some(o) = report.as_object_mut() {
            o.insert("settings".into(), self.settings.clone());
            o.insert("complete".into(), complete.into());
        }
        let text = serde_json::to_string_pretty(&report).unwrap_or_default();
        let mut tmp = self.path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        std::fs::write(&tmp, text).map_err(io(format!("writing {}", tmp.display())))?;
        std::fs::rename(&tmp, &self.path).map_err(io(format!("writing {}", self.path.display())))
    }
}
