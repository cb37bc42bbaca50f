//! The wgpu backend against the CPU backend and the PyTorch fixtures. Runs on whatever adapter
//! `WGPU_BACKEND` selects (CI: lavapipe for Vulkan, llvmpipe for GL); fails when there is none.

mod common;

use std::sync::OnceLock;

use bertling_runtime::cpu::linear::{Linear, Weights};
use bertling_runtime::cpu::Team;
use bertling_runtime::data::{ActQuant, ActStep};
use bertling_runtime::gpu::{AdapterChoice, GpuContext, GpuEncoder, GpuOptions};
use bertling_runtime::spec::{BlockSpec, EmbeddingSpec, HeadSpec, ModelSpec, PoolingMode, PoolingSpec};
use bertling_runtime::QuantMatrix;
use bertling_runtime::{cosine, Backend, Input, LoadOptions, Model, ModelData, Precision, TensorData};
use common::{minilm_dir, tokenizer_json, Golden, Rng};

fn gpu() -> LoadOptions {
    LoadOptions { backend: Backend::Wgpu, ..Default::default() }
}

/// The GPU with every optional feature turned off: the fallback kernel variants.
fn gpu_fallback() -> LoadOptions {
    LoadOptions { backend: Backend::Wgpu, gpu: GpuOptions::portable(), ..Default::default() }
}

fn cpu() -> LoadOptions {
    LoadOptions { backend: Backend::Cpu, threads: Some(2), ..Default::default() }
}

/// The adapter is the one asked for: a test run for GL must not silently use Vulkan.
fn check_backend(model: &Model) {
    let device = model.device();
    if let Ok(want) = std::env::var("WGPU_BACKEND") {
        assert!(device.to_lowercase().contains(&want.to_lowercase()), "asked for {want}, got {device}");
    }
    eprintln!("adapter: {device}");
}

/// A student with ragged dimensions (widths and inner sizes not multiples of any tile), every
/// block kind, a pooler + classifier head.
fn random_model(seed: u64, cls: bool, normalize: bool) -> ModelData {
    let blocks = vec![
        BlockSpec::Attention { width: 40, heads: 3, head_dim: 12 },
        BlockSpec::FeedForward { width: 40, inner: 67 },
        BlockSpec::SepConv { width: 40, kernel: 7 },
        BlockSpec::Projection { input: 40, output: 33 },
        BlockSpec::SepConv { width: 33, kernel: 3 },
        BlockSpec::Identity { width: 33 },
        BlockSpec::Attention { width: 33, heads: 1, head_dim: 20 },
        BlockSpec::FeedForward { width: 33, inner: 50 },
        BlockSpec::SepConv { width: 33, kernel: 5 },
    ];
    let spec = ModelSpec {
        format_version: bertling_runtime::spec::FORMAT_VERSION,
        embeddings: EmbeddingSpec { vocab_size: 44, max_positions: 160, type_vocab_size: 2, width: 40 },
        blocks,
        layer_norm_eps: 1e-12,
        max_seq_len: 150,
        pooling: PoolingSpec { mode: if cls { PoolingMode::Cls } else { PoolingMode::Mean }, normalize },
        head: Some(HeadSpec { pooler: true, labels: vec!["a".into(), "b".into(), "c".into()], kind: Default::default() }),
        quantized: Default::default(),
        provenance: Default::default(),
    };
    let mut rng = Rng(seed);
    let mut tensors = std::collections::BTreeMap::new();
    for t in spec.expected_tensors() {
        let n: usize = t.shape.iter().product();
        let data = if t.name.ends_with("ln.weight") { rng.vec(n, 0.3).iter().map(|v| 1.0 + v).collect() } else { rng.vec(n, 0.4) };
        tensors.insert(t.name.clone(), TensorData::F32 { shape: t.shape.clone(), data });
    }
    let m = ModelData { spec, tensors, tokenizer_json: tokenizer_json() };
    m.validate().unwrap();
    m
}

