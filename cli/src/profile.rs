//! `profile`: the on-device latency table of the search space, or one model's per-op breakdown.

use std::path::PathBuf;
use std::time::Instant;

use bertling_runtime::cpu::Team;
use bertling_runtime::gpu::{AdapterChoice, GpuContext};
use bertling_runtime::profile::{latency_table, percentiles, Profiler, TableConfig};
use bertling_runtime::{load_model_data, Backend, Input};
use clap::Args;

use crate::error::{io, CliError, Result};

#[derive(Args)]
pub(crate) struct ProfileArgs {
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
    /// Quantize the activations entering the quantized matrices too (8 or 4 bits, per-token
    /// steps: the integer kernels the compressor's W·A8 students run on); default float.
    #[arg(long, default_value_t = 0)]
    act_bits: u8,
    /// Sequence lengths.
    #[arg(long, value_delimiter = ',', default_value = "128")]
    seq: Vec<usize>,
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Timed runs per op (after one warm-up).
    #[arg(long, default_value_t = 10)]
    runs: usize,
    /// Also time the light tagger's two-stream convolutions (`bertling cvt`) with these causal
    /// kernels at every even width, e.g. `3,5`; default: the search space's ops only.
    #[arg(long, value_delimiter = ',')]
    bi_conv_kernels: Vec<usize>,
    #[arg(long)]
    threads: Option<usize>,
    /// With --model: print JSON.
    #[arg(long)]
    json: bool,
}

fn profiler(backend: &str, threads: Option<usize>) -> Result<Profiler> {
    let cpu = || -> Result<Profiler> {
        let n = threads
            .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
        Ok(Profiler::Cpu { team: Team::new(n).map_err(io("starting worker threads"))? })
    };
    let gpu = |ctx: GpuContext| Profiler::Gpu {
        ctx: std::sync::Arc::new(ctx),
        options: Default::default(),
    };
    match backend.parse::<Backend>()? {
        Backend::Cpu => cpu(),
        Backend::Wgpu => Ok(gpu(GpuContext::new(AdapterChoice::Any)?)),
        // As `Model::load`: a hardware GPU if there is one, else the CPU (never a software
        // adapter).
        Backend::Auto => GpuContext::new(AdapterChoice::HardwareOnly).map(gpu).or_else(|_| cpu()),
    }
}

pub(crate) fn profile(a: &ProfileArgs) -> Result<()> {
    if a.runs == 0 || a.batch == 0 {
        return Err(CliError::Usage("--runs and --batch must be at least 1".into()));
    }
    let p = profiler(&a.backend, a.threads)?;
    if let Some(path) = &a.model {
        let data = load_model_data(path)?;
        let seq = a.seq.first().copied().unwrap_or(128);
        if seq < 2 || seq > data.spec.max_seq_len {
            return Err(CliError::Usage(format!(
                "--seq must be between 2 and the model's maximum of {}",
                data.spec.max_seq_len
            )));
        }
        let inputs = Input::synthetic(a.batch, seq, data.spec.embeddings.vocab_size);
        let ops = p.time_ops(&data, &inputs, a.runs)?;
        let total: f64 = ops.iter().map(|(_, _, t)| percentiles(t).0).sum();
        if a.json {
            for (label, kernel, times) in &ops {
                let (median, p10, p90) = percentiles(times);
                println!(
                    "{}",
                    serde_json::json!({
                        "op": label, "kernel": kernel, "median_ms": median, "p10_ms": p10,
                        "p90_ms": p90,
                    })
                );
            }
            return Ok(());
        }
        println!(
            "{} on {}, batch {} x seq {seq}, {} runs (median per op)",
            path.display(),
            p.backend(),
            a.batch,
            a.runs
        );
        println!("{:<28} {:<34} {:>10} {:>7}", "op", "kernel", "ms", "share");
        for (label, kernel, times) in &ops {
            let m = percentiles(times).0;
            println!("{label:<28} {kernel:<34} {m:>10.4} {:>6.1}%", 100.0 * m / total.max(1e-12));
        }
        println!("{:<28} {:<34} {total:>10.4}", "total", "");
        return Ok(());
    }
    let Some(out) = &a.out else {
        return Err(CliError::Usage(
            "give --out FILE for a latency table, or --model PATH for a breakdown".into(),
        ));
    };
    let cfg = TableConfig {
        widths: a.widths.clone(),
        bits: a.bits.clone(),
        group: a.group,
        act_bits: a.act_bits,
        seqs: a.seq.clone(),
        batch: a.batch,
        runs: a.runs,
        bi_conv_kernels: a.bi_conv_kernels.clone(),
    };
    let started = Instant::now();
    let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let table = latency_table(&p, &cfg, |done, total, key| {
        let elapsed = started.elapsed().as_secs_f64();
        let eta = if done > 0 { elapsed / done as f64 * (total - done) as f64 } else { 0.0 };
        let line =
            format!("[{done:>4}/{total}] {key:<44} elapsed {elapsed:>5.0}s  eta {eta:>5.0}s");
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
    eprintln!(
        "wrote {} ({} ops and {} fixed costs, {} on {})",
        out.display(),
        table.entries.len(),
        table.fixed.len(),
        table.backend,
        table.device
    );
    Ok(())
}
