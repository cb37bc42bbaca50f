//! Where quantization error comes from, before any training: the embedding cosine (mean-pooled
//! last layer, 5th percentile too) of the teacher with
//! - 8-bit activations at one kind of site at a time (weights at 8 bits with absmax steps, which
//!   alone cost < 0.001), with least-error activation steps;
//! - W4 (g32) and W2 (g32, g16) weights with each step initialisation and float activations;
//! - the start of KDLSQ (`convert::quantize` after `convert::calibrate_activations`) at W8, W4
//!   and W2 with A8, without and with activation smoothing.
//!
//! `cargo run --release -p bertling-compressor --example quant_probe -- TEACHER_DIR TEXTS [PARTS]`
//! (TEXTS: one sentence per line; the first 32 calibrate, the next 192 are measured; PARTS: a
//! comma-separated choice of `sites`, `start`, `weights`, default all three).

use std::collections::BTreeMap;
use std::path::Path;

use bertling_compressor::convert::{activation_step, calibrate_activations, dense_layers_mut, encoder_from_data, quantize, QuantPlan, StepInit};
use bertling_compressor::corpus::Corpus;
use bertling_compressor::lsq::weight_steps;
use bertling_compressor::student::{Batch, Encoder, Lsq, PooledReference};
use burn::module::Param;
use burn::prelude::*;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn floats<const D: usize>(t: Tensor<D>) -> Res<Vec<f32>> {
    t.into_data().try_into_vec_as::<f32>().map_err(|e| format!("{e:?}").into())
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().collect();
    let (teacher_dir, texts, parts) = match &args[..] {
        [_, t, x] => (t, x, "sites,start,weights"),
        [_, t, x, p] => (t, x, p.as_str()),
        _ => return Err("usage: quant_probe TEACHER_DIR TEXTS [sites,start,weights]".into()),
    };
    let part = |name: &str| parts.split(',').any(|p| p == name);
    let dev = Device::flex();
    let data = bertling_runtime::hf::load_hf_dir(Path::new(teacher_dir))?;
    let teacher = encoder_from_data(&data, &dev)?;
    let mut corpus = Corpus::open(Path::new(texts), &data.tokenizer_json, 128)?;
    let calib = Batch::new(&corpus.next_batch(32)?, &dev);
    let mut batches = Vec::new();
    for _ in 0..6 {
        batches.push(Batch::new(&corpus.next_batch(32)?, &dev));
    }
    let reference = PooledReference::new(&teacher, batches);
    let eval = |enc: &Encoder| -> Res<(f32, f32)> { Ok(reference.cosine(enc)) };

    // Activation ranges per site: per-channel max |x| (median, 99th percentile, max).
    let mut act_steps: BTreeMap<String, f32> = BTreeMap::new();
    let mut stats = Vec::new();
    teacher.forward_observed(&calib, &mut |name, x| {
        act_steps.insert(name.to_string(), activation_step(x, &calib.mask, 8, StepInit::Mse));
        let xm = x.clone() * calib.mask.clone().unsqueeze_dim::<3>(2);
        stats.push((name.to_string(), xm.abs().max_dim(0).max_dim(1).flatten::<1>(0, 2)));
    });
    println!("| site | channel max |x|: median | p99 | max |\n|---|---|---|---|");
    for (name, t) in stats {
        let mut v = floats(t)?;
        v.sort_by(f32::total_cmp);
        println!("| {name} | {:.2} | {:.2} | {:.2} |", v[v.len() / 2], v[v.len() * 99 / 100], v[v.len() - 1]);
    }

    let w8a8 = |sites: &dyn Fn(&str) -> bool| -> Res<Encoder> {
        let mut enc = teacher.clone();
        for (name, d) in dense_layers_mut(&mut enc) {
            let [rows, _] = d.weight.val().dims();
            let step = d.weight.val().abs().max_dim(1).div_scalar(127.0).reshape([rows, 1]);
            let act = sites(&name).then(|| Param::from_tensor(Tensor::from_data(TensorData::new(vec![act_steps[&name]], [1]), &dev)));
            let act_bits = if act.is_some() { 8 } else { 0 };
            d.quant = Some(Lsq { step: Param::from_tensor(step), bits: 8, group: 0, act_step: act, act_bits, act_smooth: None });
        }
        Ok(enc)
    };
    println!("\n| configuration | cosine mean | p5 |\n|---|---|---|");
    let row = |what: &str, (m, p): (f32, f32)| println!("| {what} | {m:.4} | {p:.4} |");
    if part("sites") {
        row("W8 absmax, float activations", eval(&w8a8(&|_| false)?)?);
        row("W8 absmax, A8 everywhere", eval(&w8a8(&|_| true)?)?);
        for site in ["attn.qkv", "attn.out", "ffn.in", "ffn.out"] {
            row(&format!("W8 absmax, A8 at {site} only"), eval(&w8a8(&|n| n.ends_with(site))?)?);
        }
    }
    // The library's own starting point of KDLSQ: every matrix at `bits` (g32, least-error
    // steps), embeddings at 8 bits, A8 with least-error steps, and smoothing of strength α.
    let kdlsq_start = |bits: u8, smooth: Option<f32>| -> Res<Encoder> {
        let plan = QuantPlan { act_bits: Some(8), weight_init: StepInit::Mse, act_init: StepInit::Mse, smooth, ..QuantPlan::weights(bits, Some(32)) };
        let acts = calibrate_activations(&teacher, &calib, 8, StepInit::Mse, smooth)?;
        Ok(quantize(teacher.clone(), &plan, &acts)?)
    };
    for bits in [4u8, 2].into_iter().filter(|_| part("start")) {
        for smooth in [None, Some(0.5f32), Some(0.7), Some(0.8), Some(0.9), Some(1.0)] {
            let label = smooth.map_or("none".to_string(), |a| format!("α={a}"));
            row(&format!("KDLSQ start W{bits} g32 A8, embeddings 8-bit, smoothing {label}"), eval(&kdlsq_start(bits, smooth)?)?);
        }
    }
    for (bits, group) in [(4u8, 32usize), (2, 32), (2, 16)].into_iter().filter(|_| part("weights")) {
        for (init, label) in [(StepInit::Lsq, "lsq"), (StepInit::Mse, "mse")] {
            let mut enc = teacher.clone();
            for (_, d) in dense_layers_mut(&mut enc) {
                let [rows, cols] = d.weight.val().dims();
                let steps = weight_steps(&floats(d.weight.val())?, rows, cols, bits, Some(group), init);
                let groups = steps.len() / rows;
                let step = Param::from_tensor(Tensor::from_data(TensorData::new(steps, [rows, groups]), &dev));
                d.quant = Some(Lsq { step, bits: bits as usize, group, act_step: None, act_bits: 0, act_smooth: None });
            }
            row(&format!("W{bits} g{group}, {label} steps, float activations"), eval(&enc)?);
        }
    }
    Ok(())
}
