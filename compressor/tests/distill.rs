//! Task-agnostic distillation: layer maps, a student that learns, and a killed run that
//! resumes to exactly the weights of an uninterrupted one.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::path::PathBuf;

use bertling_compressor::convert::encoder_from_data;
use bertling_compressor::corpus::Corpus;
use bertling_compressor::distill::{distill, evaluate, layer_outputs, pair_layers, param_values, trainee, DistillConfig, EvalSet, LayerMap, Stop};
use bertling_runtime::spec::{BlockSpec, EmbeddingSpec, ModelSpec, PoolingMode, PoolingSpec};
use bertling_compressor::targets::{full_request, TeacherSource};
use bertling_runtime::{ModelData, TensorData as Rt};
use burn::prelude::*;

/// The teacher's targets from the runtime, every layer (what any student may read).
fn targets(data: &ModelData, teacher: &bertling_compressor::student::Encoder) -> TeacherSource {
    TeacherSource::new(data, full_request(teacher), 0).unwrap()
}

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../runtime/tests/fixtures")
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("bertling-distill-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A small corpus over the tiny fixture's vocabulary, written once per test process (tests
/// run in parallel).
fn corpus_file() -> PathBuf {
    static PATH: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PATH.get_or_init(write_corpus).clone()
}

fn write_corpus() -> PathBuf {
    let words =
        "the a good bad movie film great terrible plot acting not very really i it this that and or but love hate boring fun story music ending actors scene"
            .split(' ')
            .collect::<Vec<_>>();
    let mut s = 7u64;
    let mut text = String::new();
    for line in 0..200 {
        let n = 3 + line % 9;
        let sentence: Vec<&str> = (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                words[(s % words.len() as u64) as usize]
            })
            .collect();
        text.push_str(&sentence.join(" "));
        text.push_str(if line % 17 == 0 { "\n\n" } else { " .\n" });
    }
    let p = tmpdir("corpus").join("corpus.txt");
    std::fs::write(&p, text).unwrap();
    p
}