fn ragged_inputs(seed: u64) -> Vec<Input> {
    let mut rng = Rng(seed);
    [1usize, 3, 129, 17, 2]
        .iter()
        .map(|&n| Input { ids: (0..n).map(|_| (rng.next_u64() % 44) as u32).collect(), type_ids: (0..n).map(|i| (i * 2 >= n) as u32).collect() })
        .collect()
}

/// Asserts `a` matches `b` within `tol` relative to max(1, |b|).
fn assert_close(a: &[f32], b: &[f32], tol: f32, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= tol * y.abs().max(1.0), "{what}[{i}]: gpu {x} vs cpu {y}");
    }
}

/// Every block's output, the pooled vectors and the logits, GPU against CPU.
fn parity(data: &ModelData, inputs: &[Input], tol: f32, what: &str) {
    parity_with(data, inputs, tol, what, &gpu())
}

fn parity_with(data: &ModelData, inputs: &[Input], tol: f32, what: &str, options: &LoadOptions) {
    let g = Model::from_data(data.clone(), options).unwrap();
    let c = Model::from_data(data.clone(), &cpu()).unwrap();
    check_backend(&g);
    let (ge, ce) = (g.embed_inputs(inputs).unwrap(), c.embed_inputs(inputs).unwrap());
    for (i, (a, b)) in ge.iter().zip(&ce).enumerate() {
        assert_close(a, b, tol, &format!("{what} pooled {i}"));
    }
    let (gt, ct) = (g.token_states(inputs).unwrap(), c.token_states(inputs).unwrap());
    for (i, (a, b)) in gt.iter().zip(&ct).enumerate() {
        assert_close(a, b, tol, &format!("{what} tokens {i}"));
    }
    let (gl, cl) = (g.classify_inputs(inputs).unwrap(), c.classify_inputs(inputs).unwrap());
    for (i, (a, b)) in gl.iter().zip(&cl).enumerate() {
        assert_close(&a.probs, &b.probs, tol, &format!("{what} probs {i}"));
    }
}

#[test]
fn float_kernels_match_cpu_on_ragged_shapes() {
    for (seed, cls, normalize) in [(1, false, true), (2, true, false)] {
        let data = random_model(seed, cls, normalize);
        parity(&data, &ragged_inputs(seed), 1e-4, "f32");
        parity_with(&data, &ragged_inputs(seed), 1e-4, "f32 portable", &gpu_fallback());
        parity(&data.convert(Precision::F16).unwrap(), &ragged_inputs(seed + 10), 1e-4, "f16 weights");
    }
}

/// The adapter's optional features are used where present (so the tests above cover those
/// variants), and turning them off gives the portable variants.
#[test]
fn variants_follow_the_adapter() {
    let ctx = context();
    let data = random_model(7, false, true);
    let full = GpuEncoder::new(ctx.clone(), &data, &GpuOptions { f16: true, ..GpuOptions::default() }).unwrap();
    let caps = &ctx.caps;
    eprintln!("{}: {caps:?} -> {:?}", ctx.describe(), full.options());
    let o = full.options();
    assert_eq!((o.packed_dot, o.subgroups, o.f16), (caps.packed_dot, caps.subgroups, caps.shader_f16));
    let portable = GpuEncoder::new(ctx, &data, &GpuOptions::portable()).unwrap();
    let o = portable.options();
    assert!(!o.packed_dot && !o.subgroups && !o.f16);
    // f16 arithmetic stays close on a whole model.
    let f16 = LoadOptions { backend: Backend::Wgpu, gpu: GpuOptions { f16: true, ..GpuOptions::default() }, ..Default::default() };
    let (g, c) = (Model::from_data(data.clone(), &f16).unwrap(), Model::from_data(data, &cpu()).unwrap());
    let inputs = ragged_inputs(7);
    for (a, b) in g.embed_inputs(&inputs).unwrap().iter().zip(c.embed_inputs(&inputs).unwrap()) {
        assert!(cosine(a, &b) > 0.999, "f16 cosine {}", cosine(a, &b));
    }
}

