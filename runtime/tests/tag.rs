//! Token classification against transformers: a random `BertForTokenClassification`
//! (`tests/fixtures/tiny_tok`, made by `scripts/make_fixtures.py --only tiny_tok`), its tokens'
//! logits, word ids and offsets as the fast tokenizer gives them, texts and pre-split words.

mod common;

use bertling_runtime::{load_hf_dir, read_package, write_package, Error, HeadKind, LoadOptions, Model, Precision, WordTag};
use common::{fixtures, with_description};

fn tok_dir() -> std::path::PathBuf {
    fixtures().join("tiny_tok")
}

fn golden() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(tok_dir().join("golden.json")).unwrap()).unwrap()
}

fn softmax(l: &[f64]) -> Vec<f64> {
    let m = l.iter().cloned().fold(f64::MIN, f64::max);
    let e: Vec<f64> = l.iter().map(|v| (v - m).exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|v| v / s).collect()
}

/// Per word of a golden case: (index of its first token, its last token) from `word_ids`.
fn word_tokens(case: &serde_json::Value) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = Vec::new();
    let mut last = None;
    for (t, w) in case["word_ids"].as_array().unwrap().iter().enumerate() {
        let Some(w) = w.as_u64() else { continue };
        if last == Some(w) {
            out.last_mut().unwrap().1 = t;
        } else {
            out.push((t, t));
            last = Some(w);
        }
    }
    out
}

/// The tags transformers' logits give: the first sub-word's softmax argmax and probability.
fn expected(case: &serde_json::Value, labels: &[String]) -> Vec<(String, usize, f64)> {
    word_tokens(case)
        .iter()
        .map(|&(first, _)| {
            let l: Vec<f64> = case["logits"][first].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
            let p = softmax(&l);
            let best = (0..p.len()).fold(0, |b, i| if p[i] > p[b] { i } else { b });
            (labels[best].clone(), best, p[best])
        })
        .collect()
}

fn labels() -> Vec<String> {
    golden()["labels"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect()
}

fn check(got: &[WordTag], want: &[(String, usize, f64)], what: &str, tol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: {got:?}");
    for (g, (label, id, p)) in got.iter().zip(want) {
        assert_eq!((&g.label, g.label_id), (label, *id), "{what}: {g:?}");
        assert!((g.prob as f64 - p).abs() < tol, "{what}: {g:?} vs {p}");
    }
}

/// `tag` on every golden text: the words, their byte ranges and labels as transformers gives.
fn check_texts(model: &Model, tol: f64) {
    let g = golden();
    let labels = labels();
    for case in g["texts"].as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        let got = model.tag(text).unwrap();
        check(&got, &expected(case, &labels), text, tol);
        let offsets = case["offsets"].as_array().unwrap();
        for (tag, (first, last)) in got.iter().zip(word_tokens(case)) {
            let start = offsets[first][0].as_u64().unwrap() as usize;
            let end = offsets[last][1].as_u64().unwrap() as usize;
            assert_eq!((tag.start, tag.end), (start, end), "{text:?}: {tag:?}");
            assert_eq!(tag.word, &text[start..end]);
        }
    }
}

#[test]
fn tagger_matches_transformers() {
    let model = Model::load(tok_dir(), &LoadOptions::default()).unwrap();
    assert_eq!(model.info().head, Some(HeadKind::Token));
    assert_eq!(model.info().labels.as_deref(), Some(&labels()[..]));
    check_texts(&model, 1e-5);
    // A word of two sub-words ("films" = film ##s) keeps the first one's label and spans both.
    let films = model.tag("i really loved  this films .").unwrap();
    assert_eq!(films.iter().map(|t| t.word.as_str()).collect::<Vec<_>>(), ["i", "really", "loved", "this", "films", "."]);
    assert!(model.tag("").unwrap().is_empty());
    // A batch gives what one text at a time does.
    let g = golden();
    let texts: Vec<&str> = g["texts"].as_array().unwrap().iter().map(|c| c["text"].as_str().unwrap()).collect();
    let batch = model.tag_texts(&texts).unwrap();
    for (t, b) in texts.iter().zip(&batch) {
        assert_eq!(&model.tag(t).unwrap(), b);
    }
}

/// A tagging teacher's training targets: every token's logits, as transformers computes them.
#[test]
fn teacher_targets_are_every_tokens_logits() {
    let model = Model::load(tok_dir(), &LoadOptions { backend: bertling_runtime::Backend::Cpu, ..Default::default() }).unwrap();
    let g = golden();
    let cases: Vec<&serde_json::Value> = g["texts"].as_array().unwrap().iter().collect();
    let texts: Vec<&str> = cases.iter().map(|c| c["text"].as_str().unwrap()).collect();
    let inputs = model.tokenize(&texts).unwrap();
    let req = bertling_runtime::TargetRequest { logits: true, ..Default::default() };
    let targets = model.teacher_targets(&inputs, &req).unwrap();
    for (case, t) in cases.iter().zip(&targets) {
        let want: Vec<f32> = case["logits"].as_array().unwrap().iter().flat_map(|r| r.as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32)).collect();
        let got = t.logits.as_ref().unwrap();
        assert_eq!(got.len(), want.len());
        assert!(got.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-4), "{:?}", case["text"]);
    }
}