/// A randomly initialised one-layer student, narrower than the teacher (24 vs 32).
fn small_student(seed: u64) -> ModelData {
    let spec = ModelSpec {
        format_version: bertling_runtime::spec::FORMAT_VERSION,
        embeddings: EmbeddingSpec { vocab_size: 44, max_positions: 64, type_vocab_size: 2, width: 24 },
        blocks: vec![BlockSpec::Attention { width: 24, heads: 2, head_dim: 12 }, BlockSpec::FeedForward { width: 24, inner: 48 }],
        layer_norm_eps: 1e-12,
        max_seq_len: 32,
        pooling: PoolingSpec { mode: PoolingMode::Mean, normalize: true },
        head: None,
        quantized: Default::default(),
        provenance: Default::default(),
    };
    let mut st = seed | 1;
    let mut tensors = BTreeMap::new();
    for t in spec.expected_tensors() {
        let n: usize = t.shape.iter().product();
        let data: Vec<f32> = if t.name.ends_with("ln.weight") {
            vec![1.0; n]
        } else {
            (0..n)
                .map(|_| {
                    st ^= st << 13;
                    st ^= st >> 7;
                    st ^= st << 17;
                    ((st >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * 0.1
                })
                .collect()
        };
        tensors.insert(t.name, Rt::F32 { shape: t.shape, data });
    }
    ModelData { spec, tensors, tokenizer_json: std::fs::read_to_string(fixtures().join("tiny_cls/tokenizer.json")).unwrap() }
}

#[test]
fn layer_maps() {
    assert_eq!(pair_layers(&LayerMap::Uniform, 3, 6).unwrap(), vec![(0, 1), (1, 3), (2, 5)]);
    assert_eq!(pair_layers(&LayerMap::Uniform, 4, 6).unwrap(), vec![(0, 1), (1, 2), (2, 4), (3, 5)]);
    assert_eq!(pair_layers(&LayerMap::Last, 3, 6).unwrap(), vec![(2, 5)]);
    assert_eq!(pair_layers(&"0,2,5".parse().unwrap(), 3, 6).unwrap(), vec![(0, 0), (1, 2), (2, 5)]);
    assert!(pair_layers(&LayerMap::Explicit(vec![0, 6, 1]), 3, 6).is_err());
    assert!(pair_layers(&LayerMap::Explicit(vec![0]), 3, 6).is_err());
    assert!("x,1".parse::<LayerMap>().is_err());
}

/// Linear warm-up to the peak, then linear decay to zero after the last step (closed form).
#[test]
fn learning_rate_schedule() {
    let cfg = DistillConfig { steps: 10, warmup: 2, lr: 1.0, ..Default::default() };
    let lrs: Vec<f64> = (0..10).map(|s| cfg.lr_at(s)).collect();
    let want = [0.5, 1.0, 1.0, 0.875, 0.75, 0.625, 0.5, 0.375, 0.25, 0.125];
    assert!(lrs.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-12), "{lrs:?}");
    let no_warmup = DistillConfig { warmup: 0, ..cfg };
    assert_eq!(no_warmup.lr_at(0), 1.0);
    assert_eq!(no_warmup.lr_at(9), 0.1);
}

fn config(steps: usize) -> DistillConfig {
    DistillConfig { steps, batch_size: 8, accumulation: 2, lr: 3e-3, warmup: 3, max_len: 32, checkpoint_every: 4, ..Default::default() }
}

#[test]
fn the_student_learns_the_teacher() {
    let device = Device::flex().autodiff();
    let teacher_data = bertling_runtime::load_hf_dir(&fixtures().join("tiny_cls")).unwrap();
    let teacher = encoder_from_data(&teacher_data, &Device::flex()).unwrap();
    let student = encoder_from_data(&small_student(3), &Device::flex()).unwrap();
    let cfg = config(40);
    let t = trainee(student, &teacher, &cfg, &device).unwrap();
    let mut corpus = Corpus::open(&corpus_file(), &teacher_data.tokenizer_json, cfg.max_len).unwrap();
    let mut first = None;
    let mut log = Vec::new();
    // Held-out texts the corpus does not contain, evaluated every 10 steps.
    let held_out: Vec<String> = ["a quiet river runs past the old mill", "numbers like 42 and 7 appear here", "completely different words entirely"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let eval = EvalSet::new(&held_out, &teacher_data.tokenizer_json, cfg.max_len, 2, 10).unwrap();
    let mut evals_seen = 0;
    let last = distill(t, &teacher, &mut targets(&teacher_data, &teacher), &mut corpus, &cfg, None, &device, Some(&eval), Some(&mut log), |p| {
        first.get_or_insert(p.losses);
        evals_seen += p.eval.is_some() as usize;
        ControlFlow::Continue(())
    })
    .unwrap()
    .losses;
    let first = first.unwrap();
    eprintln!("loss {} -> {} (hidden {} -> {}, attention {} -> {})", first.total, last.total, first.hidden, last.hidden, first.attention, last.attention);
    assert!(last.total < 0.5 * first.total, "loss {} -> {}", first.total, last.total);
    assert!(last.hidden < first.hidden && last.attention < first.attention);
    // The sentence-embedding term (through the last layers' projection) is trained too.
    assert!(first.sentence > 0.0 && last.sentence < first.sentence, "sentence loss {} -> {}", first.sentence, last.sentence);
    let lines: Vec<serde_json::Value> = String::from_utf8(log).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let steps: Vec<&serde_json::Value> = lines.iter().filter(|l| l.get("eval").is_none()).collect();
    assert_eq!(steps.len(), 40);
    assert_eq!(steps[39]["step"], 40);
    // Evaluations before the first step, every 10 steps, and after the last (reported to
    // progress too, except the one before training).
    let evals: Vec<&serde_json::Value> = lines.iter().filter(|l| l.get("eval").is_some()).collect();
    assert_eq!(evals.iter().map(|l| l["step"].as_u64().unwrap()).collect::<Vec<_>>(), [0, 10, 20, 30, 40]);
    assert_eq!(evals_seen, 4);
    let (e0, e40) = (&evals[0]["eval"], &evals[4]["eval"]);
    assert_eq!(e0["texts"], 3);
    let loss = |e: &serde_json::Value| e["loss"]["total"].as_f64().unwrap();
    assert!(loss(e40) < 0.5 * loss(e0), "held-out loss {} -> {}", loss(e0), loss(e40));
    // The student is narrower than the teacher: the cosine goes through the learned projection.
    let cos = |e: &serde_json::Value| e["cosine_mean"].as_f64().unwrap();
    assert!(cos(e40) > cos(e0) && cos(e40) <= 1.0 + 1e-6, "cosine {} -> {}", cos(e0), cos(e40));
}

/// The evaluation of a model against itself: zero loss, cosine one (closed form).
#[test]
fn evaluating_the_teacher_against_itself_gives_zero_loss_and_cosine_one() {
    let device = Device::flex().autodiff();
    let teacher_data = bertling_runtime::load_hf_dir(&fixtures().join("tiny_cls")).unwrap();
    let teacher = encoder_from_data(&teacher_data, &Device::flex()).unwrap();
    let cfg = config(1);
    let t = trainee(encoder_from_data(&teacher_data, &Device::flex()).unwrap(), &teacher, &cfg, &device).unwrap();
    assert!(t.proj.iter().all(Option::is_none), "same widths: no projections");
    let texts: Vec<String> = ["one text", "and a second, longer text with more tokens than the first"].iter().map(|s| s.to_string()).collect();
    let set = EvalSet::new(&texts, &teacher_data.tokenizer_json, 32, 8, 1).unwrap();
    let layers = layer_outputs(&teacher).len();
    let pairs = pair_layers(&LayerMap::Uniform, layers, layers).unwrap();
    let e = evaluate(&t, &teacher, &set, &pairs, &cfg.weights, &Device::flex());
    assert_eq!(e.texts, 2);
    assert!(e.loss.total.abs() < 1e-6, "{:?}", e.loss);
    assert!((e.cosine_mean.unwrap() - 1.0).abs() < 1e-5 && (e.cosine_p5.unwrap() - 1.0).abs() < 1e-5);
    assert!(EvalSet::new(&[], &teacher_data.tokenizer_json, 32, 8, 1).is_err());
}

#[test]
fn a_killed_run_resumes_exactly() {
    let device = Device::flex().autodiff();
    let teacher_data = bertling_runtime::load_hf_dir(&fixtures().join("tiny_cls")).unwrap();
    let teacher = encoder_from_data(&teacher_data, &Device::flex()).unwrap();
    let cfg = config(10);
    let corpus = corpus_file();
    let run = |dir: &PathBuf, stop_at: Option<(usize, Stop)>| {
        let student = encoder_from_data(&small_student(5), &Device::flex()).unwrap();
        let t = trainee(student, &teacher, &cfg, &device).unwrap();
        let mut c = Corpus::open(&corpus, &teacher_data.tokenizer_json, cfg.max_len).unwrap();
        distill(t, &teacher, &mut targets(&teacher_data, &teacher), &mut c, &cfg, Some(dir), &device, None, None, |p| match stop_at {
            Some((n, how)) if p.step == n => ControlFlow::Break(how),
            _ => ControlFlow::Continue(()),
        })
        .unwrap()
    };
    let straight = run(&tmpdir("straight"), None).trainee;
    let dir = tmpdir("killed");
    // Killed at step 7: the last checkpoint is step 4; steps 5..7 are lost and redone.
    assert_eq!(run(&dir, Some((7, Stop::Abandon))).step, 7);
    let state: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("state.json")).unwrap()).unwrap();
    assert_eq!(state["step"], 4);
    assert!(dir.join("step-4").is_dir() && !dir.join("step-8").exists(), "one complete checkpoint, the one state.json names");
    let resumed = run(&dir, None).trainee;
    // Stopped on request at step 6 (not a checkpoint step): a checkpoint of step 6 is written.
    let saved = tmpdir("stopped");
    run(&saved, Some((6, Stop::Save)));
    let state: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(saved.join("state.json")).unwrap()).unwrap();
    assert_eq!(state["step"], 6);
    let finished = run(&saved, None);
    assert_eq!(finished.step, 10);
    assert_eq!(
        param_values(&finished.trainee.student.blocks[1].feed_forward().unwrap().inp.weight),
        param_values(&straight.student.blocks[1].feed_forward().unwrap().inp.weight)
    );
    // Resuming a finished run does nothing and reports its last losses.
    let again = run(&saved, None);
    assert_eq!(again.step, 10);
    assert!(again.losses.total > 0.0);
    let a = param_values(&straight.student.blocks[1].feed_forward().unwrap().inp.weight);
    let b = param_values(&resumed.student.blocks[1].feed_forward().unwrap().inp.weight);
    assert_eq!(a, b, "resumed weights equal the uninterrupted run's");
    let pa = param_values(&straight.proj[0].as_ref().unwrap().weight);
    let pb = param_values(&resumed.proj[0].as_ref().unwrap().weight);
    assert_eq!(pa, pb);
    // A checkpoint made with other settings is refused, not silently mixed.
    let other = DistillConfig { lr: 1e-3, ..cfg.clone() };
    let student = encoder_from_data(&small_student(5), &Device::flex()).unwrap();
    let t = trainee(student, &teacher, &other, &device).unwrap();
    let mut c = Corpus::open(&corpus, &teacher_data.tokenizer_json, other.max_len).unwrap();
    let err = distill(t, &teacher, &mut targets(&teacher_data, &teacher), &mut c, &other, Some(&dir), &device, None, None, |_| ControlFlow::Continue(())).err().unwrap().to_string();
    assert!(err.contains("other settings (lr: 0.003, not 0.001)"), "{err}");
    // A checkpoint of the old layout (blocks as a struct of optional parts, no `layout` in
    // state.json) is refused with what to do, before its model state is read.
    let mut old = state.clone();
    old.as_object_mut().unwrap().remove("layout");
    std::fs::write(saved.join("state.json"), old.to_string()).unwrap();
    let student = encoder_from_data(&small_student(5), &Device::flex()).unwrap();
    let t = trainee(student, &teacher, &cfg, &device).unwrap();
    let mut c = Corpus::open(&corpus, &teacher_data.tokenizer_json, cfg.max_len).unwrap();
    let err = distill(t, &teacher, &mut targets(&teacher_data, &teacher), &mut c, &cfg, Some(&saved), &device, None, None, |_| ControlFlow::Continue(())).err().unwrap().to_string();
    assert!(err.contains("checkpoint layout 1") && err.contains("another checkpoint directory"), "{err}");
}