#[test]
fn quantized_kernels_match_cpu_every_width_and_granularity() {
    let base = random_model(3, false, true);
    for bits in 2..=8u8 {
        for group in [None, Some(16), Some(32), Some(64), Some(128)] {
            if group == Some(16) && bits > 4 || group == Some(64) && bits % 2 == 1 || group == Some(128) && bits != 4 {
                continue; // keep the run short: every width sees per-channel and group 32
            }
            let q = base.convert(Precision::Quantized { bits, group, embedding_bits: bits }).unwrap();
            parity(&q, &ragged_inputs(bits as u64), 1e-4, &format!("w{bits} g{group:?}"));
        }
    }
}

#[test]
fn quantized_activations_match_cpu() {
    let mut q = random_model(4, true, true).convert(Precision::Quantized { bits: 4, group: Some(32), embedding_bits: 8 }).unwrap();
    for (name, t) in q.tensors.iter_mut() {
        if let TensorData::Quant { act, .. } = t {
            if name.starts_with("blocks.") {
                // Steps at odd multiples of 1/1024 keep the inputs away from rounding ties.
                let bits = if name.contains("ffn.out") { 4 } else { 8 };
                *act = Some(ActQuant::new(bits, if bits == 4 { 0.3007 } else { 0.0213 }));
                q.spec.quantized.get_mut(name).unwrap().act_bits = Some(bits);
            }
        }
    }
    q.validate().unwrap();
    parity_with(&q, &ragged_inputs(4), 1e-4, "w4a8 dot4I8Packed", &gpu());
    parity_with(&q, &ragged_inputs(4), 1e-4, "w4a8 exact fallback", &gpu_fallback());
    // Every width goes through the integer path in `matmul_kernels_match_cpu_linear`, on
    // identical inputs. Whole models compare only where no activation lands within float
    // noise of a rounding boundary: a code that flips between backends moves that value by a
    // whole step, which deeper layers carry on (w3a8 on this model shows one such flip).
}

fn minilm() -> &'static Model {
    static M: OnceLock<Model> = OnceLock::new();
    M.get_or_init(|| Model::load(minilm_dir(), &gpu()).expect("all-MiniLM-L6-v2 on the GPU"))
}

fn texts() -> Vec<String> {
    common::golden_texts()
}

#[test]
fn minilm_matches_pytorch_on_the_gpu() {
    let golden = Golden::load("minilm_golden.safetensors");
    let texts = texts();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let model = minilm();
    check_backend(model);
    let worst = common::check_minilm_hidden(model, 1e-3);
    let emb = model.embed(&refs).unwrap();
    for (i, e) in emb.iter().enumerate() {
        let (_, want) = golden.f32(&format!("input{i}.embedding"));
        let c = cosine(e, &want);
        assert!(c > 0.9999, "input {i}: cosine {c}");
    }
    eprintln!("GPU worst hidden |diff| {worst:e}");
}

#[test]
fn minilm_quantized_gpu_matches_cpu() {
    let data = bertling_runtime::load_hf_dir(&minilm_dir()).unwrap();
    let texts = texts();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    for (bits, group) in [(8u8, None), (4, Some(32)), (2, Some(32))] {
        let q = data.convert(Precision::Quantized { bits, group, embedding_bits: 8 }).unwrap();
        let bytes = bertling_runtime::write_package(&q).unwrap();
        let g = Model::from_package_bytes(&bytes, &gpu()).unwrap();
        let c = Model::from_package_bytes(&bytes, &cpu()).unwrap();
        let (a, b) = (g.token_states(&g.tokenize(&refs).unwrap()).unwrap(), c.token_states(&c.tokenize(&refs).unwrap()).unwrap());
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            assert_close(x, y, 1e-4, &format!("minilm w{bits} input {i}"));
        }
    }
}

