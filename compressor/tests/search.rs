//! The architecture search's supernet on the tiny fixture teacher: at full width on the
//! teacher's ops it is the teacher, and a student cut from it computes on the runtime exactly
//! what the supernet computed for it.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use bertling_compressor::convert::encoder_from_data;
use bertling_compressor::corpus::Corpus;
use bertling_compressor::distill::Stop;
use bertling_compressor::etd::importance;
use bertling_compressor::search::train::boundaries;
use bertling_compressor::search::{
    inherit, train_supernet, Arch, HeldOut, Op, SearchSpace, Stage, Supernet, SupernetConfig,
};
use bertling_compressor::student::{Batch, Masks};
use bertling_compressor::targets::TeacherSource;
use bertling_runtime::{Backend, Input, LoadOptions, Model, ModelData, TextTokenizer};
use burn::prelude::*;

fn teacher() -> ModelData {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../runtime/tests/fixtures/tiny_cls");
    bertling_runtime::load_hf_dir(&dir).unwrap()
}

const TEXTS: [&str; 4] =
    ["good movie", "the plot was not very good", "i love it", "bad acting and a boring story"];

/// The tiny teacher (width 32, 4 heads of 8, inner 64, 4 blocks) in 2 stages of 2 slots, widths
/// 16 and 32, heads of 8 and 16, feed-forward 1× and 2×, kernels 3 and 5.
fn space(t: &ModelData) -> SearchSpace {
    let mut s = SearchSpace::for_teacher(&t.spec, 2, &[16, 32]).unwrap();
    s.head_dims = vec![8, 16];
    s.ffn_halves = vec![2, 4];
    s.kernels = vec![3, 5];
    s
}

fn floats<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_into_vec_as::<f32>().unwrap()
}

#[test]
fn the_full_width_path_is_the_teacher() {
    let t = teacher();
    let inputs = TextTokenizer::new(&t.tokenizer_json, 32).unwrap().encode(&TEXTS).unwrap();
    let imp = importance(&t, &inputs).unwrap();
    let dev = Device::flex();
    let net = Supernet::from_teacher(&t, &space(&t), Some(&imp), 1, &dev).unwrap();
    let enc = encoder_from_data(&t, &dev).unwrap();
    let batch = Batch::new(&inputs, &dev);
    let masks = Masks::new(&batch);
    let hidden = enc.forward(&batch).hidden;
    let full: Arch = "e32|32:a4x8,f64|32:a4x8,f64".parse().unwrap();
    for (k, stage) in full.stages.iter().enumerate() {
        let y = net.stage_forward(k, stage, hidden[2 * k].clone(), &masks);
        let (y, want) = (floats(y), floats(hidden[2 * k + 2].clone()));
        let worst = y.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(worst < 1e-4, "stage {k}: {worst}");
    }
    // A narrower stage is another function, not the teacher's.
    let narrow = Stage { width: 16, ops: vec![Op::FeedForward { inner: 32 }, Op::Identity] };
    let y = floats(net.stage_forward(0, &narrow, hidden[0].clone(), &masks));
    let want = floats(hidden[2].clone());
    assert!(y.iter().zip(&want).any(|(a, b)| (a - b).abs() > 1e-2));
}