/// KDLSQ of a classifier: the quantized copy learns the teacher's label distribution too.
#[test]
fn kdlsq_of_a_classifier_distils_its_logits() {
    use bertling_compressor::convert::{quantize, QuantPlan};
    let device = Device::flex().autodiff();
    let teacher_data = bertling_runtime::load_hf_dir(&fixtures().join("tiny_cls")).unwrap();
    let teacher = encoder_from_data(&teacher_data, &Device::flex()).unwrap();
    let plan = QuantPlan { embedding_bits: 4, ..QuantPlan::weights(2, None) };
    let student = quantize(encoder_from_data(&teacher_data, &Device::flex()).unwrap(), &plan, &BTreeMap::new()).unwrap();
    let cfg = DistillConfig { lr: 2e-3, ..config(30) };
    let t = trainee(student, &teacher, &cfg, &device).unwrap();
    let mut corpus = Corpus::open(&corpus_file(), &teacher_data.tokenizer_json, cfg.max_len).unwrap();
    let mut first = None;
    let last = distill(t, &teacher, &mut targets(&teacher_data, &teacher), &mut corpus, &cfg, None, &device, None, None, |p| {
        first.get_or_insert(p.losses);
        ControlFlow::Continue(())
    })
    .unwrap()
    .losses;
    let first = first.unwrap();
    eprintln!("logits KL {} -> {}, total {} -> {}", first.logits, last.logits, first.total, last.total);
    assert!(first.logits > 0.0, "2-bit weights move the label distribution");
    assert!(last.logits < first.logits && last.total < first.total);
}

