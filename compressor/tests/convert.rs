//! The burn encoder against the runtime: the same model gives the same hidden states (teacher
//! import), and an exported quantized student runs in the runtime exactly as its
//! fake-quantized forward (export).

use std::collections::BTreeMap;
use std::path::PathBuf;

use bertling_compressor::convert::{activation_step, encoder_from_data, encoder_to_data, quantize, QuantPlan, StepInit};
use bertling_compressor::lsq::{effective_weight_step, fake_quant_act, fake_quant_act_per_token};
use bertling_compressor::student::{Batch, Dense, Encoder, Lsq};
use bertling_runtime::cpu::linear::{Linear, Weights};
use bertling_runtime::cpu::Team;
use bertling_runtime::data::{ActQuant, ActStep};
use bertling_runtime::spec::{BlockSpec, EmbeddingSpec, ModelSpec, PoolingMode, PoolingSpec};
use bertling_runtime::{write_package, Input, LoadOptions, Model, ModelData, QuantMatrix, TensorData as Rt};
use burn::module::Param;
use burn::prelude::*;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../runtime/tests/fixtures")
}

/// SplitMix64 uniform in [-1, 1).
fn rng_vec(seed: &mut u64, n: usize, scale: f32) -> Vec<f32> {
    (0..n)
        .map(|_| {
            *seed = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = *seed;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            ((z >> 40) as f32 / (1u64 << 23) as f32 - 1.0) * scale
        })
        .collect()
}

/// A random student with every block kind (the light tagger's `bi_conv` too) and changing
/// widths.
fn hetero(seed: u64) -> ModelData {
    let spec = ModelSpec {
        format_version: bertling_runtime::spec::FORMAT_VERSION,
        embeddings: EmbeddingSpec { vocab_size: 44, max_positions: 64, type_vocab_size: 2, width: 32 },
        blocks: vec![
            BlockSpec::Attention { width: 32, heads: 2, head_dim: 8 },
            BlockSpec::SepConv { width: 32, kernel: 5 },
            BlockSpec::Projection { input: 32, output: 24 },
            BlockSpec::FeedForward { width: 24, inner: 40 },
            BlockSpec::Identity { width: 24 },
            BlockSpec::Attention { width: 24, heads: 3, head_dim: 8 },
            BlockSpec::BiConv { width: 24, kernel: 3 },
        ],
        layer_norm_eps: 1e-12,
        max_seq_len: 48,
        pooling: PoolingSpec { mode: PoolingMode::Mean, normalize: true },
        head: None,
        quantized: Default::default(),
        provenance: Default::default(),
    };
    let mut s = seed;
    let mut tensors = BTreeMap::new();
    for t in spec.expected_tensors() {
        let n: usize = t.shape.iter().product();
        let mut data = rng_vec(&mut s, n, 0.5);
        if t.name.ends_with("ln.weight") {
            data.iter_mut().for_each(|v| *v = 1.0 + *v * 0.6);
        }
        tensors.insert(t.name, Rt::F32 { shape: t.shape, data });
    }
    let tokenizer_json = std::fs::read_to_string(fixtures().join("tiny_cls/tokenizer.json")).unwrap();
    ModelData { spec, tensors, tokenizer_json }
}

fn inputs(seed: u64, vocab: u32) -> Vec<Input> {
    let mut s = seed;
    [1usize, 7, 30, 3]
        .iter()
        .map(|&n| {
            let ids = rng_vec(&mut s, n, 1.0).iter().map(|v| ((v + 1.0) * 0.5 * vocab as f32) as u32 % vocab).collect();
            Input { ids, type_ids: (0..n).map(|i| (i * 3 >= n * 2) as u32).collect() }
        })
        .collect()
}

/// Every block output of the burn encoder against the runtime CPU backend on the same data.
fn assert_same_hidden(enc: &Encoder, data: &ModelData, inputs: &[Input], tol: f32, what: &str) {
    let device = Device::flex();
    let out = enc.forward(&Batch::new(inputs, &device));
    let model = Model::from_data(data.clone(), &LoadOptions::default()).unwrap();
    let want = model.hidden_states_inputs(inputs).unwrap();
    for (l, h) in out.hidden.iter().enumerate() {
        let [_, s, w] = h.dims();
        let got: Vec<f32> = h.clone().into_data().try_into_vec_as::<f32>().unwrap();
        for (i, inp) in inputs.iter().enumerate() {
            for t in 0..inp.ids.len() {
                for c in 0..w {
                    let (a, b) = (got[(i * s + t) * w + c], want[i].layers[l][t * w + c]);
                    assert!((a - b).abs() <= tol * b.abs().max(1.0), "{what}: layer {l} input {i} token {t} col {c}: burn {a} vs runtime {b}");
                }
            }
        }
    }
}

