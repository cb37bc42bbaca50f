//! Fine-tuning taggers (a token head) on a small synthetic treebank over the tiny fixture's
//! vocabulary, written as CoNLL-U and read back as the CLI reads UD English EWT: the model
//! learns the tags, the package the runtime loads tags the dev words as training scored them,
//! a quantized package trains on as itself, and a student distilled from the tagger's
//! per-token distributions agrees with it. Cross-View Training of the light tagger: the
//! factorised table, the views, learning (multi-task, with and without views, distilled), the
//! package the runtime scores as training did, and resuming to the same bytes.

mod common;

use std::path::{Path, PathBuf};

use bertling_compressor::cvt::{cvt, light_tagger, views, CvtConfig, CvtData, CvtProgress, CvtReport, LightShape, VIEWS};
use bertling_compressor::finetune::{finetune_model, finetune_tagger, tokenize_tagged, FinetuneConfig, FinetuneReport, TaskWeights};
use bertling_compressor::pipeline::RunFiles;
use bertling_compressor::tagging::conll::entity_f1;
use bertling_compressor::tagging::{read_tagged, resolve_tag_labels, TaggedSentence, UPOS_TAGS};
use bertling_compressor::task::TaskSpec;
use bertling_runtime::spec::BlockSpec;
use bertling_runtime::{HeadKind, LoadOptions, Model, ModelData, Precision};
use common::{config, quiet, Rng};