/// Block-wise reconstruction of the tiny teacher quantized at 2 bits: with the student's own
/// (quantized) inputs, each block's output moves closer to the teacher's, and so does the
/// last layer; a wrong pairing is an error.
#[test]
fn blockwise_reconstruction_brings_every_block_closer() {
    use bertling_compressor::blockwise::{reconstruct, BlockwiseConfig};
    use bertling_compressor::convert::{quantize, QuantPlan};
    use bertling_compressor::student::{Batch, Encoder, Masks};
    let plain = Device::flex();
    let device = plain.clone().autodiff();
    let teacher_data = bertling_runtime::load_hf_dir(&fixtures().join("tiny_cls")).unwrap();
    let teacher = encoder_from_data(&teacher_data, &plain).unwrap();
    let plan = QuantPlan::weights(2, None);
    let start = quantize(teacher.clone(), &plan, &BTreeMap::new()).unwrap();
    let mut corpus = Corpus::open(&corpus_file(), &teacher_data.tokenizer_json, 32).unwrap();
    let calib: Vec<_> = (0..3).map(|_| corpus.next_batch(8).unwrap()).collect();
    let held_out = Batch::new(&corpus.next_batch(16).unwrap(), &plain);
    // Per block: the error of the student's block on the student's own input against the
    // teacher's block on the teacher's input; then of the last layer.
    let errors = |enc: &Encoder| -> Vec<f32> {
        let m = Masks::new(&held_out);
        let (mut s, mut t) = (enc.embed(&held_out), teacher.embed(&held_out));
        let mut out = Vec::new();
        for i in 0..enc.blocks.len() {
            s = enc.block_forward(i, s, &m, &mut |_, _| {}).0;
            t = teacher.block_forward(i, t, &m, &mut |_, _| {}).0;
            out.push((s.clone() - t.clone()).powi_scalar(2).mean().into_scalar::<f32>());
        }
        out
    };
    let before = errors(&start);
    let cfg = BlockwiseConfig { iters: 40, lr: 3e-3, attention: 1.0 };
    let mut seen = Vec::new();
    let done = reconstruct(start.clone().train(), &teacher, &calib, &cfg, &device, |p| seen.push((p.block, p.iter))).unwrap().valid();
    assert_eq!(seen.len(), teacher.blocks.len() * 40, "every block trains for its steps");
    let after = errors(&done);
    eprintln!("block errors before {before:?}, after {after:?}");
    for (i, (b, a)) in before.iter().zip(&after).enumerate() {
        assert!(a < b, "block {i}: {a} vs {b}");
    }
    // The wrong teacher for this student, and no data.
    let other = encoder_from_data(&small_student(3), &plain).unwrap();
    let short = Encoder { blocks: other.blocks[..1].to_vec(), ..other };
    assert!(reconstruct(start.clone().train(), &short, &calib, &cfg, &device, |_| {}).is_err());
    assert!(reconstruct(start.clone().train(), &teacher, &[], &cfg, &device, |_| {}).is_err());
    // Same number of blocks, other widths: an error, not a panic.
    let narrow = encoder_from_data(&small_student(4), &plain).unwrap();
    let wide = Encoder { blocks: start.blocks[..2].to_vec(), ..start.clone() };
    assert!(reconstruct(narrow.train(), &wide, &calib, &cfg, &device, |_| {}).is_err());
}

