//! `bertling`: pack, inspect, embed, classify, tag and benchmark BERT-class models; distil, quantize,
//! evaluate and compress them. One module per command family.

mod error;
mod eval;
mod cvt;
mod finetune;
mod infer;
mod package;
mod profile;
mod progress;
mod search;
mod tag;
mod train;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::error::{CliError, Result};

/// Training allocates and frees tensors of megabytes hundreds of times per step. glibc's
/// malloc serves those from fresh `mmap`s and returns them at once, so every step page-faults
/// its working set in again (zeroed pages: a third of a KDLSQ step of all-MiniLM-L6-v2).
/// Keeping freed memory in the heap instead made that step 1.5x faster (RESULTS.md, "Training
/// speed"). A library must not change a process's allocator policy; the command may.
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes tuning parameters of glibc's allocator; called once, first.
    unsafe {
        // The largest threshold glibc accepts on 64-bit (32 MiB); larger blocks still use mmap.
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
        libc::mallopt(libc::M_TOP_PAD, 256 << 20);
    }
}

#[derive(Parser)]
#[command(
    name = "bertling",
    version,
    about = "Compress BERT encoders into small low-bit students and run them anywhere."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print one JSON array (the sentence embedding) per input line.
    Embed(infer::RunArgs),
    /// Print {"label": ..., "probs": [...]} per input line (models with a classification head).
    Classify(infer::RunArgs),
    /// Print {"words": [{"word", "start", "end", "label", "label_id", "prob"}, ...]} per input
    /// line, or tag a CoNLL-U file's words with --conllu (token-classification models).
    Tag(tag::TagArgs),
    /// Describe a model: architecture, parameters, bytes, bits, provenance.
    Inspect(package::InspectArgs),
    /// Write a bertling package from a Hugging Face directory or another package.
    Pack(package::PackArgs),
    /// Time the encoder on random token ids and print the median latency.
    Bench(infer::BenchArgs),
    /// Embed example sentences and print their similarity table and the latency.
    Demo(infer::DemoArgs),
    /// Measure on-device latency: the per-op latency table of the search space (--out), or the
    /// per-op breakdown of one model (--model).
    Profile(profile::ProfileArgs),
    /// Distil a smaller student from a teacher on plain text (task-agnostic).
    Distill(train::DistillArgs),
    /// KDLSQ: quantize a student (or the teacher) to 2..8 bits, trained by distillation.
    Quantize(train::QuantizeArgs),
    /// Compare a student with its teacher: embedding agreement, STS-B, classification loyalty.
    Eval(eval::EvalArgs),
    /// Fine-tune any model (teacher, student, quantized student: it stays quantized) on a GLUE
    /// task or your own TSV; with --teacher, task distillation from a fine-tuned teacher.
    Finetune(finetune::FinetuneArgs),
    /// Prune a model (magnitude: the smallest weights zeroed; structured: the least important
    /// heads and neurons removed), the baselines to fine-tune and compare on a task.
    Prune(finetune::PruneArgs),
    /// Cross-View Training of a light tagger (two-stream convolutions on the teacher's
    /// WordPiece table) from labelled CoNLL-U and unlabelled text; --distill adds a BERT tagger.
    Cvt(cvt::CvtArgs),
    /// The whole chain: init -> distill -> KDLSQ at each bit width -> export -> report.
    Compress(train::CompressArgs),
    /// NAS-BERT search: a family of students, one per budget of bytes or milliseconds, from a
    /// supernet trained block-wise against the teacher; each distilled and quantized.
    Search(search::SearchArgs),
    /// Genetic layer-mapping search: which teacher layer each student layer learns from, scored
    /// by short proxy distillations; prints the best `--map` for `distill`/`compress`.
    MapSearch(search::MapSearchArgs),
    /// Predict architectures' latency from a latency table (`profile --out`); with --measure,
    /// time them as `bench` does and report the predictor's error.
    PredictLatency(search::PredictLatencyArgs),
}

fn main() -> ExitCode {
    keep_freed_memory();
    let cli = Cli::parse();
    match dispatch(cli.command) {
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

fn dispatch(command: Command) -> Result<()> {
    match command {
        Command::Embed(a) => infer::embed(&a),
        Command::Classify(a) => infer::classify(&a),
        Command::Tag(a) => tag::tag_cmd(&a),
        Command::Inspect(a) => package::inspect(&a),
        Command::Pack(a) => package::pack_cmd(a),
        Command::Bench(a) => infer::bench_cmd(&a),
        Command::Demo(a) => infer::demo(&a),
        Command::Profile(a) => profile::profile(&a),
        Command::Distill(a) => train::distill_cmd(&a),
        Command::Quantize(a) => train::quantize_cmd(&a),
        Command::Eval(a) => eval::eval_cmd(&a),
        Command::Compress(a) => train::compress_cmd(&a),
        Command::Finetune(a) => finetune::finetune_cmd(&a),
        Command::Prune(a) => finetune::prune_cmd(&a),
        Command::Cvt(a) => cvt::cvt_cmd(&a),
        Command::Search(a) => search::search_cmd(&a),
        Command::MapSearch(a) => search::map_search_cmd(&a),
        Command::PredictLatency(a) => search::predict_latency(&a),
    }
}