#[test]
fn teacher_import_matches_the_runtime() {
    let device = Device::flex();
    let tiny = bertling_runtime::load_hf_dir(&fixtures().join("tiny_cls")).unwrap();
    let enc = encoder_from_data(&tiny, &device).unwrap();
    assert_same_hidden(&enc, &tiny, &inputs(1, 44), 1e-4, "tiny BF16 classifier");
    let h = hetero(2);
    assert_same_hidden(&encoder_from_data(&h, &device).unwrap(), &h, &inputs(2, 44), 1e-4, "heterogeneous");
}

/// all-MiniLM-L6-v2 (fetched by scripts/fetch_model.sh; the test fails without it).
#[test]
fn minilm_teacher_matches_the_runtime() {
    let dir = std::env::var_os("BERTLING_TEST_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/bertling/models/all-MiniLM-L6-v2"));
    assert!(dir.join("model.safetensors").is_file(), "run scripts/fetch_model.sh first");
    let data = bertling_runtime::load_hf_dir(&dir).unwrap();
    let model = Model::from_data(data.clone(), &LoadOptions::default()).unwrap();
    let ins = model.tokenize(&["The quick brown fox jumps over the lazy dog.", "", "Café crème brûlée — naïve résumé 🍕"]).unwrap();
    let enc = encoder_from_data(&data, &Device::flex()).unwrap();
    assert_same_hidden(&enc, &data, &ins, 1e-4, "all-MiniLM-L6-v2");
}

/// KDLSQ students of every width export to packages whose runtime outputs equal the
/// fake-quantized forward, with embedding tables at 8 bits or at the weights' width, grouped
/// like the weights or not.
#[test]
fn quantized_export_matches_fake_quantized_forward() {
    let device = Device::flex();
    let base = hetero(3);
    for bits in 2..=8u8 {
        let group = [None, Some(16), Some(32), Some(64)][bits as usize % 4];
        let (embedding_bits, embedding_group) = if bits % 2 == 0 { (bits, [Some(128), None][bits as usize / 2 % 2]) } else { (8, group) };
        let plan = QuantPlan {
            bits,
            group,
            embedding_group,
            embedding_bits,
            act_bits: None,
            act_per_token: false,
            weight_init: Default::default(),
            act_init: Default::default(),
            smooth: None,
        };
        let enc = quantize(encoder_from_data(&base, &device).unwrap(), &plan, &BTreeMap::new()).unwrap();
        let exported = encoder_to_data(&enc, &base).unwrap();
        assert_eq!(exported.spec.quantized.len(), 9 + 3, "every matrix and the three embedding tables");
        for (name, q) in &exported.spec.quantized {
            let want = if name.starts_with("embeddings.") { (embedding_bits, embedding_group) } else { (bits, group) };
            assert_eq!((q.bits, q.group), want, "w{bits}: {name}");
        }
        let bytes = write_package(&exported).unwrap();
        // Every learned step is an f16 value, so the package stores them as F16.
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
        for name in exported.spec.quantized.keys() {
            assert_eq!(header[format!("{name}.scales")]["dtype"], "F16", "w{bits}: {name}");
        }
        let back = bertling_runtime::read_package(&bytes).unwrap();
        assert_same_hidden(&enc, &back, &inputs(bits as u64, 44), 1e-4, &format!("w{bits} {group:?}"));
    }
}

