//! Pruning: magnitude pruning zeroes exactly the smallest weights of each block matrix and
//! fine-tuning keeps them zero; structured pruning computes what the model computes with the
//! removed heads' and neurons' outputs zeroed.

use std::path::PathBuf;

use bertling_compressor::finetune::{finetune_model, FinetuneConfig, FinetuneProgress};
use bertling_compressor::pipeline::RunFiles;
use bertling_compressor::prune;
use bertling_compressor::task::{Target, TaskExample, TaskSpec};
use bertling_runtime::spec::names;
use bertling_runtime::{LoadOptions, Model, ModelData, TensorData as Rt, TextTokenizer};

fn tiny() -> ModelData {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../runtime/tests/fixtures/tiny_cls");
    bertling_runtime::load_hf_dir(&dir).unwrap()
}

const TEXTS: [&str; 6] = [
    "i love this movie",
    "the acting was terrible",
    "a boring story and bad music",
    "it is not very good",
    "great fun , really",
    "the ending was the plot",
];

fn matrices(m: &ModelData) -> Vec<String> {
    let mut out = Vec::new();
    for i in 0..m.spec.blocks.len() {
        let n = names::block(i);
        let all = [n.qkv(), n.attn_out(), n.ffn_in(), n.ffn_out()];
        out.extend(all.iter().map(|p| names::weight(p)).filter(|w| m.tensors.contains_key(w)));
    }
    out
}

#[test]
fn magnitude_pruning_zeroes_the_smallest_weights_of_each_matrix() {
    let model = tiny();
    let pruned = prune::magnitude(&model, 0.5).unwrap();
    let blocks = matrices(&model);
    assert_eq!(blocks.len(), 8);
    for (name, t) in &model.tensors {
        let (a, b) = (t.to_f32(), pruned.tensors[name].to_f32());
        if !blocks.contains(name) {
            assert_eq!(a, b, "{name} is not a block matrix: unchanged");
            continue;
        }
        let zeroed: Vec<f32> =
            a.iter().zip(&b).filter(|(_, q)| **q == 0.0).map(|(p, _)| *p).collect();
        // The k smallest include any zeros the model had, so exactly max(k, zeros) are zero.
        let was_zero = a.iter().filter(|p| **p == 0.0).count();
        assert_eq!(zeroed.len(), (a.len() / 2).max(was_zero), "{name}: zeros of {}", a.len());
        let kept_min = a.iter().zip(&b).filter(|(_, q)| **q != 0.0).map(|(p, _)| p.abs());
        let kept_min = kept_min.fold(f32::INFINITY, f32::min);
        let removed_max = zeroed.iter().fold(0f32, |m, p| m.max(p.abs()));
        assert!(removed_max <= kept_min, "{name}: removed {removed_max} > kept {kept_min}");
        assert!(a.iter().zip(&b).all(|(p, q)| *q == 0.0 || p == q), "{name}: kept ones unchanged");
    }
    assert_eq!(pruned.spec.provenance.recipe["method"], prune::MAGNITUDE_METHOD);
    let same = prune::magnitude(&model, 0.0).unwrap();
    assert!(model.tensors.iter().all(|(n, t)| t.to_f32() == same.tensors[n].to_f32()));
    for bad in [1.0, -0.1] {
        let err = prune::magnitude(&model, bad).unwrap_err().to_string();
        assert!(err.contains("fraction to remove"), "{err}");
    }
}

/// The indices of `small`'s rows within `big` (each row found by its values).
fn rows_in(big: &[f32], small: &[f32], cols: usize) -> Vec<usize> {
    small
        .chunks(cols)
        .map(|r| big.chunks(cols).position(|b| b == r).expect("a kept row of the original"))
        .collect()
}