/// Asserts that `student`, written as a package and run on the runtime's CPU backend, computes
/// the final token states the supernet's chained forward computes for `arch`.
fn assert_runs_as_the_chain(net: &Supernet, arch: &Arch, student: &ModelData, inputs: &[Input]) {
    let bytes = bertling_runtime::write_package(student).unwrap();
    let back = bertling_runtime::read_package(&bytes).unwrap();
    let model = Model::from_data(back, &LoadOptions::new(Backend::Cpu, 1)).unwrap();
    let states = model.token_states(inputs).unwrap();
    let chain = net.chain(arch, &Batch::new(inputs, &Device::flex()));
    let [_, s, w] = chain.dims();
    let chain = floats(chain);
    for (i, inp) in inputs.iter().enumerate() {
        let n = inp.ids.len();
        let want = &chain[i * s * w..(i * s + n) * w];
        assert_eq!(states[i].len(), want.len());
        let worst = states[i].iter().zip(want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(worst < 1e-3, "{arch}, input {i}: {worst}");
    }
}

/// Students of several shapes cut from a supernet (teacher order, fresh convolutions): the
/// runtime's CPU backend, an independent implementation, computes the final token states the
/// supernet's chained forward computed, and the package holds the architecture's blocks.
#[test]
fn a_student_cut_from_the_supernet_runs_as_the_supernet_computed() {
    let t = teacher();
    let inputs = TextTokenizer::new(&t.tokenizer_json, 32).unwrap().encode(&TEXTS).unwrap();
    let dev = Device::flex();
    let space = space(&t);
    let net = Supernet::from_teacher(&t, &space, None, 3, &dev).unwrap();
    for text in
        ["e16|16:a2x8,f32|32:c5,a2x16", "e32|16:id,c3|16:f16,id", "e16|32:a4x8,f64|32:a4x8,f64"]
    {
        let arch: Arch = text.parse().unwrap();
        space.check(&arch).unwrap();
        let student = net.student(&arch, &t).unwrap();
        assert_eq!(student.spec.blocks, arch.blocks(32), "{text}");
        assert_runs_as_the_chain(&net, &arch, &student, &inputs);
    }
}

/// `compress --arch`: a searched architecture cut from the teacher is the student the search's
/// supernet starts from (the runtime computes what the supernet of the whole space computes for
/// that path) and has the architecture's blocks; an architecture whose slots do not cover the
/// teacher's blocks is refused with why.
#[test]
fn an_inherited_student_is_the_supernets_path() {
    let t = teacher();
    let inputs = TextTokenizer::new(&t.tokenizer_json, 32).unwrap().encode(&TEXTS).unwrap();
    let imp = importance(&t, &inputs).unwrap();
    let dev = Device::flex();
    let net = Supernet::from_teacher(&t, &space(&t), Some(&imp), 1, &dev).unwrap();
    for text in ["e32|32:a4x8,f64|32:a4x8,f64", "e16|16:a2x8,f32|32:a4x8,id"] {
        let arch: Arch = text.parse().unwrap();
        let student = inherit(&t, &arch, Some(&imp), 1).unwrap();
        assert_eq!(student.spec.blocks, arch.blocks(32), "{text}");
        assert_runs_as_the_chain(&net, &arch, &student, &inputs);
    }
    let too_few: Arch = "e32|32:a4x8|32:f64".parse().unwrap();
    let err = inherit(&t, &too_few, Some(&imp), 1).unwrap_err().to_string();
    assert!(err.contains("slots"), "{err}");
}

/// A corpus of the fixture's words: every pair of the test sentences, joined.
fn corpus() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("bertling-search-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("corpus.txt");
    let lines: Vec<String> =
        TEXTS.iter().flat_map(|a| TEXTS.iter().map(move |b| format!("{a} and {b}"))).collect();
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("bertling-search-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Block-wise training lowers a candidate's held-out stage loss, prunes the pools as configured,
/// and a run killed after its last checkpoint resumes to the uninterrupted run's weights.
#[test]
fn supernet_training_learns_prunes_and_resumes_exactly() {
    let t = teacher();
    let space = space(&t);
    let plain = Device::flex();
    let device = plain.clone().autodiff();
    let teacher_enc = encoder_from_data(&t, &plain).unwrap();
    let inputs = TextTokenizer::new(&t.tokenizer_json, 16).unwrap().encode(&TEXTS).unwrap();
    let held = HeldOut::new(&teacher_enc, &inputs, 4, &boundaries(&space), &plain).unwrap();
    let cfg = SupernetConfig {
        steps: 6,
        batch_size: 4,
        max_len: 16,
        lr: 3e-3,
        seed: 1,
        pool: 6,
        shrink_every: 3,
        bins: 2,
        keep: 1,
        checkpoint_every: 2,
        only_stage: None,
    };
    let path = corpus();
    let run_with = |cfg: &SupernetConfig, dir: &Path, stop: Option<usize>| {
        let net = Supernet::from_teacher(&t, &space, None, 9, &device).unwrap();
        let mut c = Corpus::open(&path, &t.tokenizer_json, 16).unwrap();
        let mut targets =
            TeacherSource::new(&t, bertling_compressor::search::train::supernet_request(&space), 0)
                .unwrap();
        train_supernet(
            net,
            &mut targets,
            &space,
            &mut c,
            &held,
            cfg,
            Some(dir),
            &device,
            None,
            |p| match stop {
                Some(n) if p.step == n => ControlFlow::Break(Stop::Abandon),
                _ => ControlFlow::Continue(()),
            },
        )
        .unwrap()
    };
    let run = |dir: &Path, stop: Option<usize>| run_with(&cfg, dir, stop);
    let straight = run(&tmpdir("straight"), None);
    assert_eq!(straight.step, 6);
    // Pruned once (at step 3): two bins of three keep two each.
    assert!(straight.pools.iter().all(|p| p.len() == 4), "{:?}", straight.pools);
    let before = Supernet::from_teacher(&t, &space, None, 9, &plain).unwrap();
    let after = straight.net.clone().valid();
    for (k, pool) in straight.pools.iter().enumerate() {
        let (b, a) = (held.stage_loss(&before, k, &pool[0]), held.stage_loss(&after, k, &pool[0]));
        assert!(a < b, "stage {k} {}: {b} -> {a}", pool[0].width);
    }
    // Killed at step 5: the checkpoint of step 4 remains; resuming redoes step 5 and 6.
    let dir = tmpdir("killed");
    assert_eq!(run(&dir, Some(5)).step, 5);
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("state.json")).unwrap()).unwrap();
    assert_eq!(state["step"], 4);
    let resumed = run(&dir, None);
    assert_eq!(resumed.pools, straight.pools);
    let w = |n: &Supernet| floats(n.stages[1].slots[0].feed_forward.inp.weight.val());
    assert_eq!(w(&resumed.net), w(&straight.net));
    let w = |n: &Supernet| floats(n.embedding.proj.weight.val());
    assert_eq!(w(&resumed.net), w(&straight.net));
    // Stage 1 trained alone (as one process of several would) is stage 1 trained with the rest.
    let alone =
        run_with(&SupernetConfig { only_stage: Some(1), ..cfg.clone() }, &tmpdir("alone"), None);
    assert_eq!(alone.pools[1], straight.pools[1]);
    let w = |n: &Supernet| floats(n.stages[1].slots[1].feed_forward.inp.weight.val());
    assert_eq!(w(&alone.net), w(&straight.net));
    let w = |n: &Supernet| floats(n.stages[0].input.weight.val());
    assert_ne!(w(&alone.net), w(&straight.net), "stage 0 is not trained");
}
