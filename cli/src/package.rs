//! Packages: `pack` (from a Hugging Face directory or another package) and `inspect`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use bertling_compressor::convert::QuantPlan;
use bertling_compressor::eval::{agreement, read_texts};
use bertling_compressor::lsq::StepInit;
use bertling_compressor::recipe;
use bertling_runtime::spec::names;
use bertling_runtime::{load_model_data, write_package_file, LoadOptions, Model, Precision};
use clap::Args;

use crate::error::{CliError, Result};
use crate::train::QuantFlags;

// `inspect`'s arguments.
#[derive(Args)]
pub(crate) struct InspectArgs {
    /// A bertling package or a Hugging Face model directory.
    path: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

// `pack`'s flags.
#[derive(Args)]
pub(crate) struct PackArgs {
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
    #[arg(long, conflicts_with_all = [
        "bits", "group", "embedding_bits", "act_bits", "calibrate", "smooth", "act_steps",
    ])]
    rewrite: bool,
}

/// `pack`: re-encode, round to nearest, or calibrate and round.
pub(crate) fn pack_cmd(a: PackArgs) -> Result<()> {
    let PackArgs {
        from,
        bits,
        group,
        embedding_bits,
        out,
        act_bits,
        calibrate,
        calibration_sentences,
        smooth,
        act_steps,
        rewrite,
    } = a;
    if rewrite {
        let bytes = write_package_file(&load_model_data(&from)?, &out)?;
        eprintln!(
            "wrote {} ({:.3} MB, format version {})",
            out.display(),
            bytes as f64 / 1e6,
            bertling_runtime::spec::FORMAT_VERSION
        );
        return Ok(());
    }
    match act_bits {
        0 if calibrate.is_none() && act_steps.is_none() && smooth.is_none() => {
            pack(&from, bits, group, embedding_bits, &out)
        }
        0 => Err(CliError::Usage(
            "--calibrate, --act-steps and --smooth are for quantized activations: add \
             --act-bits 8 (or 4)"
                .into(),
        )),
        _ => {
            let Some(file) = calibrate else {
                return Err(CliError::Usage(
                    "--act-bits needs --calibrate FILE: a few sentences, one per line, to set \
                     the activation steps"
                        .into(),
                ));
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

pub(crate) fn inspect(a: &InspectArgs) -> Result<()> {
    let (path, json) = (a.path.as_path(), a.json);
    let data = load_model_data(path)?;
    let model = Model::from_data(data, &LoadOptions { threads: Some(1), ..Default::default() })?;
    let info = model.info();
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(info).map_err(|e| CliError::Usage(e.to_string()))?
        );
        return Ok(());
    }
    match path.is_file() {
        true => println!(
            "model:        {} (package format version {})",
            path.display(),
            info.spec.format_version
        ),
        false => println!("model:        {}", path.display()),
    }
    println!("parameters:   {} ({:.1} M)", info.parameters, info.parameters as f64 / 1e6);
    println!("in memory:    {} bytes of weights ({:.1} MB)", info.bytes, info.bytes as f64 / 1e6);
    println!("matrix bits:  {:?}   embedding bits: {:?}", info.matrix_bits, info.embedding_bits);
    let e = &info.spec.embeddings;
    println!(
        "embeddings:   vocab {} x width {}, {} positions, {} segment types",
        e.vocab_size, e.width, e.max_positions, e.type_vocab_size
    );
    println!("blocks:       {}", info.blocks.len());
    for (i, b) in info.blocks.iter().enumerate() {
        let q = info
            .spec
            .quantized
            .iter()
            .filter(|(k, _)| names::block(i).owns(k))
            .map(|(_, q)| {
                let w = format!(
                    "{}-bit{}",
                    q.bits,
                    q.group.map(|g| format!("/g{g}")).unwrap_or_default()
                );
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
        println!(
            "  {i:>3} {:<13} {}  [{q}]",
            b.kind(),
            serde_json::to_string(b).unwrap_or_default()
        );
    }
    println!(
        "pooling:      {:?}{}",
        info.spec.pooling.mode,
        if info.spec.pooling.normalize { ", L2-normalised" } else { "" }
    );
    println!("max tokens:   {}", info.max_seq_len);
    match &info.labels {
        Some(l) => println!("head:         classification, labels {l:?}"),
        None => println!("head:         none (sentence embeddings)"),
    }
    let p = &info.spec.provenance;
    println!(
        "provenance:   teacher sha256 {}, source {}, recipe {}",
        p.teacher_sha256, p.source, p.recipe
    );
    if !p.metrics.is_null() {
        println!("metrics:      {}", p.metrics);
    }
    Ok(())
}

fn pack(from: &Path, bits: u8, group: Option<usize>, embedding_bits: u8, out: &Path) -> Result<()> {
    let precision = match bits {
        32 => Precision::F32,
        16 => Precision::F16,
        2..=8 => Precision::Quantized { bits, group, embedding_bits },
        other => {
            return Err(CliError::Usage(format!(
                "--bits {other} is not supported: use 32, 16, or 2 to 8"
            )))
        }
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
    eprintln!(
        "wrote {} ({:.1} MB, {} parameters, {}-bit matrices)",
        out.display(),
        bytes as f64 / 1e6,
        packed.parameters(),
        bits
    );
    Ok(())
}

/// `pack --act-bits`: calibrated round-to-nearest weights and activations, no training; prints
/// the embedding cosine to the source model on the calibration sentences.
fn pack_calibrated(
    from: &Path,
    plan: &QuantPlan,
    calibration: &Path,
    sentences: usize,
    out: &Path,
) -> Result<()> {
    if !(2..=8).contains(&plan.bits) {
        return Err(CliError::Usage(format!(
            "--bits {} with --act-bits: quantized activations need quantized weights (--bits 2..8)",
            plan.bits
        )));
    }
    let data = load_model_data(from)?;
    let t = Instant::now();
    let packed =
        bertling_compressor::pipeline::calibrated_rtn(&data, plan, calibration, sentences)?;
    let bytes = write_package_file(&packed, out)?;
    let texts = read_texts(calibration, sentences)?;
    let opts = LoadOptions::default();
    let (source, student) = (Model::from_data(data, &opts)?, Model::from_data(packed, &opts)?);
    let agree = agreement(&source, &student, &texts)?;
    eprintln!(
        "wrote {} ({:.1} MB, W{}A{} in {:.1} s); embedding cosine to {} on {} calibration \
         sentences: mean {:.4}, 5th percentile {:.4}",
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