/// A dense layer `[n, k]` with LSQ weights in groups of 32 (`steps`), quantized activations
/// (`(bits, activation step, activation bits)`) and optional smoothing factors.
fn quantized_dense(w: &[f32], b: &[f32], [n, k]: [usize; 2], steps: &[f32], (bits, step, act_bits): (u8, f32, u8), smooth: Option<&[f32]>) -> Dense {
    let device = Device::flex();
    let t1 = |v: &[f32]| Param::from_tensor(Tensor::<1>::from_data(TensorData::new(v.to_vec(), [v.len()]), &device));
    Dense {
        weight: Param::from_tensor(Tensor::from_data(TensorData::new(w.to_vec(), [n, k]), &device)),
        bias: t1(b),
        quant: Some(Lsq {
            step: Param::from_tensor(Tensor::from_data(TensorData::new(steps.to_vec(), [n, k.div_ceil(32)]), &device)),
            bits: bits as usize,
            group: 32,
            act_step: Some(t1(&[step])),
            act_bits: act_bits as usize,
            act_smooth: smooth.map(t1),
        }),
    }
}

/// The activation quantizer and integer codes agree with the runtime's quantized linear layer
/// bit for bit on identical inputs (whole models are compared without activation
/// quantization: a value within float noise of a rounding boundary may round differently
/// after a different summation order upstream).
#[test]
fn activation_quantized_dense_matches_runtime_linear() {
    let device = Device::flex();
    let mut s = 9u64;
    let (m, n, k) = (5usize, 12usize, 40usize);
    let (w, b, x) = (rng_vec(&mut s, n * k, 0.5), rng_vec(&mut s, n, 0.1), rng_vec(&mut s, m * k, 2.0));
    for (bits, act_bits) in [(4u8, 8u8), (2, 8), (8, 4)] {
        let steps = bertling_compressor::lsq::init_weight_steps(&w, n, k, bits, Some(32));
        let step = 0.037f32;
        let dense = quantized_dense(&w, &b, [n, k], &steps, (bits, step, act_bits), None);
        let got: Vec<f32> = dense.forward(Tensor::from_data(TensorData::new(x.clone(), [1, m, k]), &device)).into_data().try_into_vec_as::<f32>().unwrap();
        // The quantizer's steps are f16 values (`effective_weight_step`), as the package stores.
        let steps: Vec<f32> = steps.iter().map(|&s| effective_weight_step(s)).collect();
        let matrix = QuantMatrix::from_steps(&w, n, k, bits, Some(32), steps).unwrap();
        let lin = Linear::new(n, k, Weights::Quant(matrix), b.clone(), Some(ActQuant::new(act_bits, step)));
        let want = lin.forward(&x, m, &Team::new(1).unwrap());
        for (a, e) in got.iter().zip(&want) {
            assert!((a - e).abs() < 1e-5, "w{bits}a{act_bits}: {a} vs {e}");
        }
        // The activation quantizer alone equals the runtime's.
        let q: Vec<f32> = fake_quant_act(
            Tensor::<2>::from_data(TensorData::new(x.clone(), [m, k]), &device),
            Tensor::from_data(TensorData::new(vec![step], [1]), &device),
            act_bits,
        )
        .into_data()
        .try_into_vec_as::<f32>()
        .unwrap();
        let mut rq = x.clone();
        bertling_runtime::quant::fake_quantize_row(&mut rq, None, step, act_bits);
        assert_eq!(q, rq);
        // So does the per-token quantizer (each row's own step).
        let q: Vec<f32> = fake_quant_act_per_token(Tensor::<2>::from_data(TensorData::new(x.clone(), [m, k]), &device), act_bits)
            .into_data()
            .try_into_vec_as::<f32>()
            .unwrap();
        let mut rq = x.clone();
        ActQuant::per_token(act_bits).apply(&mut rq, k);
        assert_eq!(q, rq);
    }
}

/// The classification head: the burn logits of the teacher and of a quantized export give the
/// runtime's probabilities.
#[test]
fn head_logits_match_the_runtime() {
    let device = Device::flex();
    let tiny = bertling_runtime::load_hf_dir(&fixtures().join("tiny_cls")).unwrap();
    let ins = inputs(4, 44);
    for (what, data, enc) in [
        ("float", tiny.clone(), encoder_from_data(&tiny, &device).unwrap()),
        ("w3", tiny.clone(), {
            let plan = QuantPlan::weights(3, Some(32));
            quantize(encoder_from_data(&tiny, &device).unwrap(), &plan, &BTreeMap::new()).unwrap()
        }),
    ] {
        let exported = encoder_to_data(&enc, &data).unwrap();
        let model = Model::from_data(exported, &LoadOptions::default()).unwrap();
        let want = model.classify_inputs(&ins).unwrap();
        let logits = enc.forward(&Batch::new(&ins, &device)).logits.expect("a head");
        let probs: Vec<f32> = burn::tensor::activation::softmax(logits, 1).into_data().try_into_vec_as::<f32>().unwrap();
        for (i, c) in want.iter().enumerate() {
            for (j, p) in c.probs.iter().enumerate() {
                assert!((probs[i * 3 + j] - p).abs() < 1e-5, "{what}: input {i} label {j}");
            }
        }
    }
}

