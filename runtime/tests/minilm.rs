//! The runtime against PyTorch/transformers on the real all-MiniLM-L6-v2
//! (fixtures from scripts/make_fixtures.py).

mod common;

use std::sync::OnceLock;

use bertling_runtime::{cosine, write_package, LoadOptions, Model, ModelData, Precision};
use common::{max_abs_diff, minilm_dir, Golden};

fn texts() -> Vec<String> {
    common::golden_texts()
}

fn data() -> &'static ModelData {
    static D: OnceLock<ModelData> = OnceLock::new();
    D.get_or_init(|| bertling_runtime::load_hf_dir(&minilm_dir()).expect("load all-MiniLM-L6-v2"))
}

fn model() -> &'static Model {
    static M: OnceLock<Model> = OnceLock::new();
    M.get_or_init(|| Model::from_data(data().clone(), &LoadOptions::default()).unwrap())
}

#[test]
fn tokenization_matches_transformers() {
    let golden = Golden::load("minilm_golden.safetensors");
    let texts = texts();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let inputs = model().tokenize(&refs).unwrap();
    for (i, inp) in inputs.iter().enumerate() {
        let want: Vec<u32> = golden.i64(&format!("input{i}.ids")).iter().map(|&v| v as u32).collect();
        assert_eq!(inp.ids, want, "token ids of input {i} ({:?})", texts[i]);
        assert!(inp.type_ids.iter().all(|&t| t == 0));
    }
    // The long input is truncated to the model's 256 tokens, not the tokenizer.json's 128.
    assert_eq!(inputs.last().unwrap().ids.len(), 256);
    assert!(inputs.iter().any(|i| i.ids.len() > 128 && i.ids.len() < 256));
}

#[test]
fn hidden_states_match_pytorch() {
    let worst = common::check_minilm_hidden(model(), 1e-4);
    eprintln!("worst hidden-state |diff| = {worst:e}");
}

#[test]
fn sentence_embeddings_match_pytorch() {
    let golden = Golden::load("minilm_golden.safetensors");
    let texts = texts();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let emb = model().embed(&refs).unwrap();
    for (i, e) in emb.iter().enumerate() {
        let (_, want) = golden.f32(&format!("input{i}.embedding"));
        let c = cosine(e, &want);
        assert!(c > 0.99999, "input {i}: cosine {c}");
        assert!((e.iter().map(|v| v * v).sum::<f32>() - 1.0).abs() < 1e-5, "embedding is L2-normalised");
    }
}

#[test]
fn batched_equals_one_by_one() {
    let texts = texts();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let batched = model().embed(&refs).unwrap();
    for (i, t) in refs.iter().enumerate() {
        let single = model().embed(&[t]).unwrap();
        let d = max_abs_diff(&single[0], &batched[i]);
        assert!(d < 1e-5, "input {i}: batched vs alone differ by {d}");
    }
    // A single thread computes the same.
    let one = Model::from_data(data().clone(), &LoadOptions { threads: Some(1), ..Default::default() }).unwrap();
    let e1 = one.embed(&refs).unwrap();
    for (a, b) in e1.iter().zip(&batched) {
        assert!(max_abs_diff(a, b) < 1e-5);
    }
}

fn package_model(p: Precision) -> Model {
    let bytes = write_package(&data().convert(p).unwrap()).unwrap();
    Model::from_package_bytes(&bytes, &LoadOptions::default()).unwrap()
}

#[test]
fn float_package_round_trip_is_exact() {
    let texts = texts();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let m = package_model(Precision::F32);
    assert_eq!(m.embed(&refs).unwrap(), model().embed(&refs).unwrap());
    let m16 = package_model(Precision::F16);
    for (a, b) in m16.embed(&refs).unwrap().iter().zip(model().embed(&refs).unwrap()) {
        assert!(cosine(a, &b) > 0.9999);
    }
}

#[test]
fn eight_bit_package_stays_close_to_float() {
    let texts = texts();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let float = model().embed(&refs).unwrap();
    let q8 = package_model(Precision::Quantized { bits: 8, group: None, embedding_bits: 8 });
    assert_eq!(q8.info().matrix_bits, vec![8]);
    assert!(q8.info().bytes * 3 < model().info().bytes, "8-bit package is under a third of the float size");
    let mut min = 1f32;
    for (a, b) in q8.embed(&refs).unwrap().iter().zip(&float) {
        min = min.min(cosine(a, b));
    }
    eprintln!("8-bit RTN package: min cosine to float {min}");
    assert!(min > 0.99, "min cosine {min}");
}