#[test]
fn structured_pruning_equals_zeroing_the_removed_heads_and_neurons() {
    let model = tiny();
    let tok = TextTokenizer::new(&model.tokenizer_json, 32).unwrap();
    let sample = tok.encode(&TEXTS).unwrap();
    let pruned = prune::structured(&model, 0.5, &sample).unwrap();
    // The reference: the original with the outputs of the removed units zeroed.
    let mut masked = model.clone();
    let (width, head_dim) = (32, 8);
    for layer in 0..2 {
        let (a, f) = (names::block(2 * layer), names::block(2 * layer + 1));
        match pruned.spec.blocks[2 * layer] {
            bertling_runtime::BlockSpec::Attention { heads, .. } => assert_eq!(heads, 2),
            ref other => panic!("{other:?}"),
        }
        // Kept heads: the query rows of the pruned qkv among the original's.
        let qkv = |m: &ModelData| m.tensors[&names::weight(&a.qkv())].to_f32();
        let q_rows = rows_in(&qkv(&model), &qkv(&pruned)[..2 * head_dim * width], width);
        let heads: Vec<usize> = q_rows.chunks(head_dim).map(|r| r[0] / head_dim).collect();
        let out = masked.tensors.get_mut(&names::weight(&a.attn_out())).unwrap();
        let mut w = out.to_f32();
        for (i, v) in w.iter_mut().enumerate() {
            if !heads.contains(&(i % (4 * head_dim) / head_dim)) {
                *v = 0.0;
            }
        }
        *out = Rt::F32 { shape: vec![width, 4 * head_dim], data: w };
        // Kept neurons: the rows of the pruned ffn_in among the original's.
        let fin = |m: &ModelData| m.tensors[&names::weight(&f.ffn_in())].to_f32();
        let neurons = rows_in(&fin(&model), &fin(&pruned), width);
        assert_eq!(neurons.len(), 32);
        let out = masked.tensors.get_mut(&names::weight(&f.ffn_out())).unwrap();
        let mut w = out.to_f32();
        for (i, v) in w.iter_mut().enumerate() {
            if !neurons.contains(&(i % 64)) {
                *v = 0.0;
            }
        }
        *out = Rt::F32 { shape: vec![width, 64], data: w };
    }
    let load = |m: &ModelData| Model::from_data(m.clone(), &LoadOptions::default()).unwrap();
    let (p, r) = (load(&pruned), load(&masked));
    assert!(p.info().parameters < r.info().parameters);
    for (x, y) in p.classify(&TEXTS).unwrap().iter().zip(r.classify(&TEXTS).unwrap()) {
        for (u, v) in x.probs.iter().zip(&y.probs) {
            assert!((u - v).abs() < 1e-5, "{:?} vs {:?}", x.probs, y.probs);
        }
    }
    let mut quantized = model.clone();
    quantized.spec.quantized.insert(
        "x".into(),
        bertling_runtime::spec::QuantSpec {
            bits: 4,
            group: None,
            act_bits: None,
            act_smooth: false,
            act_per_token: false,
        },
    );
    let err = prune::structured(&quantized, 0.5, &sample).unwrap_err().to_string();
    assert!(err.contains("quantized"), "{err}");
}

#[test]
fn finetuning_a_magnitude_pruned_model_keeps_its_zeros() {
    let pruned = prune::magnitude(&tiny(), 0.5).unwrap();
    let ex: Vec<TaskExample> = TEXTS
        .iter()
        .enumerate()
        .map(|(i, t)| TaskExample { a: t.to_string(), b: None, target: Target::Class(i % 2) })
        .collect();
    let run = |keep_zeros: bool| {
        let cfg = FinetuneConfig {
            epochs: 2,
            batch_size: 3,
            lr: 1e-2,
            max_len: 32,
            checkpoint_every: 0,
            keep_zeros,
            ..FinetuneConfig::default()
        };
        let task = TaskSpec::glue("sst2").unwrap();
        let mut quiet = |_: &FinetuneProgress| {};
        finetune_model(&pruned, None, &task, &ex, &ex, &cfg, &RunFiles::default(), &mut quiet)
            .unwrap()
            .0
    };
    let zeros = |m: &ModelData| -> Vec<Vec<bool>> {
        matrices(m)
            .iter()
            .map(|n| m.tensors[n].to_f32().iter().map(|v| *v == 0.0).collect())
            .collect()
    };
    let (before, kept, regrown) = (zeros(&pruned), zeros(&run(true)), zeros(&run(false)));
    for ((b, k), g) in before.iter().zip(&kept).zip(&regrown) {
        assert!(b.iter().zip(k).all(|(b, k)| !b || *k), "a pruned weight came back");
        assert!(b.iter().zip(g).any(|(b, g)| *b && !g), "without keep_zeros they move");
    }
}