/// Activation step initialisation: the LSQ rule in closed form, and the least-error search
/// against a plain f64 re-implementation of the same candidates (padding ignored).
#[test]
fn activation_steps_follow_their_rules() {
    let mut seed = 17u64;
    // [2, 3, 8]: uniform values, one outlier channel, and a padded last token in sentence 1.
    let mut v = rng_vec(&mut seed, 48, 1.0);
    for t in 0..6 {
        v[t * 8 + 3] *= 40.0;
    }
    v[47] = 1000.0; // padding: must not count
    let x = Tensor::<3>::from_data(TensorData::new(v.clone(), [2, 3, 8]), &Device::flex());
    let mask = Tensor::<2>::from_data(TensorData::new(vec![1.0f32, 1.0, 1.0, 1.0, 1.0, 0.0], [2, 3]), &Device::flex());
    let real: Vec<f64> = v[..40].iter().map(|&a| a as f64).collect();
    for bits in [8u8, 4] {
        let qp = ((1u32 << (bits - 1)) - 1) as f64;
        let qn = (1u32 << (bits - 1)) as f64;
        let lsq = 2.0 * real.iter().map(|a| a.abs()).sum::<f64>() / real.len() as f64 / qp.sqrt();
        let got = activation_step(&x, &mask, bits, StepInit::Lsq) as f64;
        assert!((got - lsq).abs() < 1e-5 * lsq, "{bits} bits: lsq step {got} vs {lsq}");
        let err = |s: f64| real.iter().map(|&a| ((a / s).round().clamp(-qn, qp) * s - a).powi(2)).sum::<f64>();
        let max = real.iter().fold(0.0f64, |m, a| m.max(a.abs()));
        let mut best = (err(lsq), lsq);
        for r in 1..=32 {
            let s = max * r as f64 / 32.0 / qp;
            if err(s) < best.0 {
                best = (err(s), s);
            }
        }
        let mse = activation_step(&x, &mask, bits, StepInit::Mse) as f64;
        assert!((mse - best.1).abs() < 1e-4 * best.1, "{bits} bits: mse step {mse} vs reference {}", best.1);
        assert!(err(mse) <= err(lsq) * (1.0 + 1e-9));
    }
}

