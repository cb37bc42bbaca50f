//! Fine-tuning and task distillation on a small sentiment task over the tiny fixture's
//! vocabulary: the model learns it, the package the runtime loads scores as training reported,
//! a quantized package trains on as itself, a killed run resumes to the same bytes, a student
//! distilled from a fine-tuned teacher agrees with it, and a regression head learns scores.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use bertling_compressor::convert::{
    calibrate_activations, encoder_from_data, encoder_keeping_quantization, encoder_to_data,
    quantize, QuantPlan,
};
use bertling_compressor::eval::{loyalty, spearman, Example};
use bertling_compressor::finetune::{
    argmax, finetune_model, new_head, output_width, predict, probe_head, tokenize,
    FinetuneConfig, FinetuneProgress, FinetuneReport, TaskWeights,
};
use bertling_compressor::pipeline::RunFiles;
use bertling_compressor::student::{Batch, Encoder};
use bertling_compressor::task::{Column, Labels, Target, TaskExample, TaskSpec};
use bertling_runtime::spec::{BlockSpec, EmbeddingSpec, ModelSpec, PoolingMode, PoolingSpec};
use bertling_runtime::{write_package, LoadOptions, Model, ModelData, TensorData as Rt};
use burn::prelude::*;
use common::{config, quiet, Rng};

