//! Fine-tuning taggers (a token head) on a small synthetic treebank over the tiny fixture's
//! vocabulary, written as CoNLL-U and read back as the CLI reads UD English EWT: the model
//! learns the tags, the package the runtime loads tags the dev words as training scored them,
//! a quantized package trains on as itself, and a student distilled from the tagger's
//! per-token distributions agrees with it.

mod common;

use std::path::{Path, PathBuf};

use bertling_compressor::finetune::{finetune_model, finetune_tagger, tokenize_tagged, FinetuneConfig, FinetuneReport, TaskWeights};
use bertling_compressor::pipeline::RunFiles;
use bertling_compressor::tagging::conll::entity_f1;
use bertling_compressor::tagging::{read_tagged, resolve_tag_labels, TaggedSentence, UPOS_TAGS};
use bertling_compressor::task::TaskSpec;
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
            text.push_str(&format!("{}\t{w}\t{w}\t{t}\t_\t_\t0\t_\t_\t_\n", i + 1));
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