#[test]
fn training_devices_parse_and_a_missing_backend_says_which_feature() {
    use bertling_compressor::pipeline::TrainDevice;
    assert_eq!("cpu".parse::<TrainDevice>().unwrap(), TrainDevice::Cpu);
    assert_eq!("cuda".parse::<TrainDevice>().unwrap(), TrainDevice::Cuda(0));
    assert_eq!("cuda:2".parse::<TrainDevice>().unwrap(), TrainDevice::Cuda(2));
    assert_eq!("wgpu".parse::<TrainDevice>().unwrap(), TrainDevice::Wgpu);
    for bad in ["gpu", "cuda:", "cuda:x", ""] {
        let e = bad.parse::<TrainDevice>().unwrap_err().to_string();
        assert!(e.contains("cpu, cuda, cuda:N") && e.contains(&format!("`{bad}`")), "{e}");
    }
    assert_eq!(TrainDevice::Cuda(2).to_string(), "cuda:2");
    assert!(TrainDevice::Cpu.device().is_ok());
    #[cfg(not(feature = "cuda"))]
    assert!(TrainDevice::Cuda(0).device().unwrap_err().to_string().contains("--features cuda"));
    #[cfg(not(feature = "wgpu"))]
    assert!(TrainDevice::Wgpu.device().unwrap_err().to_string().contains("--features wgpu"));
}