/// Embedding tables split into many chunks (as tables larger than one storage binding are)
/// give the same results: float and 4-bit tables, chunks not aligned to anything.
#[test]
fn split_embedding_tables_match() {
    let data = random_model(8, false, true);
    let inputs = ragged_inputs(8);
    for d in [data.clone(), data.convert(Precision::Quantized { bits: 4, group: Some(32), embedding_bits: 4 }).unwrap()] {
        let chunked = LoadOptions { backend: Backend::Wgpu, gpu: GpuOptions { max_table_chunk: Some(1000), ..GpuOptions::default() }, ..Default::default() };
        parity_with(&d, &inputs, 1e-4, "chunked tables", &chunked);
    }
}

#[test]
fn batch_larger_than_one_pass_and_empty_batches() {
    let data = random_model(5, false, true);
    let g = Model::from_data(data.clone(), &gpu()).unwrap();
    let c = Model::from_data(data, &cpu()).unwrap();
    assert!(g.embed_inputs(&[]).unwrap().is_empty());
    let mut rng = Rng(9);
    let many: Vec<Input> = (0..300)
        .map(|i| {
            let n = 1 + i % 150;
            Input { ids: (0..n).map(|_| (rng.next_u64() % 44) as u32).collect(), type_ids: vec![0; n] }
        })
        .collect();
    let (a, b) = (g.embed_inputs(&many).unwrap(), c.embed_inputs(&many).unwrap());
    for (x, y) in a.iter().zip(&b) {
        assert_close(x, y, 1e-4, "large batch");
    }
}

fn context() -> std::sync::Arc<GpuContext> {
    static C: OnceLock<std::sync::Arc<GpuContext>> = OnceLock::new();
    C.get_or_init(|| std::sync::Arc::new(GpuContext::new(AdapterChoice::Any).expect("a wgpu adapter"))).clone()
}

/// The matmul kernels alone on identical inputs: every storage, every width 2..8, per-channel
/// and group steps, quantized activations through both integer variants, ragged shapes (K not
/// a multiple of the 16-wide tile, 1 to 129 rows: the matrix-vector and tiled forms).
#[test]
fn matmul_kernels_match_cpu_linear() {
    let team = Team::new(1).unwrap();
    let mut rng = Rng(11);
    let shapes = [(1usize, 33usize, 67usize), (3, 40, 40), (4, 7, 130), (5, 64, 32), (129, 50, 67), (37, 65, 129)];
    for (si, &(m, n, k)) in shapes.iter().enumerate() {
        let w = rng.vec(n * k, 0.5);
        let bias = rng.vec(n, 0.1);
        let x = rng.vec(m * k, 2.0);
        let mut storages: Vec<(String, TensorData)> = vec![
            ("f32".into(), TensorData::F32 { shape: vec![n, k], data: w.clone() }),
            ("f16".into(), TensorData::F16 { shape: vec![n, k], data: w.iter().map(|&v| half::f16::from_f32(v)).collect() }),
        ];
        for bits in 2..=8u8 {
            let group = [None, Some(16), Some(32), Some(64), Some(128)][(bits as usize + si) % 5];
            let matrix = QuantMatrix::quantize_rtn(&w, n, k, bits, group).unwrap();
            storages.push((format!("w{bits} {group:?}"), TensorData::Quant { matrix: matrix.clone(), act: None }));
            let act = ActQuant::new(if bits % 2 == 0 { 8 } else { 4 }, 0.05 + 0.01 * bits as f32);
            storages.push((format!("w{bits} {group:?} a{}", act.bits), TensorData::Quant { matrix: matrix.clone(), act: Some(act.clone()) }));
            // Per-column smoothing factors in [1/2, 2] before the activation quantizer.
            let smooth = rng.vec(k, 1.0).iter().map(|v| 2f32.powf(*v)).collect();
            let act = ActQuant { smooth: Some(smooth), ..act };
            storages.push((format!("w{bits} {group:?} a{} smoothed", act.bits), TensorData::Quant { matrix: matrix.clone(), act: Some(act.clone()) }));
            // Per-token steps (each row's max / Q_P), plain and smoothed.
            let act = ActQuant { step: ActStep::Token, ..act };
            storages
                .push((format!("w{bits} {group:?} a{} per token smoothed", act.bits), TensorData::Quant { matrix: matrix.clone(), act: Some(act.clone()) }));
            let act = ActQuant { smooth: None, ..act };
            storages.push((format!("w{bits} {group:?} a{} per token", act.bits), TensorData::Quant { matrix, act: Some(act) }));
        }
        for (name, t) in &storages {
            let (weights, act) = Weights::from_tensor(t);
            let want = Linear::new(n, k, weights, bias.clone(), act).forward(&x, m, &team);
            let f16 = GpuOptions { f16: true, ..GpuOptions::default() };
            for options in [GpuOptions::default(), GpuOptions::portable(), f16] {
                let g = GpuEncoder::linear_only(context(), t, &bias, &options).unwrap();
                let got = g.run_linear(&x, m).unwrap();
                // f16 arithmetic (tiled form, where the adapter has it) rounds products to
                // 11 significant bits.
                let tol = if g.options().f16 && m > 4 && !name.contains(" a") { 2e-2 } else { 1e-4 };
                assert_close(&got, &want, tol, &format!("{name} m{m} n{n} k{k} {:?}", g.options()));
            }
        }
    }
}

