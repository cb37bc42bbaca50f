//! CPU backend benchmarks: kernels (matrix products per weight storage, normalisation,
//! activation) and the whole all-MiniLM-L6-v2 encoder at the anchor shapes.
//!
//!   cargo bench -p bertling-benches --bench cpu
//!
//! Ratios against ONNX Runtime come from `benches/compare_ort.sh`, which times both in one run.

use bertling_benches::{inputs, minilm_dir};
use bertling_runtime::cpu::linear::{Linear, Weights};
use bertling_runtime::cpu::{ops, Team};
use bertling_runtime::{ActQuant, LoadOptions, Model, Precision, QuantMatrix};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

fn kernels(c: &mut Criterion) {
    let team = Team::new(2).expect("threads");
    let (k, n) = (384usize, 1536usize);
    let w: Vec<f32> = (0..n * k).map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5).collect();
    let mut g = c.benchmark_group("linear_384x1536");
    for m in [16usize, 128, 1024] {
        let x: Vec<f32> = (0..m * k).map(|i| ((i * 31) % 97) as f32 / 97.0).collect();
        g.throughput(Throughput::Elements((2 * m * n * k) as u64));
        let mut variants = vec![("f32".to_string(), Weights::F32(w.clone()), None)];
        for bits in [8u8, 4, 2] {
            variants.push((format!("w{bits}g32"), Weights::Quant(QuantMatrix::quantize_rtn(&w, n, k, bits, Some(32)).unwrap()), None));
        }
        // Quantized activations: the integer kernels.
        for (bits, group) in [(8u8, None), (4, None), (4, Some(32)), (2, None)] {
            let q = QuantMatrix::quantize_rtn(&w, n, k, bits, group).unwrap();
            let name = format!("w{bits}{}a8", group.map_or(String::new(), |g| format!("g{g}")));
            variants.push((name, Weights::Quant(q), Some(ActQuant::new(8, 1.0 / 127.0))));
        }
        // Per-token activation steps: a maximum per row, and a scale per output row.
        let q = QuantMatrix::quantize_rtn(&w, n, k, 4, Some(32)).unwrap();
        variants.push(("w4g32a8-token".to_string(), Weights::Quant(q), Some(ActQuant::per_token(8))));
        for (name, weights, act) in variants {
            let lin = Linear::new(n, k, weights, vec![0.0; n], act);
            g.bench_with_input(BenchmarkId::new(name, m), &m, |b, &m| b.iter(|| lin.forward(&x, m, &team)));
        }
    }
    g.finish();
    let mut g = c.benchmark_group("elementwise_128x1536");
    let base: Vec<f32> = (0..128 * 1536).map(|i| ((i * 31) % 97) as f32 / 20.0 - 2.4).collect();
    g.throughput(Throughput::Elements(base.len() as u64));
    g.bench_function("gelu", |b| b.iter_batched_ref(|| base.clone(), |x| ops::gelu(x), criterion::BatchSize::SmallInput));
    let (gamma, beta) = (vec![1.0f32; 1536], vec![0.0f32; 1536]);
    g.bench_function("layer_norm", |b| {
        b.iter_batched_ref(|| base.clone(), |x| ops::layer_norm(x, 1536, &gamma, &beta, 1e-12), criterion::BatchSize::SmallInput)
    });
    g.bench_function("softmax_rows", |b| b.iter_batched_ref(|| base.clone(), |x| ops::softmax_rows(x, 128, 0.17), criterion::BatchSize::SmallInput));
    g.finish();
}

fn end_to_end(c: &mut Criterion) {
    let Some(dir) = minilm_dir() else {
        eprintln!("all-MiniLM-L6-v2 not found: run scripts/fetch_model.sh to benchmark the whole encoder");
        return;
    };
    let data = bertling_runtime::load_hf_dir(&dir).expect("load model");
    let mut g = c.benchmark_group("minilm_e2e_2threads");
    g.sample_size(20);
    for (name, precision) in [
        ("f32", Precision::F32),
        ("w8", Precision::Quantized { bits: 8, group: None, embedding_bits: 8 }),
        ("w4g32", Precision::Quantized { bits: 4, group: Some(32), embedding_bits: 8 }),
    ] {
        let model = Model::from_data(data.convert(precision).unwrap(), &LoadOptions { threads: Some(2), ..Default::default() }).unwrap();
        for (b, s) in [(1usize, 16usize), (1, 128), (8, 128)] {
            let inp = inputs(b, s);
            g.bench_function(BenchmarkId::new(name, format!("b{b}xs{s}")), |bench| bench.iter(|| model.embed_inputs(&inp).unwrap()));
        }
    }
    g.finish();
}

criterion_group!(benches, kernels, end_to_end);
criterion_main!(benches);