/// Weight step initialisation by least error: a plain f64 search over the same candidates per
/// group, a closed-form case (values on a grid are represented exactly), never worse than the
/// LSQ rule, and `quantize` starts its steps there.
#[test]
fn weight_steps_by_least_error() {
    use bertling_compressor::lsq::{weight_steps, StepInit, WEIGHT_GRID};
    // Closed form: at 2 bits the codes are -2..1; {-0.2, -0.1, 0, 0.1} is exact at step 0.1.
    let s = weight_steps(&[-0.2, -0.1, 0.0, 0.1], 1, 4, 2, None, StepInit::Mse);
    assert!((s[0] - 0.1).abs() < 1e-7, "{}", s[0]);
    let mut seed = 5u64;
    let (rows, cols) = (6, 96);
    let mut w = rng_vec(&mut seed, rows * cols, 1.0);
    w[7] = 9.0; // an outlier in group 0 of row 0
    for bits in [2u8, 4, 8] {
        for group in [Some(32), None] {
            let got = weight_steps(&w, rows, cols, bits, group, StepInit::Mse);
            let lsq = weight_steps(&w, rows, cols, bits, group, StepInit::Lsq);
            let qp = ((1u32 << (bits - 1)) - 1) as f64;
            let qn = (1u32 << (bits - 1)) as f64;
            let g = group.unwrap_or(cols);
            let mut i = 0;
            for row in w.chunks(cols) {
                for chunk in row.chunks(g) {
                    let v: Vec<f64> = chunk.iter().map(|&a| a as f64).collect();
                    let err = |s: f64| v.iter().map(|&a| ((a / s).round().clamp(-qn, qp) * s - a).powi(2)).sum::<f64>();
                    let max = v.iter().fold(0.0f64, |m, a| m.max(a.abs()));
                    let rule = 2.0 * v.iter().map(|a| a.abs()).sum::<f64>() / v.len() as f64 / qp.sqrt();
                    assert!((lsq[i] as f64 - rule).abs() < 1e-5 * rule, "{bits} bits: LSQ rule");
                    let mut best = (err(rule), rule);
                    for r in 1..=WEIGHT_GRID {
                        let s = max * r as f64 / WEIGHT_GRID as f64 / qp;
                        if err(s) < best.0 {
                            best = (err(s), s);
                        }
                    }
                    // Ties between candidates may resolve differently in f32; compare errors.
                    let e = err(got[i] as f64);
                    assert!(e <= best.0 * (1.0 + 1e-4) + 1e-12, "{bits} bits {group:?} group {i}: error {e} vs reference {}", best.0);
                    assert!(e <= err(rule) * (1.0 + 1e-6) + 1e-12);
                    i += 1;
                }
            }
            assert_eq!(i, got.len());
        }
    }
    // `quantize` initialises every matrix's steps with the plan's rule.
    let data = hetero(3);
    let enc = encoder_from_data(&data, &Device::flex()).unwrap();
    let plan = QuantPlan { weight_init: StepInit::Mse, ..QuantPlan::weights(3, Some(32)) };
    let mut q = quantize(enc, &plan, &Default::default()).unwrap();
    for (name, d) in bertling_compressor::convert::dense_layers_mut(&mut q) {
        let [r, c] = d.weight.val().dims();
        let w: Vec<f32> = d.weight.val().into_data().try_into_vec_as::<f32>().unwrap();
        let steps: Vec<f32> = d.quant.as_ref().unwrap().step.val().into_data().try_into_vec_as::<f32>().unwrap();
        assert_eq!(steps, weight_steps(&w, r, c, 3, Some(32), StepInit::Mse), "{name}");
    }
}