/// A token-classification model tags the same on the GPU as on the CPU (which tests/tag.rs
/// checks against transformers): the encoder on the GPU, the head on the host.
#[test]
fn tagger_matches_cpu() {
    let dir = common::fixtures().join("tiny_tok");
    let (g, c) = (Model::load(&dir, &gpu()).unwrap(), Model::load(&dir, &cpu()).unwrap());
    check_backend(&g);
    let texts = ["the actors were boring, but the ending!", "i really loved  this films .", "", "zebra plot"];
    let (a, b) = (g.tag_texts(&texts).unwrap(), c.tag_texts(&texts).unwrap());
    assert_eq!(a.len(), texts.len());
    for (x, y) in a.iter().flatten().zip(b.iter().flatten()) {
        assert_eq!((x.start, x.end, x.label_id), (y.start, y.end, y.label_id), "{x:?} vs {y:?}");
        assert!((x.prob - y.prob).abs() < 1e-4, "{x:?} vs {y:?}");
    }
    assert_eq!(a.iter().map(Vec::len).collect::<Vec<_>>(), b.iter().map(Vec::len).collect::<Vec<_>>());
    let words = ["the", "acting", "was", "great"];
    assert_eq!(g.tag_words(&words).unwrap().len(), 4);
}

/// The light tagger's two-stream convolutions (`bi_conv`: centred taps with zeros on each
/// stream's blind side, the shared map and norm on two rows per token) give the CPU's token
/// states, in float and with 6-bit weights and 8-bit per-token activations.
#[test]
fn bi_conv_streams_match_cpu() {
    let mut rng = Rng(11);
    let inputs: Vec<Input> = [1usize, 7, 48, 2, 30]
        .iter()
        .map(|&n| Input { ids: (0..n).map(|_| (rng.next_u64() % 44) as u32).collect(), type_ids: vec![0; n] })
        .collect();
    for (quantized, what) in [(false, "f32"), (true, "w6a8")] {
        let data = common::light_tagger(5, quantized);
        for options in [gpu(), gpu_fallback()] {
            let g = Model::from_data(data.clone(), &options).unwrap();
            let c = Model::from_data(data.clone(), &cpu()).unwrap();
            check_backend(&g);
            let (gt, ct) = (g.token_states(&inputs).unwrap(), c.token_states(&inputs).unwrap());
            assert_eq!((gt.len(), ct.len()), (inputs.len(), inputs.len()));
            for (i, (a, b)) in gt.iter().zip(&ct).enumerate() {
                assert_close(a, b, 1e-4, &format!("{what} tokens {i}"));
            }
        }
    }
}
