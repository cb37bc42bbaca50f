//! Extract Then Distill: extraction is exact sub-matrices of the teacher, importance follows
//! its definition, full-size extraction reproduces the teacher.

use std::path::PathBuf;

use bertling_compressor::etd::{extract, importance, Importance, Init, StudentShape};
use bertling_runtime::{LoadOptions, Model, ModelData, TensorData as Rt};

fn tiny() -> ModelData {
    bertling_runtime::load_hf_dir(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../runtime/tests/fixtures/tiny_cls")).unwrap()
}

fn f32s(m: &ModelData, name: &str) -> (Vec<usize>, Vec<f32>) {
    (m.tensors[name].shape(), m.tensors[name].to_f32())
}

#[test]
fn full_size_extraction_is_the_teacher() {
    let t = tiny();
    let full = StudentShape { layers: 2, width: 32, heads: 4, inner: 64 };
    let s = extract(&t, &full, &Init::EtdRand, 1).unwrap();
    for (name, tensor) in &t.tensors {
        assert_eq!(tensor.to_f32(), s.tensors[name].to_f32(), "{name}");
    }
    let (a, b) = (Model::from_data(t, &LoadOptions::default()).unwrap(), Model::from_data(s, &LoadOptions::default()).unwrap());
    assert_eq!(a.classify(&["good movie"]).unwrap(), b.classify(&["good movie"]).unwrap());
}

#[test]
fn importance_extraction_takes_the_named_sub_matrices() {
    let t = tiny();
    // Importance that prefers the first units: dims 0..24, heads 0..2, neurons 0..40.
    let falling = |n: usize| (0..n).map(|i| (n - i) as f32).collect::<Vec<f32>>();
    let imp = Importance { hidden: falling(32), heads: vec![falling(4); 2], neurons: vec![falling(64); 2] };
    let shape = StudentShape { layers: 1, width: 24, heads: 2, inner: 40 };
    let s = extract(&t, &shape, &Init::EtdImpt(imp), 0).unwrap();
    assert_eq!(s.spec.provenance.recipe["layers"], serde_json::json!([1]), "1 of 2 layers takes the last");
    // ffn.in of student layer 0 = teacher layer 1's rows 0..40, columns 0..24.
    let (ts, tw) = f32s(&t, "blocks.3.ffn.in.weight");
    let (ss, sw) = f32s(&s, "blocks.1.ffn.in.weight");
    assert_eq!(ss, vec![40, 24]);
    for r in 0..40 {
        for c in 0..24 {
            assert_eq!(sw[r * 24 + c], tw[r * ts[1] + c]);
        }
    }
    // qkv: query, key and value rows of heads 0 and 1 (head_dim 8): rows 0..16, 32..48, 64..80.
    let (_, tq) = f32s(&t, "blocks.2.attn.qkv.weight");
    let (qs, sq) = f32s(&s, "blocks.0.attn.qkv.weight");
    assert_eq!(qs, vec![48, 24]);
    for (sr, tr) in (0..16).chain(32..48).chain(64..80).enumerate() {
        assert_eq!(&sq[sr * 24..sr * 24 + 24], &tq[tr * 32..tr * 32 + 24]);
    }
    // The classifier keeps its labels and reads the kept dimensions.
    assert_eq!(f32s(&s, "head.classifier.weight").0, vec![3, 24]);
    assert!(Model::from_data(s, &LoadOptions::default()).unwrap().classify(&["good movie"]).is_ok());
}

#[test]
fn importance_follows_its_definition() {
    let mut t = tiny();
    let model = Model::from_data(t.clone(), &LoadOptions::default()).unwrap();
    let sample = model.tokenize(&["good movie", "the plot was not very good , but the music !", "i hate this boring film ."]).unwrap();
    let imp = importance(&t, &sample).unwrap();
    assert_eq!((imp.hidden.len(), imp.heads.len(), imp.heads[0].len(), imp.neurons[1].len()), (32, 2, 4, 64));
    assert!(imp.hidden.iter().chain(imp.heads.iter().flatten()).chain(imp.neurons.iter().flatten()).all(|v| v.is_finite() && *v >= 0.0));
    assert!(imp.heads[0][2] > 0.0 && imp.neurons[0][5] > 0.0);
    // A head whose output columns are zero and a neuron whose outgoing column is zero
    // contribute nothing: their importance is exactly 0.
    let zero_cols = |t: &mut ModelData, name: &str, cols: std::ops::Range<usize>| {
        let Rt::F32 { shape, data } = t.tensors.get_mut(name).unwrap() else { panic!() };
        for r in 0..shape[0] {
            for c in cols.clone() {
                data[r * shape[1] + c] = 0.0;
            }
        }
    };
    zero_cols(&mut t, "blocks.0.attn.out.weight", 16..24); // head 2 of layer 0
    zero_cols(&mut t, "blocks.1.ffn.out.weight", 5..6); // neuron 5 of layer 0
    let imp = importance(&t, &sample).unwrap();
    assert_eq!(imp.heads[0][2], 0.0);
    assert_eq!(imp.neurons[0][5], 0.0);
    assert!(imp.heads[0][1] > 0.0 && imp.neurons[0][4] > 0.0);
}

#[test]
fn random_init_and_bad_shapes() {
    let t = tiny();
    let shape = StudentShape { layers: 1, width: 16, heads: 2, inner: 32 };
    let s = extract(&t, &shape, &Init::Random, 3).unwrap();
    let (_, w) = f32s(&s, "blocks.1.ffn.in.weight");
    let std = (w.iter().map(|v| v * v).sum::<f32>() / w.len() as f32).sqrt();
    assert!((std - 0.02).abs() < 0.004, "std {std}");
    assert!(f32s(&s, "blocks.1.ln.weight").1.iter().all(|&v| v == 1.0));
    assert_ne!(extract(&t, &shape, &Init::Random, 4).unwrap().tensors, s.tensors, "the seed matters");
    assert_eq!(extract(&t, &shape, &Init::Random, 3).unwrap().tensors, s.tensors, "and decides everything");
    for bad in [StudentShape { layers: 3, ..shape }, StudentShape { width: 0, ..shape }, StudentShape { heads: 5, ..shape }] {
        assert!(extract(&t, &bad, &Init::EtdRand, 0).is_err());
    }
}
