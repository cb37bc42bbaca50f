//! Block-wise reconstruction of the teacher quantized at W2 (or any width): the embedding
//! cosine to the teacher (mean-pooled last layer) before and after.
//!
//! `cargo run --release -p bertling-compressor --example blockwise_probe -- TEACHER_DIR TRAIN EVAL BITS ITERS LR [BATCHES] [OUT.bertling]`
//! (TRAIN: calibration sentences, BATCHES batches of 32 from its start, default 8; EVAL: the
//! first 192 lines are measured).

use std::path::Path;

use bertling_compressor::blockwise::{reconstruct, BlockwiseConfig};
use bertling_compressor::convert::{calibrate_activations, encoder_from_data, encoder_to_data, quantize, QuantPlan, StepInit};
use bertling_compressor::corpus::Corpus;
use bertling_compressor::student::{Batch, PooledReference};
use burn::prelude::*;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 7 {
        return Err("usage: blockwise_probe TEACHER_DIR TRAIN EVAL BITS ITERS LR [BATCHES] [OUT]".into());
    }
    let (bits, iters, lr): (u8, usize, f64) = (args[4].parse()?, args[5].parse()?, args[6].parse()?);
    let nb: usize = args.get(7).map(|s| s.parse()).transpose()?.unwrap_or(8);
    let plain = Device::flex();
    let device = plain.clone().autodiff();
    let data = bertling_runtime::hf::load_hf_dir(Path::new(&args[1]))?;
    let teacher = encoder_from_data(&data, &plain)?;
    let mut train = Corpus::open(Path::new(&args[2]), &data.tokenizer_json, 128)?;
    let calib: Vec<_> = (0..nb).map(|_| train.next_batch(32)).collect::<Result<_, _>>()?;
    let mut eval_corpus = Corpus::open(Path::new(&args[3]), &data.tokenizer_json, 128)?;
    let eval_batches: Vec<Batch> = (0..6).map(|_| eval_corpus.next_batch(32).map(|b| Batch::new(&b, &plain))).collect::<Result<_, _>>()?;
    let reference = PooledReference::new(&teacher, eval_batches);
    let plan = QuantPlan { act_bits: Some(8), weight_init: StepInit::Mse, act_init: StepInit::Mse, ..QuantPlan::weights(bits, Some(32)) };
    let acts = calibrate_activations(&teacher, &Batch::new(&calib[0], &plain), 8, StepInit::Mse, None)?;
    let start = quantize(teacher.clone(), &plan, &acts)?;
    let (m, p) = reference.cosine(&start);
    println!("W{bits} g32 A8 start: cosine {m:.4} p5 {p:.4}");
    let t0 = std::time::Instant::now();
    let cfg = BlockwiseConfig { iters, lr, attention: 1.0 };
    let student = start.train();
    let done = reconstruct(student, &teacher, &calib, &cfg, &device, |p| {
        if p.iter == p.iters || p.iter % 50 == 0 {
            eprintln!("block {}/{} step {}/{} loss {:.5} ({:.0} s)", p.block + 1, p.blocks, p.iter, p.iters, p.loss, t0.elapsed().as_secs_f64());
        }
    })?;
    let done = done.valid();
    let (m, p) = reference.cosine(&done);
    println!("W{bits} g32 A8 after {iters} steps per block (lr {lr}, {nb} batches): cosine {m:.4} p5 {p:.4} in {:.0} s", t0.elapsed().as_secs_f64());
    if let Some(out) = args.get(8) {
        let pkg = encoder_to_data(&done, &data)?;
        bertling_runtime::write_package_file(&pkg, Path::new(out))?;
    }
    Ok(())
}
