//! Agreement per category of what users type: the built-in set and the statistics, against a
//! second computation (one text at a time, cosines and order statistics in f64 here).

use std::path::PathBuf;

use bertling_compressor::eval::{agreement_by_category, AgreementSet};
use bertling_runtime::{LoadOptions, Model, Precision};

fn tiny() -> Model {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../runtime/tests/fixtures/tiny_cls");
    Model::from_data(bertling_runtime::load_hf_dir(&dir).unwrap(), &LoadOptions::default()).unwrap()
}

#[test]
fn builtin_set_covers_what_users_type() {
    let set = AgreementSet::builtin();
    let cats = set.categories();
    assert_eq!(cats, ["query", "word", "punctuation", "number_code", "name", "script", "long", "sentence"]);
    for c in &cats {
        let n = set.inputs.iter().filter(|i| i.category == *c).count();
        assert!(n >= 20, "{c}: {n} inputs");
    }
    let of = |c: &'static str| set.inputs.iter().filter(move |i| i.category == c).map(|i| i.text.as_str());
    assert!(of("punctuation").any(|t| t.trim().is_empty()), "whitespace-only inputs");
    assert!(of("query").all(|t| (1..=5).contains(&t.split_whitespace().count())), "queries of 1-5 words");
    assert!(of("script").all(|t| t.chars().any(|c| c as u32 >= 0x370)), "every input in another script");
    assert!(of("long").all(|t| t.split_whitespace().count() >= 260), "paragraphs past 256 tokens");
}

#[test]
fn agreement_per_category_matches_one_text_at_a_time() {
    let data = bertling_runtime::load_hf_dir(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../runtime/tests/fixtures/tiny_cls")).unwrap();
    let teacher = tiny();
    let low = data.convert(Precision::Quantized { bits: 2, group: None, embedding_bits: 4 }).unwrap();
    let student = Model::from_data(low, &LoadOptions::default()).unwrap();
    let set = AgreementSet::builtin();
    let got = agreement_by_category(&teacher, &student, &set).unwrap();
    assert_eq!(got.len(), set.categories().len());
    for g in &got {
        let mut cos: Vec<f64> = set
            .inputs
            .iter()
            .filter(|i| i.category == g.category)
            .map(|i| {
                let (a, b) = (&teacher.embed(&[i.text.as_str()]).unwrap()[0], &student.embed(&[i.text.as_str()]).unwrap()[0]);
                let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
                let norm = |v: &[f32]| v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
                dot / (norm(a) * norm(b))
            })
            .collect();
        cos.sort_by(f64::total_cmp);
        let mean = cos.iter().sum::<f64>() / cos.len() as f64;
        // The 5th percentile as the nearest rank below: index round(0.05 · (n − 1)).
        let p5 = cos[(0.05 * (cos.len() - 1) as f64).round() as usize];
        let a = &g.agreement;
        assert_eq!(a.texts, cos.len());
        for (what, x, y) in [("mean", a.mean, mean), ("p5", a.p5, p5), ("min", a.min, cos[0])] {
            assert!((x - y).abs() < 1e-5, "{} {what}: {x} vs {y}", g.category);
        }
        assert!(a.min <= a.p5 && a.min <= a.mean && a.mean <= 1.0 + 1e-6);
    }
    // A 2-bit copy of a random model disagrees somewhere; the teacher never with itself.
    assert!(got.iter().any(|g| g.agreement.min < 0.99));
    for g in agreement_by_category(&teacher, &teacher, &set).unwrap() {
        assert!(g.agreement.min > 1.0 - 1e-5, "{}: {:?}", g.category, g.agreement);
    }
}

#[test]
fn malformed_sets_are_refused_with_the_line() {
    let err = AgreementSet::parse("{\"category\": \"a\", \"text\": \"x\"}\n\n{\"category\": \"a\"}\n", "set.jsonl").unwrap_err();
    assert!(err.to_string().contains("set.jsonl, line 3"), "{err}");
    assert!(AgreementSet::parse("\n \n", "empty.jsonl").unwrap_err().to_string().contains("no inputs"));
    let ok = AgreementSet::parse("{\"category\": \"b\", \"text\": \" \", \"source\": \"written\"}\n{\"category\": \"a\", \"text\": \"?\"}", "t").unwrap();
    assert_eq!(ok.categories(), ["b", "a"]);
}