#[test]
fn pre_split_words_match_transformers() {
    let model = Model::load(tok_dir(), &LoadOptions::default()).unwrap();
    let labels = labels();
    for case in golden()["words"].as_array().unwrap() {
        let words: Vec<&str> = case["words"].as_array().unwrap().iter().map(|w| w.as_str().unwrap()).collect();
        let got = model.tag_words(&words).unwrap();
        check(&got, &expected(case, &labels), &words.join(" "), 1e-5);
        let joined = words.join(" ");
        for (tag, w) in got.iter().zip(&words) {
            assert_eq!(&joined[tag.start..tag.end], *w);
            assert_eq!(tag.word, *w);
        }
    }
    // A word the tokenizer gives nothing for cannot be tagged: an error, not a shifted sequence.
    let err = model.tag_words(&["good", " ", "movie"]).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)) && err.to_string().contains("word 1"), "{err}");
}

#[test]
fn heads_of_the_wrong_kind_and_long_texts_are_clear_errors() {
    let tagger = Model::load(tok_dir(), &LoadOptions::default()).unwrap();
    assert!(matches!(tagger.classify(&["good movie"]).unwrap_err(), Error::NoClassificationHead));
    let classifier = Model::load(fixtures().join("tiny_cls"), &LoadOptions::default()).unwrap();
    assert_eq!(classifier.info().head, Some(HeadKind::Sequence));
    let err = classifier.tag("good movie").unwrap_err();
    assert!(matches!(err, Error::NoTokenHead), "{err}");
    assert!(matches!(classifier.tag_words(&["good"]).unwrap_err(), Error::NoTokenHead));
    // Longer than the model's 64 positions: refused, never silently cut.
    let long = vec!["good"; 200].join(" ");
    let err = tagger.tag(&long).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)) && err.to_string().contains("split it"), "{err}");
    let words = vec!["good"; 200];
    assert!(matches!(tagger.tag_words(&words).unwrap_err(), Error::InvalidArgument(_)));
}

#[test]
fn packages_keep_the_token_head() {
    let data = load_hf_dir(&tok_dir()).unwrap();
    let bytes = write_package(&data).unwrap();
    let back = read_package(&bytes).unwrap();
    assert_eq!(back.spec.head.as_ref().map(|h| h.kind), Some(HeadKind::Token));
    let model = Model::from_package_bytes(&bytes, &LoadOptions::default()).unwrap();
    check_texts(&model, 1e-5);
    // Quantized to 8 bits, every token's logits stay within 8-bit error of the float model's
    // (the random fixture has near ties, so labels alone may flip), and its tags follow them.
    let q = data.convert(Precision::Quantized { bits: 8, group: None, embedding_bits: 8 }).unwrap();
    let qm = Model::from_package_bytes(&write_package(&q).unwrap(), &LoadOptions::default()).unwrap();
    let fm = Model::from_data(data, &LoadOptions::default()).unwrap();
    let texts = ["the actors were boring, but the ending!", "good movie"];
    let req = bertling_runtime::TargetRequest { logits: true, ..Default::default() };
    let inputs = fm.tokenize(&texts).unwrap();
    let (ql, fl) = (qm.teacher_targets(&inputs, &req).unwrap(), fm.teacher_targets(&inputs, &req).unwrap());
    for ((a, b), text) in ql.iter().zip(&fl).zip(texts) {
        let (a, b) = (a.logits.as_ref().unwrap(), b.logits.as_ref().unwrap());
        let worst = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
        assert!(worst < 0.05, "{text}: 8-bit logits differ by {worst}");
        let tags = qm.tag(text).unwrap();
        assert_eq!(tags.len(), fm.tag(text).unwrap().len());
        let n_labels = labels().len();
        for (t, w) in tags.iter().zip(word_tokens(&golden()["texts"][if text == texts[0] { 1 } else { 0 }])) {
            let row = &a[w.0 * n_labels..(w.0 + 1) * n_labels];
            let best = (0..n_labels).fold(0, |m, i| if row[i] > row[m] { i } else { m });
            assert_eq!(t.label_id, best, "{text}: {t:?}");
        }
    }
    // A token head in a package that claims an older version is a damaged description.
    let old = with_description(&bytes, |d| d["format_version"] = 4.into());
    let err = read_package(&old).unwrap_err();
    assert!(err.to_string().contains("format version 5"), "{err}");
    let pooled = with_description(&bytes, |d| d["head"]["pooler"] = true.into());
    assert!(read_package(&pooled).unwrap_err().to_string().contains("no pooler"));
}