fn tiny_tok() -> ModelData {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../runtime/tests/fixtures/tiny_tok");
    bertling_runtime::load_hf_dir(&dir).unwrap()
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("bertling-tagging-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Words of the tiny vocabulary by tag; "films" and "loved" are two sub-words each.
const WORDS: [(&str, &[&str]); 9] = [
    ("DET", &["the", "a", "this"]),
    ("NOUN", &["movie", "film", "plot", "story", "films", "music"]),
    ("ADJ", &["good", "bad", "great", "boring"]),
    ("AUX", &["was", "is"]),
    ("PRON", &["i", "it"]),
    ("VERB", &["love", "hate", "loved"]),
    ("ADV", &["very", "really"]),
    ("CCONJ", &["and", "but"]),
    ("PUNCT", &[",", ".", "!"]),
];

impl Rng {
    fn word(&mut self, tag: &str) -> (String, String) {
        let words = WORDS.iter().find(|(t, _)| *t == tag).unwrap().1;
        (words[self.below(words.len())].to_string(), tag.to_string())
    }
}

/// `n` sentences from a few templates ("the film was very good .", "i loved this story !").
fn sentences(n: usize, seed: u64) -> Vec<Vec<(String, String)>> {
    let templates: [&[&str]; 3] = [
        &["DET", "NOUN", "AUX", "ADV", "ADJ", "PUNCT"],
        &["PRON", "VERB", "DET", "NOUN", "PUNCT"],
        &["DET", "NOUN", "AUX", "ADJ", "CCONJ", "DET", "NOUN", "AUX", "ADJ", "PUNCT"],
    ];
    let mut rng = Rng(seed);
    (0..n).map(|i| templates[i % 3].iter().map(|t| rng.word(t)).collect()).collect()
}

fn write_conllu(path: &Path, sents: &[Vec<(String, String)>]) {
    let mut text = String::new();
    for (k, s) in sents.iter().enumerate() {
        text.push_str(&format!("# sent_id = {k}\n"));
        for (i, (w, t)) in s.iter().enumerate() {
            // XPOS: the tag refined by the word's length (a second task for multi-task CVT).
            text.push_str(&format!("{}\t{w}\t{w}\t{t}\t{t}{}\t_\t0\t_\t_\t_\n", i + 1, w.len() % 2));
        }
        text.push('\n');
    }
    std::fs::write(path, text).unwrap();
}

/// The synthetic treebank, through the CoNLL-U reader: (train, dev), read once per process
/// (the tests run in parallel).
fn treebank() -> (Vec<TaggedSentence>, Vec<TaggedSentence>) {
    static READ: std::sync::OnceLock<(Vec<TaggedSentence>, Vec<TaggedSentence>)> = std::sync::OnceLock::new();
    READ.get_or_init(|| {
        let dir = tmpdir("treebank");
        let (train, dev) = (dir.join("x-ud-train.conllu"), dir.join("x-ud-dev.conllu"));
        write_conllu(&train, &sentences(96, 3));
        write_conllu(&dev, &sentences(24, 4));
        let task = upos();
        (read_tagged(&task, &train).unwrap(), read_tagged(&task, &dev).unwrap())
    })
    .clone()
}

/// The treebank's training sentences with XPOS tags, and that task.
fn xpos_train() -> (TaskSpec, Vec<TaggedSentence>) {
    let dir = tmpdir("treebank-xpos");
    let (train, dev) = (dir.join("x-ud-train.conllu"), dir.join("x-ud-dev.conllu"));
    write_conllu(&train, &sentences(96, 3));
    write_conllu(&dev, &sentences(24, 4));
    let mut task = TaskSpec::tagging("xpos").unwrap();
    resolve_tag_labels(&mut task, &[&train, &dev]).unwrap();
    let sents = read_tagged(&task, &train).unwrap();
    (task, sents)
}

fn upos() -> TaskSpec {
    TaskSpec::tagging("upos").unwrap()
}

/// The runtime's tags of `sents` (label ids) from a package's bytes.
fn runtime_tags(data: &ModelData, sents: &[TaggedSentence]) -> Vec<Vec<usize>> {
    let bytes = bertling_runtime::write_package(data).unwrap();
    let model = Model::from_package_bytes(&bytes, &LoadOptions::default()).unwrap();
    assert_eq!(model.info().head, Some(HeadKind::Token));
    sents
        .iter()
        .map(|s| {
            let words: Vec<&str> = s.words.iter().map(String::as_str).collect();
            model.tag_words(&words).unwrap().iter().map(|t| t.label_id).collect()
        })
        .collect()
}

fn accuracy(pred: &[Vec<usize>], sents: &[TaggedSentence]) -> f64 {
    let (mut right, mut all) = (0, 0);
    for (p, s) in pred.iter().zip(sents) {
        right += p.iter().zip(&s.tags).filter(|(a, b)| a == b).count();
        all += s.tags.len();
    }
    right as f64 / all as f64
}

fn tagger() -> &'static (ModelData, FinetuneReport) {
    static DONE: std::sync::OnceLock<(ModelData, FinetuneReport)> = std::sync::OnceLock::new();
    DONE.get_or_init(|| {
        let (train, dev) = treebank();
        let files = RunFiles::default();
        finetune_tagger(&tiny_tok(), None, &upos(), &train, &dev, &config(10), &files, &mut quiet()).unwrap()
    })
}

#[test]
fn a_tagger_learns_the_tags_and_the_runtime_scores_it_as_training_did() {
    let (train, dev) = treebank();
    // Every word is labelled at its first sub-word: "films" and "loved" are two tokens.
    let (set, cut) = tokenize_tagged(&dev, &tiny_tok().tokenizer_json, 64).unwrap();
    assert_eq!(cut, 0);
    let words: usize = dev.iter().map(|s| s.words.len()).sum();
    assert_eq!(set.targets.len(), words);
    assert!(set.inputs.iter().zip(&dev).any(|(i, s)| i.ids.len() > s.words.len() + 2));
    let (out, report) = tagger();
    assert_eq!(report.dev_words, Some(words));
    assert_eq!(report.dev_words_cut, Some(0));
    let head = out.spec.head.as_ref().unwrap();
    assert_eq!((head.kind, head.pooler), (HeadKind::Token, false));
    assert_eq!(head.labels, UPOS_TAGS.map(String::from));
    let best = report.best.scores.accuracy.unwrap();
    assert!(best >= 0.95, "dev accuracy {best}: {report:?}");
    // The package's own tags, through the runtime's tag_words, give the reported accuracy.
    let got = accuracy(&runtime_tags(out, &dev), &dev);
    assert!((got - best).abs() < 1e-9, "runtime {got}, training {best}");
    let train_acc = accuracy(&runtime_tags(out, &train), &train);
    assert!(train_acc >= 0.95, "train accuracy {train_acc}");
}

#[test]
fn a_quantized_tagger_stays_quantized() {
    let (train, dev) = treebank();
    let q = tagger().0.convert(Precision::Quantized { bits: 4, group: None, embedding_bits: 8 }).unwrap();
    let files = RunFiles::default();
    let (out, report) = finetune_tagger(&q, None, &upos(), &train, &dev, &config(2), &files, &mut quiet()).unwrap();
    assert_eq!(report.head, "kept");
    let model = Model::from_data(out.clone(), &LoadOptions::default()).unwrap();
    assert_eq!(model.info().matrix_bits, vec![4]);
    let got = accuracy(&runtime_tags(&out, &dev), &dev);
    assert!((got - report.best.scores.accuracy.unwrap()).abs() < 1e-9);
    assert!(got >= 0.9, "W4 tagger accuracy {got}");
}

#[test]
fn a_student_learns_the_teachers_per_token_distributions() {
    let (train, dev) = treebank();
    let (teacher, _) = tagger();
    // The teacher's own labels, nothing of the gold ones (no head probe either, which fits the
    // gold tags): the student follows the teacher.
    let cfg = FinetuneConfig { weights: TaskWeights { gold: 0.0, ..TaskWeights::default() }, head_probe: 0, ..config(10) };
    let files = RunFiles::default();
    let (out, report) = finetune_tagger(&tiny_tok(), Some(teacher), &upos(), &train, &dev, &cfg, &files, &mut quiet()).unwrap();
    assert!(report.distilled);
    let (s, t) = (runtime_tags(&out, &dev), runtime_tags(teacher, &dev));
    let agree = s.iter().flatten().zip(t.iter().flatten()).filter(|(a, b)| a == b).count();
    let loyalty = agree as f64 / s.iter().flatten().count() as f64;
    assert!(loyalty >= 0.9, "label loyalty {loyalty}");
    // eval's tag_loyalty counts the same, and each side's accuracy against the gold tags.
    let load = |d: &ModelData| Model::from_data(d.clone(), &LoadOptions::default()).unwrap();
    let names = upos().class_names().to_vec();
    let gold: Vec<(Vec<String>, Vec<String>)> = dev.iter().map(|s| (s.words.clone(), s.tags.iter().map(|&t| names[t].clone()).collect())).collect();
    let l = bertling_compressor::eval::tag_loyalty(&load(teacher), &load(&out), &gold).unwrap();
    assert!((l.label_loyalty - loyalty).abs() < 1e-12, "{l:?} vs {loyalty}");
    assert!((l.teacher_accuracy - accuracy(&t, &dev)).abs() < 1e-12);
    assert!((l.student_accuracy - accuracy(&s, &dev)).abs() < 1e-12);
    // Before training, the new head agrees with the teacher by chance only.
    let fresh = FinetuneConfig { epochs: 1, lr: 0.0, ..cfg };
    let (out, _) = finetune_tagger(&tiny_tok(), Some(teacher), &upos(), &train, &dev, &fresh, &files, &mut quiet()).unwrap();
    let s = runtime_tags(&out, &dev);
    let agree = s.iter().flatten().zip(t.iter().flatten()).filter(|(a, b)| a == b).count();
    assert!((agree as f64) < 0.5 * s.iter().flatten().count() as f64, "{agree} agree untrained");
}

#[test]
fn mismatched_heads_and_tasks_are_clear_errors() {
    let (train, dev) = treebank();
    let files = RunFiles::default();
    let cls = bertling_runtime::load_hf_dir(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../runtime/tests/fixtures/tiny_cls")).unwrap();
    let err = finetune_tagger(&tiny_tok(), Some(&cls), &upos(), &train, &dev, &config(1), &files, &mut quiet()).err().unwrap().to_string();
    assert!(err.contains("sequence-classification head") && err.contains("upos"), "{err}");
    let err = finetune_model(&tiny_tok(), None, &upos(), &[], &[], &config(1), &files, &mut quiet()).err().unwrap().to_string();
    assert!(err.contains("finetune_tagger"), "{err}");
    let sst2 = TaskSpec::glue("sst2").unwrap();
    let err = finetune_tagger(&tiny_tok(), None, &sst2, &train, &dev, &config(1), &files, &mut quiet()).err().unwrap().to_string();
    assert!(err.contains("not a tagging task"), "{err}");
}

/// Two-column CoNLL files with BIO entities ("the film" a THING, an adjective a QUALITY): tags
/// read from the data, the best model chosen and reported by entity-level F1, which the
/// runtime's tags of the package reproduce.
#[test]
fn conll_entities_are_scored_by_entity_f1() {
    let dir = tmpdir("conll");
    let bio = |sents: Vec<Vec<(String, String)>>| -> String {
        let mut text = String::from("-DOCSTART- O\n\n");
        for s in sents {
            let mut prev = String::new();
            for (w, t) in s {
                let tag = match t.as_str() {
                    "DET" => "B-THING".to_string(),
                    "NOUN" if prev == "DET" => "I-THING".to_string(),
                    "NOUN" => "B-THING".to_string(),
                    "ADJ" => "B-QUALITY".to_string(),
                    _ => "O".to_string(),
                };
                text.push_str(&format!("{w} {tag}\n"));
                prev = t;
            }
            text.push('\n');
        }
        text
    };
    std::fs::write(dir.join("train.conll"), bio(sentences(96, 5))).unwrap();
    std::fs::write(dir.join("dev.conll"), bio(sentences(24, 6))).unwrap();
    let mut task = TaskSpec::conll();
    let (train_path, dev_path) = (dir.join("train.conll"), dir.join("dev.conll"));
    resolve_tag_labels(&mut task, &[&train_path, &dev_path]).unwrap();
    assert_eq!(task.class_names(), ["B-QUALITY", "B-THING", "I-THING", "O"]);
    let (train, dev) = (read_tagged(&task, &train_path).unwrap(), read_tagged(&task, &dev_path).unwrap());
    let files = RunFiles::default();
    let (out, report) = finetune_tagger(&tiny_tok(), None, &task, &train, &dev, &config(10), &files, &mut quiet()).unwrap();
    let scores = &report.best.scores;
    assert_eq!(scores.metric_name, "entity_f1");
    assert!(scores.metric >= 0.9, "entity F1 {}", scores.metric);
    let names = task.class_names();
    let pred = runtime_tags(&out, &dev);
    let as_names = |v: &[usize]| v.iter().map(|&i| names[i].as_str()).collect::<Vec<_>>();
    let gold: Vec<Vec<&str>> = dev.iter().map(|s| as_names(&s.tags)).collect();
    let got: Vec<Vec<&str>> = pred.iter().map(|p| as_names(p)).collect();
    let (_, _, f1) = entity_f1(&gold, &got);
    assert!((f1 - scores.metric).abs() < 1e-9, "runtime {f1}, training {}", scores.metric);
}


fn light() -> CvtConfig {
    CvtConfig {
        shape: LightShape { embedding: 16, width: 16, layers: 2, kernel: 3, max_len: 32 },
        epochs: 12,
        batch_size: 16,
        lr: 1e-2,
        checkpoint_every: 0,
        ..CvtConfig::default()
    }
}

/// The unlabelled text: fresh sentences of the same templates, as lines.
fn unlabeled() -> Vec<String> {
    sentences(64, 9).iter().map(|s| s.iter().map(|(w, _)| w.as_str()).collect::<Vec<_>>().join(" ")).collect()
}

/// A rank-2 word table `W = a·uᵀ + b·vᵀ`: its two leading principal directions keep all of
/// it, so the factorised table has `‖W·R‖_F = ‖W‖_F`; one direction keeps the larger part.
#[test]
fn the_light_taggers_word_table_is_the_teachers_principal_directions() {
    let mut teacher = tiny_tok();
    let name = "embeddings.word";
    let shape = teacher.tensors[name].shape().to_vec();
    let (rows, w) = (shape[0], shape[1]);
    let mut rng = Rng(5);
    let u: Vec<f32> = (0..w).map(|_| rng.uniform()).collect();
    let v: Vec<f32> = (0..w).map(|k| if k % 2 == 0 { 0.1 } else { -0.1 }).collect();
    let mut data = Vec::with_capacity(rows * w);
    for _ in 0..rows {
        let (a, b) = (rng.uniform() * 3.0, rng.uniform());
        data.extend((0..w).map(|k| a * u[k] + b * v[k]));
    }
    let norm2 = |d: &[f32]| d.iter().map(|x| (*x as f64).powi(2)).sum::<f64>();
    let whole = norm2(&data);
    teacher.tensors.insert(name.into(), bertling_runtime::TensorData::F32 { shape: shape.clone(), data });
    let shape2 = LightShape { embedding: 2, width: 8, layers: 1, kernel: 2, max_len: 16 };
    let m = light_tagger(&teacher, &shape2, 1).unwrap();
    let t = m.tensors[name].to_f32();
    assert_eq!(m.tensors[name].shape(), &[rows, 2]);
    assert!((norm2(&t) - whole).abs() <= 1e-4 * whole, "{} vs {whole}", norm2(&t));
    let one = light_tagger(&teacher, &LightShape { embedding: 1, ..shape2 }, 1).unwrap();
    let kept = norm2(&one.tensors[name].to_f32());
    assert!(kept > 0.5 * whole && kept < whole, "{kept} of {whole}");
    assert_eq!(m.spec.blocks, vec![BlockSpec::Projection { input: 2, output: 16 }, BlockSpec::BiConv { width: 16, kernel: 2 }]);
    assert_eq!(m.tokenizer_json, teacher.tokenizer_json);
    assert!(light_tagger(&teacher, &LightShape { embedding: 33, ..shape2 }, 1).is_err(), "wider than the teacher");
    assert!(light_tagger(&teacher, &LightShape { kernel: 10, ..shape2 }, 1).is_err());
}

/// Forward `f_t`, backward `b_t`, future `f_{t-1}`, past `b_{t+1}`, zeros beyond the ends.
#[test]
fn the_views_are_halves_of_the_states_shifted() {
    use burn::prelude::*;
    let dev = Device::flex();
    let (b, s, h) = (2usize, 3usize, 2usize);
    let v: Vec<f32> = (0..b * s * 2 * h).map(|i| i as f32 + 1.0).collect();
    let states = Tensor::<3>::from_data(TensorData::new(v.clone(), [b, s, 2 * h]), &dev);
    let at = |bb: usize, t: usize, c: usize| v[(bb * s + t) * 2 * h + c];
    let got: Vec<Vec<f32>> = views(states).into_iter().map(|t| t.into_data().try_into_vec_as::<f32>().unwrap()).collect();
    for bb in 0..b {
        for t in 0..s {
            for c in 0..h {
                let i = (bb * s + t) * h + c;
                assert_eq!(got[0][i], at(bb, t, c), "forward");
                assert_eq!(got[1][i], at(bb, t, h + c), "backward");
                assert_eq!(got[2][i], if t == 0 { 0.0 } else { at(bb, t - 1, c) }, "future");
                assert_eq!(got[3][i], if t + 1 == s { 0.0 } else { at(bb, t + 1, h + c) }, "past");
            }
        }
    }
    assert_eq!(VIEWS, ["forward", "backward", "future", "past"]);
}

fn cvt_run(cfg: &CvtConfig, distill: Option<&ModelData>, multi: bool, files: &RunFiles) -> bertling_compressor::Result<(ModelData, CvtReport)> {
    let (train, dev) = treebank();
    let (xpos, xtrain) = xpos_train();
    let mut tasks = vec![upos()];
    let mut sets = vec![train];
    if multi {
        tasks.push(xpos);
        sets.push(xtrain);
    }
    let text = unlabeled();
    let data = CvtData { tasks: &tasks, train: &sets, dev: &dev, unlabeled: &text };
    cvt(&tiny_tok(), distill, &data, cfg, files, &mut |_: &CvtProgress| {})
}

/// Multi-task CVT learns the tags; the package (the first task's head, the auxiliary modules
/// dropped) tags the dev words through the runtime as training scored them, on the CPU and
/// with 8-bit weights nearly so.
#[test]
fn cross_view_training_learns_the_tags_and_the_package_is_an_ordinary_tagger() {
    let (train, dev) = treebank();
    let (out, report) = cvt_run(&light(), None, true, &RunFiles::default()).unwrap();
    assert_eq!(report.tasks, ["upos", "xpos"]);
    assert!(report.cvt && !report.distilled);
    assert_eq!(report.steps, 2 * 12 * 96usize.div_ceil(16), "labelled and unlabelled batches alternate");
    let best = report.best.scores.accuracy.unwrap();
    assert!(best >= 0.9, "dev accuracy {best}: {report:?}");
    let head = out.spec.head.as_ref().unwrap();
    assert_eq!((head.kind, head.pooler, head.labels.len()), (HeadKind::Token, false, 17));
    // Only the package's tensors: no auxiliary module, no second task's head.
    let expected: std::collections::BTreeSet<String> = out.spec.expected_tensors().into_iter().map(|t| t.name).collect();
    assert_eq!(out.tensors.keys().cloned().collect::<std::collections::BTreeSet<_>>(), expected);
    assert_eq!(out.spec.provenance.recipe["method"], "cvt");
    let got = accuracy(&runtime_tags(&out, &dev), &dev);
    assert!((got - best).abs() < 1e-9, "runtime {got}, training {best}");
    assert!(accuracy(&runtime_tags(&out, &train), &train) >= 0.9);
    let w8 = out.convert(Precision::Quantized { bits: 8, group: None, embedding_bits: 8 }).unwrap();
    let q = accuracy(&runtime_tags(&w8, &dev), &dev);
    assert!(q >= best - 0.05, "W8 {q} vs float {best}");
    assert_eq!(report.macs_per_token, 16 * 32 + 2 * (32 * 3 + 2 * 16 * 16) + 32 * 17);
}

/// The supervised baseline (no views, no unlabelled text) and distillation from the fine-tuned
/// BERT tagger alone both learn; a tagger of other labels is refused.
#[test]
fn the_baseline_and_distillation_learn_and_a_mismatched_tagger_is_refused() {
    let (base, report) = cvt_run(&CvtConfig { cvt: false, ..light() }, None, false, &RunFiles::default()).unwrap();
    assert!(!report.cvt && report.unlabeled_sentences == 0);
    assert_eq!(report.steps, 12 * 96usize.div_ceil(16));
    assert!(report.best.scores.accuracy.unwrap() >= 0.9, "{report:?}");
    assert_eq!(base.spec.head.as_ref().unwrap().kind, HeadKind::Token);
    let bert = &tagger().0;
    let (_, report) = cvt_run(&CvtConfig { cvt: false, ..light() }, Some(bert), false, &RunFiles::default()).unwrap();
    assert!(report.distilled && report.unlabeled_sentences > 0);
    assert!(report.best.scores.accuracy.unwrap() >= 0.9, "{report:?}");
    let mut other = bert.clone();
    other.spec.head.as_mut().unwrap().labels[0] = "OTHER".into();
    let err = cvt_run(&light(), Some(&other), false, &RunFiles::default()).unwrap_err();
    assert!(err.to_string().contains("fine-tune it on the same task"), "{err}");
    let (train, dev) = treebank();
    let tasks = [upos()];
    let sets = [train];
    let none: [String; 0] = [];
    let data = CvtData { tasks: &tasks, train: &sets, dev: &dev, unlabeled: &none };
    let err = cvt(&tiny_tok(), None, &data, &light(), &RunFiles::default(), &mut |_: &CvtProgress| {}).unwrap_err();
    assert!(err.to_string().contains("unlabelled text"), "{err}");
}

/// A run stopped with a checkpoint and resumed writes the same package bytes as one that ran
/// through.
#[test]
fn a_stopped_cvt_run_resumes_to_the_same_package() {
    let cfg = CvtConfig { epochs: 2, checkpoint_every: 5, ..light() };
    let (whole, _) = cvt_run(&cfg, None, true, &RunFiles::default()).unwrap();
    let dir = tmpdir("cvt-resume");
    let ck = dir.join("ck");
    let stopped = RunFiles { checkpoint: Some(&ck), stop_after: Some(9), ..RunFiles::default() };
    let err = cvt_run(&cfg, None, true, &stopped).unwrap_err();
    assert!(matches!(err, bertling_compressor::CompressError::Stopped { step: 9, .. }), "{err}");
    let again = RunFiles { checkpoint: Some(&ck), ..RunFiles::default() };
    assert!(cvt_run(&cfg, None, true, &again).unwrap_err().to_string().contains("--resume"));
    let resumed = RunFiles { checkpoint: Some(&ck), resume: true, ..RunFiles::default() };
    let (back, _) = cvt_run(&cfg, None, true, &resumed).unwrap();
    assert_eq!(bertling_runtime::write_package(&back).unwrap(), bertling_runtime::write_package(&whole).unwrap());
    let other = RunFiles { checkpoint: Some(&ck), resume: true, ..RunFiles::default() };
    let err = cvt_run(&CvtConfig { lr: 1e-3, ..cfg }, None, true, &other).unwrap_err();
    assert!(err.to_string().contains("another run"), "{err}");
}