/// The same training on burn's wgpu backend (any adapter: lavapipe in CI) as on the CPU: the
/// CPU backend is the reference; a run stopped on the CPU resumes on the GPU.
#[cfg(feature = "wgpu")]
#[test]
fn training_on_wgpu_matches_the_cpu_and_resumes_across_devices() {
    use bertling_compressor::pipeline::{distill_student, RunFiles, TrainDevice};
    let teacher = bertling_runtime::load_hf_dir(&fixtures().join("tiny_cls")).unwrap();
    let student = small_student(9);
    let cfg = DistillConfig { checkpoint_every: 100, ..config(6) };
    let run = |device: TrainDevice, dir: &PathBuf, resume: bool, stop_after: Option<usize>| {
        let files = RunFiles { device, checkpoint: Some(dir), resume, stop_after, ..Default::default() };
        distill_student(&teacher, &student, &corpus_file(), &cfg, &files, &mut |_| {})
    };
    let cpu = run(TrainDevice::Cpu, &tmpdir("dev-cpu"), false, None).unwrap();
    let gpu = run(TrainDevice::Wgpu, &tmpdir("dev-gpu"), false, None).unwrap();
    let dir = tmpdir("dev-switch");
    assert!(run(TrainDevice::Cpu, &dir, false, Some(3)).is_err(), "stopped at step 3");
    let switched = run(TrainDevice::Wgpu, &dir, true, None).unwrap();
    let start = &student.tensors["blocks.1.ffn.in.weight"];
    for (name, trained) in [("wgpu", &gpu), ("cpu then wgpu", &switched)] {
        for (tensor, values) in trained.tensors.iter() {
            let (mut a, mut b) = (values.to_f32(), cpu.tensors[tensor].to_f32());
            if tensor.ends_with("attn.qkv.bias") {
                // The key bias adds the same score to every key of a query, which softmax
                // ignores: its gradient is zero up to rounding, and Adam's normalised steps on
                // that rounding noise (±lr) differ between backends. Compared: query and value.
                let inner = a.len() / 3;
                a.drain(inner..2 * inner);
                b.drain(inner..2 * inner);
            }
            let max = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
            // Each weight moved by ≈ 1.2e-2 over the six steps; the backends agree to < 1 % of that.
            assert!(max < 1e-4, "{name}: {tensor} differs from the CPU run by {max}");
        }
    }
    assert_ne!(cpu.tensors["blocks.1.ffn.in.weight"].to_f32(), start.to_f32(), "training moved the weights");
    // CPU training is bit-reproducible (see the resume test), so identical results would mean
    // the wgpu runs never left the CPU.
    let all = |m: &ModelData| m.tensors.values().flat_map(|t| t.to_f32()).collect::<Vec<f32>>();
    assert_ne!(all(&gpu), all(&cpu), "the wgpu run gave the CPU's bits");
    assert_ne!(all(&switched), all(&cpu), "the resumed wgpu run gave the CPU's bits");
}

/// Checkpoints written before augmentation existed trained on the lines as they are: their
/// settings read back with none, so resuming them asks for `--spans 0` rather than mixing.
#[test]
fn settings_without_augmentation_read_back_as_none() {
    let cfg = config(10);
    assert_eq!(cfg.augment, bertling_compressor::corpus::Augment::default());
    let mut v = serde_json::to_value(&cfg).unwrap();
    v.as_object_mut().unwrap().remove("augment");
    let old: DistillConfig = serde_json::from_value(v).unwrap();
    assert_eq!(old.augment, bertling_compressor::corpus::Augment::NONE);
    assert_ne!(old, cfg);
}