fn tiny() -> ModelData {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../runtime/tests/fixtures/tiny_cls");
    bertling_runtime::load_hf_dir(&dir).unwrap()
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("bertling-finetune-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

const TRAIN: usize = 192;

const POSITIVE: [&str; 4] = ["good", "great", "love", "fun"];
const NEGATIVE: [&str; 4] = ["bad", "terrible", "hate", "boring"];
const FILLER: [&str; 14] = [
    "the", "a", "movie", "film", "plot", "acting", "i", "it", "this", "story", "music", "ending",
    "scene", "was",
];

/// A sentence of 2..5 filler words with `sentiment` words inserted at random places.
fn sentence(rng: &mut Rng, sentiment: &[&'static str]) -> String {
    let mut words: Vec<&str> = (0..2 + rng.below(4)).map(|_| FILLER[rng.below(14)]).collect();
    for w in sentiment {
        let at = rng.below(words.len() + 1);
        words.insert(at, w);
    }
    words.join(" ")
}

/// `n` sentences, each with one positive or one negative word: label 1 or 0.
fn sentiment(n: usize, seed: u64) -> Vec<TaskExample> {
    let mut rng = Rng(seed);
    (0..n)
        .map(|i| {
            let positive = i % 2 == 0;
            let word = if positive { POSITIVE[rng.below(4)] } else { NEGATIVE[rng.below(4)] };
            let a = sentence(&mut rng, &[word]);
            TaskExample { a, b: None, target: Target::Class(usize::from(positive)) }
        })
        .collect()
}

fn sst2() -> TaskSpec {
    TaskSpec::glue("sst2").unwrap()
}

fn classify(model: &Model, ex: &[TaskExample]) -> Vec<usize> {
    let texts: Vec<&str> = ex.iter().map(|e| e.a.as_str()).collect();
    model.classify(&texts).unwrap().iter().map(|c| c.label_id).collect()
}

fn accuracy(pred: &[usize], ex: &[TaskExample]) -> f64 {
    let right = pred.iter().zip(ex).filter(|(p, e)| e.target == Target::Class(**p)).count();
    right as f64 / ex.len() as f64
}

fn load(data: &ModelData) -> Model {
    Model::from_data(data.clone(), &LoadOptions::default()).unwrap()
}

/// The tiny model fine-tuned on the sentiment task (12 epochs of 192 examples).
fn finetune_tiny(progress: &mut dyn FnMut(&FinetuneProgress)) -> (ModelData, FinetuneReport) {
    let (train, dev) = (sentiment(TRAIN, 11), sentiment(32, 12));
    let files = RunFiles::default();
    finetune_model(&tiny(), None, &sst2(), &train, &dev, &config(12), &files, progress).unwrap()
}

/// [`finetune_tiny`], once per test process: the teacher of the distillation tests.
fn finetuned_teacher() -> &'static (ModelData, f64) {
    static DONE: std::sync::OnceLock<(ModelData, f64)> = std::sync::OnceLock::new();
    DONE.get_or_init(|| {
        let (out, report) = finetune_tiny(&mut quiet());
        (out, report.best.scores.metric)
    })
}

/// A new head is first fitted on the frozen model's features (issue 29.5: a random head at a
/// fine-tuning learning rate stayed at chance for an epoch of 2,000 sentences). On a body whose
/// features carry the task (the fine-tuned tiny model, its head replaced by a random one) the
/// probe alone labels held-out sentences right where the random head is near chance, and it
/// leaves the pooler as it was. (The random tiny model's 32 features do not separate the task
/// linearly: a probe reaches 0.66 there.)
#[test]
fn a_new_head_is_fitted_on_frozen_features_before_finetuning() {
    let device = Device::flex();
    let data = &finetuned_teacher().0;
    let (train, dev) = (sentiment(TRAIN, 11), sentiment(64, 12));
    let train_set = tokenize(&train, &data.tokenizer_json, 32).unwrap();
    let dev_set = tokenize(&dev, &data.tokenizer_json, 32).unwrap();
    let mut enc = encoder_from_data(&data, &device).unwrap();
    let pooler = enc.head.take().and_then(|h| h.pooler);
    let random = new_head(output_width(&enc), 2, pooler, false, 42, &device);
    let score = |enc: &Encoder, set: &bertling_compressor::finetune::Tokenized, ex| {
        let logits = predict(enc, set, &device);
        accuracy(&logits.iter().map(|l| argmax(l)).collect::<Vec<_>>(), ex)
    };
    enc.head = Some(random.clone());
    let before = (score(&enc, &train_set, &train), score(&enc, &dev_set, &dev));
    enc.head = Some(probe_head(&enc, random.clone(), &train_set, 200, &device));
    let after = (score(&enc, &train_set, &train), score(&enc, &dev_set, &dev));
    assert!(before.0 < 0.65 && before.1 < 0.65, "the random head knows the task: {before:?}");
    assert!(after.0 >= 0.85 && after.1 >= 0.8, "probe: {after:?} from {before:?}");
    let (fitted, start) = (enc.head.as_ref().unwrap(), &random);
    let same = |a: &Tensor<2>, b: &Tensor<2>| {
        (a.clone() - b.clone()).abs().max().into_scalar::<f32>() == 0.0
    };
    let (p, q) = (fitted.pooler.as_ref().unwrap(), start.pooler.as_ref().unwrap());
    assert!(same(&p.weight.val(), &q.weight.val()), "the probe changed the pooler");
    assert!(!same(&fitted.classifier.weight.val(), &start.classifier.weight.val()));
}

/// From the tiny model, whose 3-label head does not fit the task: a new head, trained until the
/// dev set is nearly all right; the package the runtime loads labels the dev set as training
/// scored it, with the task's label names.
#[test]
fn finetuning_learns_the_task_and_the_package_scores_as_reported() {
    let (train, dev) = (sentiment(TRAIN, 11), sentiment(32, 12));
    let mut seen = Vec::new();
    let mut progress = |p: &FinetuneProgress| seen.push((p.step, p.dev.clone()));
    let (out, report) = finetune_tiny(&mut progress);
    assert_eq!(report.head, "new");
    assert_eq!(report.steps, 12 * 12);
    assert_eq!(seen.len(), 144);
    let evaluated: Vec<usize> = seen.iter().filter(|(_, d)| d.is_some()).map(|(s, _)| *s).collect();
    assert_eq!(evaluated, (1..=12).map(|e| e * 12).collect::<Vec<_>>(), "a dev score per epoch");
    let best = &report.best;
    assert!(best.scores.metric >= 0.9, "dev accuracy {}", best.scores.metric);
    let at_best = seen[best.step - 1].1.as_ref().unwrap();
    assert_eq!(at_best, &best.scores);
    let model = load(&out);
    assert_eq!(
        model.info().labels.as_deref(),
        Some(&["negative".to_string(), "positive".into()][..])
    );
    let acc = accuracy(&classify(&model, &dev), &dev);
    assert!((acc - best.scores.metric).abs() < 1e-12, "runtime {acc} vs training {best:?}");
    assert_eq!(out.spec.provenance.recipe["method"], "finetune");
    assert_eq!(out.spec.provenance.metrics["best_step"], best.step);
    // A run of no epochs is refused.
    assert!(finetune_model(
        &tiny(),
        None,
        &sst2(),
        &train,
        &dev,
        &config(0),
        &RunFiles::default(),
        &mut quiet()
    )
    .is_err());
}

/// A quantized package, imported for training, exports back to the same codes and steps and
/// computes what the runtime computes; fine-tuned, it is still quantized the same way.
#[test]
fn a_quantized_package_trains_on_as_itself() {
    let device = Device::flex();
    let teacher = finetuned_teacher().0.clone();
    let (train, dev) = (sentiment(TRAIN, 11), sentiment(32, 12));
    let inputs = tokenize(&train[..32], &teacher.tokenizer_json, 32).unwrap().inputs;
    let batch = Batch::new(&inputs, &device);
    for (what, per_token, smooth) in
        [("tensor steps, smoothed", false, Some(0.5)), ("token", true, None)]
    {
        let enc = encoder_from_data(&teacher, &device).unwrap();
        let acts = calibrate_activations(&enc, &batch, 8, Default::default(), smooth).unwrap();
        let plan = QuantPlan {
            act_bits: Some(8),
            act_per_token: per_token,
            smooth,
            ..QuantPlan::weights(4, Some(32))
        };
        let q = encoder_to_data(&quantize(enc, &plan, &acts).unwrap(), &teacher).unwrap();
        let back = encoder_keeping_quantization(&q, &device).unwrap();
        let again = encoder_to_data(&back, &q).unwrap();
        assert_eq!(again.spec, q.spec, "{what}");
        for (name, t) in &q.tensors {
            match (t, &again.tensors[name]) {
                (Rt::Quant { matrix: a, act: x }, Rt::Quant { matrix: b, act: y }) => {
                    assert_eq!((&a.codes, &a.scales), (&b.codes, &b.scales), "{what}: {name}");
                    assert_eq!(x.as_ref().map(|x| x.step), y.as_ref().map(|y| y.step), "{name}");
                    let (m, n) = (
                        x.as_ref().and_then(|x| x.smooth.clone()),
                        y.as_ref().and_then(|y| y.smooth.clone()),
                    );
                    assert_eq!(m.is_some(), n.is_some(), "{what}: {name} smoothing");
                    for (u, v) in m.unwrap_or_default().iter().zip(n.unwrap_or_default()) {
                        assert!((u - v).abs() <= 1e-6 * u.abs(), "{what}: {name} smoothing");
                    }
                }
                (a, b) => assert_eq!(a.to_f32(), b.to_f32(), "{what}: {name}"),
            }
        }
        // The imported encoder's logits are the runtime's.
        let runtime = load(&q).classify_inputs(&inputs).unwrap();
        let logits = back.forward(&batch).logits.unwrap();
        let probs = burn::tensor::activation::softmax(logits, 1);
        let probs: Vec<f32> = probs.into_data().try_into_vec_as::<f32>().unwrap();
        for (i, c) in runtime.iter().enumerate() {
            for (j, p) in c.probs.iter().enumerate() {
                assert!((probs[i * 2 + j] - p).abs() < 1e-4, "{what}: input {i} label {j}");
            }
        }
        // Fine-tuned (its head kept: it has the task's labels), it is quantized as before.
        let (out, report) = finetune_model(
            &q,
            None,
            &sst2(),
            &train,
            &dev,
            &config(4),
            &RunFiles::default(),
            &mut quiet(),
        )
        .unwrap();
        assert_eq!(report.head, "kept");
        assert_eq!(out.spec.quantized, q.spec.quantized, "{what}");
        assert!(report.best.scores.metric >= 0.85, "{what}: {:?}", report.best);
        let acc = accuracy(&classify(&load(&out), &dev), &dev);
        assert!((acc - report.best.scores.metric).abs() < 1e-12, "{what}: runtime {acc}");
    }
}

/// Stopped after step 7 with a checkpoint and resumed, a run writes the same package, byte for
/// byte, as one never stopped; a checkpoint of other settings is refused.
#[test]
fn a_stopped_run_resumes_to_the_same_package() {
    let (train, dev) = (sentiment(48, 21), sentiment(16, 22));
    let cfg = FinetuneConfig { checkpoint_every: 2, eval_every: 4, ..config(3) };
    let run = |files: &RunFiles| {
        finetune_model(&tiny(), None, &sst2(), &train, &dev, &cfg, files, &mut quiet())
    };
    let whole = run(&RunFiles::default()).unwrap().0;
    let dir = tmpdir("resume");
    let files = RunFiles { checkpoint: Some(&dir), stop_after: Some(7), ..RunFiles::default() };
    let err = run(&files).err().unwrap().to_string();
    assert!(err.contains("stopped after step 7"), "{err}");
    let err = run(&files).err().unwrap().to_string();
    assert!(err.contains("--resume"), "an existing checkpoint needs resume: {err}");
    let files = RunFiles { resume: true, stop_after: None, ..files };
    let resumed = run(&files).unwrap().0;
    assert_eq!(write_package(&resumed).unwrap(), write_package(&whole).unwrap());
    let other = FinetuneConfig { lr: 1e-3, ..cfg.clone() };
    let err = finetune_model(&tiny(), None, &sst2(), &train, &dev, &other, &files, &mut quiet())
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("another fine-tuning run"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A randomly initialised one-layer student (width 24) with the tiny tokenizer.
fn small_student() -> ModelData {
    let spec = ModelSpec {
        format_version: bertling_runtime::spec::FORMAT_VERSION,
        embeddings: EmbeddingSpec {
            vocab_size: 44,
            max_positions: 64,
            type_vocab_size: 2,
            width: 24,
        },
        blocks: vec![
            BlockSpec::Attention { width: 24, heads: 2, head_dim: 12 },
            BlockSpec::FeedForward { width: 24, inner: 48 },
        ],
        layer_norm_eps: 1e-12,
        max_seq_len: 32,
        pooling: PoolingSpec { mode: PoolingMode::Mean, normalize: true },
        head: None,
        quantized: Default::default(),
        provenance: Default::default(),
    };
    let mut rng = Rng(99);
    let mut tensors = BTreeMap::new();
    for t in spec.expected_tensors() {
        let n: usize = t.shape.iter().product();
        let data: Vec<f32> = if t.name.ends_with("ln.weight") {
            vec![1.0; n]
        } else {
            (0..n).map(|_| (rng.below(2001) as f32 / 1000.0 - 1.0) * 0.1).collect()
        };
        tensors.insert(t.name, Rt::F32 { shape: t.shape, data });
    }
    ModelData { spec, tensors, tokenizer_json: tiny().tokenizer_json }
}

/// Task distillation: a student trained on the teacher's logits alone (no gold labels) agrees
/// with the fine-tuned teacher on the dev set; with hidden-state and attention losses too (the
/// widths differ: learned projections) it still trains; unfit teachers are refused with why.
#[test]
fn a_student_distilled_from_the_finetuned_teacher_agrees_with_it() {
    let teacher = &finetuned_teacher().0;
    let (train, dev) = (sentiment(TRAIN, 11), sentiment(32, 12));
    let only_teacher = TaskWeights { gold: 0.0, ..TaskWeights::default() };
    let cfg = FinetuneConfig { weights: only_teacher, ..config(16) };
    let student = small_student();
    let run = |t: &ModelData, cfg: &FinetuneConfig| {
        finetune_model(
            &student,
            Some(t),
            &sst2(),
            &train,
            &dev,
            cfg,
            &RunFiles::default(),
            &mut quiet(),
        )
    };
    let (out, report) = run(teacher, &cfg).unwrap();
    assert!(report.distilled);
    let examples: Vec<Example> = dev
        .iter()
        .map(|e| match e.target {
            Target::Class(label) => Example { a: e.a.clone(), b: None, label },
            Target::Score(_) => unreachable!(),
        })
        .collect();
    let l = loyalty("sst2", &load(teacher), &load(&out), &examples).unwrap();
    assert!(l.label_loyalty >= 0.9, "{l:?}");
    let states = TaskWeights { hidden: 1.0, attention: 1.0, ..TaskWeights::default() };
    let with_states = FinetuneConfig { weights: states, ..config(8) };
    let mut parts = Vec::new();
    let mut watch = |p: &FinetuneProgress| parts.push(p.losses);
    let files = RunFiles::default();
    let (_, r) = finetune_model(
        &student,
        Some(teacher),
        &sst2(),
        &train,
        &dev,
        &with_states,
        &files,
        &mut watch,
    )
    .unwrap();
    assert!(r.best.scores.metric >= 0.75, "{:?}", r.best);
    assert!(parts.iter().all(|l| l.hidden > 0.0 && l.attention > 0.0 && l.logits > 0.0));
    let err = run(&tiny(), &cfg).err().unwrap().to_string();
    assert!(err.contains("predicts 3 label(s)"), "{err}");
    let err = run(&student, &cfg).err().unwrap().to_string();
    assert!(err.contains("no classification head"), "{err}");
}

/// A pair task scored by a regression head (a user's own TSV layout): the score is the number
/// of positive words in both texts; the head learns to rank them, and the runtime's scores
/// give the Spearman correlation that training reported.
#[test]
fn a_regression_head_learns_scores_of_pairs() {
    let make = |n: usize, seed: u64| -> Vec<TaskExample> {
        let mut rng = Rng(seed);
        (0..n)
            .map(|i| {
                let (ka, kb) = (i % 3, (i / 3) % 2);
                let words = |k: usize, rng: &mut Rng| -> Vec<&'static str> {
                    (0..k).map(|_| POSITIVE[rng.below(4)]).collect()
                };
                let (wa, wb) = (words(ka, &mut rng), words(kb, &mut rng));
                let a = sentence(&mut rng, &wa);
                let b = sentence(&mut rng, &wb);
                TaskExample { a, b: Some(b), target: Target::Score((ka + kb) as f32) }
            })
            .collect()
    };
    let task = TaskSpec {
        name: "custom".into(),
        text: Column::Index(0),
        text_pair: Some(Column::Index(1)),
        label: Column::Index(2),
        header: false,
        labels: Labels::Regression,
        format: Default::default(),
    };
    let (train, dev) = (make(TRAIN, 31), make(36, 32));
    let (out, report) = finetune_model(
        &tiny(),
        None,
        &task,
        &train,
        &dev,
        &config(16),
        &RunFiles::default(),
        &mut quiet(),
    )
    .unwrap();
    assert_eq!(report.best.scores.metric_name, "spearman");
    assert!(report.best.scores.metric >= 0.8, "{:?}", report.best);
    let model = load(&out);
    assert_eq!(model.info().labels.as_deref(), Some(&["score".to_string()][..]));
    let pairs: Vec<(&str, &str)> =
        dev.iter().map(|e| (e.a.as_str(), e.b.as_deref().unwrap_or(""))).collect();
    let pred: Vec<f64> =
        model.classify_pairs(&pairs).unwrap().iter().map(|c| c.probs[0] as f64).collect();
    let gold: Vec<f64> = dev
        .iter()
        .map(|e| match e.target {
            Target::Score(s) => s as f64,
            Target::Class(_) => unreachable!(),
        })
        .collect();
    let s = spearman(&pred, &gold);
    assert!((s - report.best.scores.metric).abs() < 1e-6, "runtime {s} vs {:?}", report.best);
}

/// BERT-of-Theseus: with no module replaced the mixed model is the teacher, with all it is the
/// student; trained by progressive replacing, a 1-layer student of the 2-layer fine-tuned
/// teacher learns the task, and the runtime scores its package as training did.
#[test]
fn module_replacing_trains_a_student_that_stands_in_for_the_teacher() {
    use bertling_compressor::etd::{extract, Init, StudentShape};
    use bertling_compressor::finetune::{mixed_logits, modules, Replacing};
    let teacher = &finetuned_teacher().0;
    let shape = StudentShape::from_teacher(teacher, Some(1), None, None, None).unwrap();
    let student = extract(teacher, &shape, &Init::EtdRand, 3).unwrap();
    let device = Device::flex();
    let (s, t) = (
        encoder_from_data(&student, &device).unwrap(),
        encoder_from_data(teacher, &device).unwrap(),
    );
    let m = modules(&s, &t).unwrap();
    assert_eq!(m, vec![(0..2, 0..4)]);
    let (train, dev) = (sentiment(TRAIN, 11), sentiment(32, 12));
    let batch = Batch::new(&tokenize(&dev, &teacher.tokenizer_json, 32).unwrap().inputs, &device);
    let floats = |x: Tensor<2>| x.into_data().try_into_vec_as::<f32>().unwrap();
    let as_teacher = floats(mixed_logits(&s, &t, &m, &[false], &batch).unwrap());
    let as_student = floats(mixed_logits(&s, &t, &m, &[true], &batch).unwrap());
    assert_eq!(as_teacher, floats(t.forward(&batch).logits.unwrap()));
    assert_eq!(as_student, floats(s.forward(&batch).logits.unwrap()));
    let cfg = FinetuneConfig {
        replacing: Some(Replacing::default()),
        weights: TaskWeights { logits: 0.0, ..TaskWeights::default() },
        ..config(12)
    };
    let run = |st: &ModelData, t: Option<&ModelData>| {
        finetune_model(st, t, &sst2(), &train, &dev, &cfg, &RunFiles::default(), &mut quiet())
    };
    let (out, report) = run(&student, Some(teacher)).unwrap();
    assert!(report.best.scores.metric >= 0.85, "{:?}", report.best);
    let acc = accuracy(&classify(&load(&out), &dev), &dev);
    assert!((acc - report.best.scores.metric).abs() < 1e-12, "runtime {acc}");
    assert_eq!(out.spec.blocks.len(), 2);
    let err = run(&student, None).err().unwrap().to_string();
    assert!(err.contains("needs the fine-tuned teacher"), "{err}");
    let err = run(&small_student(), Some(teacher)).err().unwrap().to_string();
    assert!(err.contains("teacher's width (32)"), "{err}");
}
