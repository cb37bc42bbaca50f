//! wgpu backend benchmarks on whatever adapter is present (WGPU_BACKEND selects): the matmul
//! family per weight storage, one-block models per op family (attention, feed-forward,
//! separable convolution; each includes the embedding gather, LayerNorms and pooling), and
//! all-MiniLM-L6-v2 end to end.
//!
//!   cargo bench -p bertling-benches --bench gpu
//!
//! On software adapters (lavapipe, llvmpipe) these numbers say nothing about GPUs.

use std::sync::Arc;

use bertling_benches::{inputs, minilm_dir};
use bertling_runtime::data::ActQuant;
use bertling_runtime::gpu::{AdapterChoice, GpuContext, GpuEncoder, GpuOptions};
use bertling_runtime::profile::one_block_model;
use bertling_runtime::spec::BlockSpec;
use bertling_runtime::{Backend, Input, LoadOptions, Model, Precision, QuantMatrix, TensorData};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

fn context() -> Option<Arc<GpuContext>> {
    match GpuContext::new(AdapterChoice::Any) {
        Ok(c) => {
            eprintln!("adapter: {}", c.describe());
            Some(Arc::new(c))
        }
        Err(e) => {
            eprintln!("no GPU benchmarks: {e}");
            None
        }
    }
}

fn matmul(c: &mut Criterion) {
    let Some(ctx) = context() else { return };
    let (n, k) = (1536usize, 384usize);
    let w: Vec<f32> = (0..n * k).map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5).collect();
    let mut storages: Vec<(String, TensorData)> = vec![("f32".into(), TensorData::F32 { shape: vec![n, k], data: w.clone() })];
    for bits in [8u8, 4, 2] {
        let matrix = QuantMatrix::quantize_rtn(&w, n, k, bits, Some(32)).unwrap();
        storages.push((format!("w{bits}g32"), TensorData::Quant { matrix: matrix.clone(), act: None }));
        storages.push((format!("w{bits}g32a8"), TensorData::Quant { matrix, act: Some(ActQuant::new(8, 0.02)) }));
    }
    let mut g = c.benchmark_group("gpu_linear_384x1536");
    g.sample_size(10);
    for m in [1usize, 128] {
        let x: Vec<f32> = (0..m * k).map(|i| ((i * 31) % 97) as f32 / 97.0).collect();
        g.throughput(Throughput::Elements((2 * m * n * k) as u64));
        for (name, t) in &storages {
            let enc = GpuEncoder::linear_only(ctx.clone(), t, &vec![0.0; n], &GpuOptions::default()).unwrap();
            g.bench_with_input(BenchmarkId::new(name.as_str(), m), &m, |b, &m| b.iter(|| enc.run_linear(&x, m).unwrap()));
        }
    }
    g.finish();
}

fn blocks(c: &mut Criterion) {
    let Some(ctx) = context() else { return };
    let mut g = c.benchmark_group("gpu_one_block_w256_s128");
    g.sample_size(10);
    let ops = [
        ("attention_h8xd32", BlockSpec::Attention { width: 256, heads: 8, head_dim: 32 }),
        ("feed_forward_i1024", BlockSpec::FeedForward { width: 256, inner: 1024 }),
        ("sep_conv_k5", BlockSpec::SepConv { width: 256, kernel: 5 }),
    ];
    let inp: Vec<Input> = Input::synthetic(1, 128, 64);
    for (name, op) in ops {
        for (p, precision) in [("f32", Precision::F32), ("w4", Precision::Quantized { bits: 4, group: None, embedding_bits: 8 })] {
            let data = one_block_model(&op, precision, 128, 1).unwrap();
            let enc = GpuEncoder::new(ctx.clone(), &data, &GpuOptions::default()).unwrap();
            g.bench_function(BenchmarkId::new(name, p), |b| b.iter(|| enc.forward(&inp, bertling_runtime::gpu::Want::Pooled).unwrap()));
        }
    }
    g.finish();
}

fn end_to_end(c: &mut Criterion) {
    let Some(dir) = minilm_dir() else {
        eprintln!("all-MiniLM-L6-v2 not found: run scripts/fetch_model.sh");
        return;
    };
    let data = bertling_runtime::load_hf_dir(&dir).unwrap();
    let mut g = c.benchmark_group("gpu_minilm_e2e");
    g.sample_size(10);
    for (name, precision) in [
        ("f32", Precision::F32),
        ("w8", Precision::Quantized { bits: 8, group: None, embedding_bits: 8 }),
        ("w4g32", Precision::Quantized { bits: 4, group: Some(32), embedding_bits: 8 }),
        ("w2g32", Precision::Quantized { bits: 2, group: Some(32), embedding_bits: 8 }),
    ] {
        let Ok(model) = Model::from_data(data.convert(precision).unwrap(), &LoadOptions { backend: Backend::Wgpu, ..Default::default() }) else {
            eprintln!("no GPU adapter");
            return;
        };
        for (b, s) in [(1usize, 128usize), (32, 128)] {
            let inp = inputs(b, s);
            g.bench_function(BenchmarkId::new(name, format!("b{b}xs{s}")), |bench| bench.iter(|| model.embed_inputs(&inp).unwrap()));
        }
    }
    g.finish();
}

criterion_group!(benches, matmul, blocks, end_to_end);
criterion_main!(benches);
