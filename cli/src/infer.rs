//! Running models: `embed`, `classify`, `bench`, `demo` (and the line reader of `tag`).

use std::io::{BufRead, BufWriter, Write};
use std::path::PathBuf;
use std::time::Instant;

use bertling_runtime::gpu::GpuOptions;
use bertling_runtime::{cosine, Backend, LoadOptions, Model};
use clap::Args;

use crate::error::{io, CliError, Result};

#[derive(Args)]
pub(crate) struct RunArgs {
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

impl RunArgs {
    pub(crate) fn load(&self) -> Result<Model> {
        load_with(&self.model, &self.backend, self.threads, self.gpu_f16)
    }
}

// `bench`'s flags.
#[derive(Args)]
pub(crate) struct BenchArgs {
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
}

// `demo`'s flags.
#[derive(Args)]
pub(crate) struct DemoArgs {
    #[arg(long)]
    model: PathBuf,
    #[arg(long)]
    threads: Option<usize>,
    #[arg(long, default_value = "cpu")]
    backend: String,
}

pub(crate) fn load(model: &PathBuf, backend: &str, threads: Option<usize>) -> Result<Model> {
    load_with(model, backend, threads, false)
}

pub(crate) fn load_with(
    model: &PathBuf,
    backend: &str,
    threads: Option<usize>,
    gpu_f16: bool,
) -> Result<Model> {
    let backend: Backend = backend.parse()?;
    let gpu = GpuOptions { f16: gpu_f16, ..GpuOptions::default() };
    Ok(Model::load(model, &LoadOptions { backend, threads, gpu })?)
}

/// `embed`: one JSON array per input line.
pub(crate) fn embed(a: &RunArgs) -> Result<()> {
    stream(a, |model, lines, out| {
        for v in model.embed(lines)? {
            serde_json::to_writer(&mut *out, &v).map_err(|e| CliError::Usage(e.to_string()))?;
            writeln!(out).map_err(io("writing output"))?;
        }
        Ok(())
    })
}

/// `classify`: one JSON object per input line.
pub(crate) fn classify(a: &RunArgs) -> Result<()> {
    stream(a, |model, lines, out| {
        for c in model.classify(lines)? {
            let line = serde_json::json!({"label": c.label, "probs": c.probs});
            writeln!(out, "{line}").map_err(io("writing output"))?;
        }
        Ok(())
    })
}

/// Reads lines (an empty line is an empty input) and processes them in batches.
pub(crate) fn stream(
    a: &RunArgs,
    f: impl Fn(&Model, &[&str], &mut dyn Write) -> Result<()>,
) -> Result<()> {
    if a.batch == 0 {
        return Err(CliError::Usage("--batch must be at least 1".into()));
    }
    let model = a.load()?;
    let reader: Box<dyn BufRead> = match &a.input {
        Some(p) => Box::new(std::io::BufReader::new(
            std::fs::File::open(p).map_err(io(format!("cannot open {}", p.display())))?,
        )),
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

/// `bench`: the median latency of one batch shape.
pub(crate) fn bench_cmd(a: &BenchArgs) -> Result<()> {
    let model = load_with(&a.model, &a.backend, a.threads, a.gpu_f16)?;
    let stats = bench(&model, a.batch, a.seq, a.runs, a.warmup)?;
    if a.json {
        let line = serde_json::json!({
            "batch": a.batch, "seq": a.seq, "threads": model.threads(), "device": model.device(),
            "median_ms": stats.0, "min_ms": stats.1, "runs": a.runs,
        });
        println!("{line}");
    } else {
        println!(
            "batch {} x seq {} on {}: median {:.3} ms (min {:.3} ms, {} runs)",
            a.batch,
            a.seq,
            model.device(),
            stats.0,
            stats.1,
            a.runs
        );
    }
    Ok(())
}

/// Median and minimum latency in milliseconds of `embed` on random ids of the given shape.
pub(crate) fn bench(
    model: &Model,
    batch: usize,
    seq: usize,
    runs: usize,
    warmup: usize,
) -> Result<(f64, f64)> {
    let info = model.info();
    if batch == 0 || runs == 0 {
        return Err(CliError::Usage("--batch and --runs must be at least 1".into()));
    }
    if seq < 2 || seq > info.max_seq_len {
        return Err(CliError::Usage(format!(
            "--seq must be between 2 and the model's maximum of {}",
            info.max_seq_len
        )));
    }
    Ok(bertling_runtime::profile::bench_model(model, batch, seq, runs, warmup)?)
}

const DEMO_SENTENCES: [&str; 6] = [
    "A man is playing a guitar.",
    "Someone is strumming an acoustic guitar.",
    "The stock market fell sharply today.",
    "Shares dropped steeply in this morning's trading.",
    "A cat sleeps on the sofa.",
    "Ein Mann spielt Gitarre.",
];

pub(crate) fn demo(a: &DemoArgs) -> Result<()> {
    let (path, threads, backend) = (&a.model, a.threads, a.backend.as_str());
    let t0 = Instant::now();
    let model = load(path, backend, threads)?;
    let load_ms = t0.elapsed().as_secs_f64() * 1e3;
    let info = model.info();
    println!(
        "model {} : {:.1} M parameters, {:.1} MB of weights in memory, matrix bits {:?}, \
         loaded in {load_ms:.0} ms",
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
    println!(
        "\nlatency on {} (median): batch 1 x 16 tokens {one:.2} ms; batch 8 x 128 tokens \
         {b8:.1} ms",
        model.device()
    );
    Ok(())
}