/// Activation smoothing: the factors in closed form; a smoothed dense layer (input ⊙ m,
/// weights ⊙ 1/m) equals the runtime's linear layer given the folded weights and the factors;
/// and a smoothed KDLSQ model exports them through a package.
#[test]
fn smoothed_activations_match_the_runtime() {
    use bertling_compressor::convert::{calibrate_activations, smoothing_factors};
    let device = Device::flex();
    let t1 = |v: Vec<f32>| Tensor::<1>::from_data(TensorData::new(v.clone(), [v.len()]), &device);
    // m = wmax^(1-α) / xmax^α: α = 0.5 → [sqrt(1/16), sqrt(4/1)]; α = 1 → 1/xmax.
    let m: Vec<f32> = smoothing_factors(t1(vec![1.0, 4.0]), t1(vec![16.0, 1.0]), 0.5).into_data().try_into_vec_as::<f32>().unwrap();
    assert!((m[0] - 0.25).abs() < 1e-6 && (m[1] - 2.0).abs() < 1e-6, "{m:?}");
    let m: Vec<f32> = smoothing_factors(t1(vec![1.0, 4.0]), t1(vec![16.0, 0.0]), 1.0).into_data().try_into_vec_as::<f32>().unwrap();
    assert!((m[0] - 1.0 / 16.0).abs() < 1e-7 && m[1] == 1e3, "a dead channel keeps a bounded factor: {m:?}");

    let mut s = 21u64;
    let (rows, n, k) = (5usize, 12usize, 64usize);
    let (w, b, x) = (rng_vec(&mut s, n * k, 0.5), rng_vec(&mut s, n, 0.1), rng_vec(&mut s, rows * k, 2.0));
    let smooth: Vec<f32> = rng_vec(&mut s, k, 1.0).iter().map(|v| 2f32.powf(*v * 1.5)).collect();
    for (bits, act_bits) in [(4u8, 8u8), (2, 8), (8, 4)] {
        let folded: Vec<f32> = w.iter().enumerate().map(|(i, v)| v / smooth[i % k]).collect();
        let steps = bertling_compressor::lsq::init_weight_steps(&folded, n, k, bits, Some(32));
        let step = 0.037f32;
        for per_token in [false, true] {
            let mut dense = quantized_dense(&w, &b, [n, k], &steps, (bits, step, act_bits), Some(&smooth));
            if per_token {
                dense.quant.as_mut().unwrap().act_step = None;
            }
            let burn_folded: Vec<f32> = dense.folded_weight().into_data().try_into_vec_as::<f32>().unwrap();
            assert_eq!(burn_folded, folded, "W ⊙ (1/m) by columns");
            let got: Vec<f32> =
                dense.forward(Tensor::from_data(TensorData::new(x.clone(), [1, rows, k]), &device)).into_data().try_into_vec_as::<f32>().unwrap();
            let steps: Vec<f32> = steps.iter().map(|&s| effective_weight_step(s)).collect();
            let matrix = QuantMatrix::from_steps(&folded, n, k, bits, Some(32), steps).unwrap();
            let step = if per_token { ActStep::Token } else { ActStep::Tensor(step) };
            let act = ActQuant { bits: act_bits, step, smooth: Some(smooth.clone()) };
            let want = Linear::new(n, k, Weights::Quant(matrix), b.clone(), Some(act)).forward(&x, rows, &Team::new(1).unwrap());
            for (a, e) in got.iter().zip(&want) {
                assert!((a - e).abs() < 1e-5, "w{bits}a{act_bits} smoothed, {step:?}: {a} vs {e}");
            }
        }
    }

    // A smoothed KDLSQ start of a small model: factors and folded weights reach the package.
    let data = hetero(4);
    let enc = encoder_from_data(&data, &device).unwrap();
    let batch = Batch::new(&inputs(4, 44), &device);
    let acts = calibrate_activations(&enc, &batch, 8, StepInit::Mse, Some(0.5)).unwrap();
    assert!(acts.values().all(|a| a.smooth.as_ref().is_some_and(|m| m.iter().all(|v| v.is_finite() && *v > 0.0))));
    assert!(calibrate_activations(&enc, &batch, 8, StepInit::Mse, Some(1.5)).is_err(), "α outside 0..=1");
    // Per-tensor and per-token activation steps.
    for act_per_token in [false, true] {
        let plan = QuantPlan {
            act_bits: Some(8),
            act_per_token,
            weight_init: StepInit::Mse,
            act_init: StepInit::Mse,
            smooth: Some(0.5),
            ..QuantPlan::weights(4, Some(32))
        };
        let q = quantize(encoder_from_data(&data, &device).unwrap(), &plan, &acts).unwrap();
        let back = bertling_runtime::read_package(&write_package(&encoder_to_data(&q, &data).unwrap()).unwrap()).unwrap();
        for (name, a) in &acts {
            let wname = format!("{name}.weight");
            assert!(back.spec.quantized[&wname].act_smooth, "{wname}");
            assert_eq!(back.spec.quantized[&wname].act_per_token, act_per_token, "{wname}");
            let Rt::Quant { act: Some(got), .. } = &back.tensors[&wname] else { panic!("{wname} is not activation-quantized") };
            assert_eq!(got.smooth, a.smooth, "{wname}");
            assert_eq!(got.tensor_step().is_none(), act_per_token, "{wname}");
        }
        // The package computes what the fake-quantized model computes. Codes of values within float
        // noise of a rounding boundary may flip between the two (see above), so whole outputs are
        // compared by cosine; without the folding or the factors they would be far apart.
        let ins = inputs(5, 44);
        let got = q.forward(&Batch::new(&ins, &device)).hidden.last().unwrap().clone();
        let [_, seq, width] = got.dims();
        let got: Vec<f32> = got.into_data().try_into_vec_as::<f32>().unwrap();
        let want = Model::from_data(back, &LoadOptions::default()).unwrap().hidden_states_inputs(&ins).unwrap();
        for (i, inp) in ins.iter().enumerate() {
            let n = inp.ids.len() * width;
            let a = &got[i * seq * width..i * seq * width + n];
            let b = &want[i].layers.last().unwrap()[..n];
            let c = bertling_runtime::cosine(a, b);
            assert!(c > 0.999, "input {i} (per token: {act_per_token}): cosine {c}");
        }
    }
}
