//! The word-substitution attack on the tiny classifier, with synonym sets drawn from its own
//! vocabulary: what it reports is checked against the model run independently, and against an
//! exhaustive search of every substitution within the budget.

use std::path::PathBuf;

use bertling_compressor::eval::Example;
use bertling_compressor::robust::{attack, AttackConfig, Synonyms};
use bertling_runtime::{LoadOptions, Model};

fn model() -> Model {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../runtime/tests/fixtures/tiny_cls");
    Model::load(dir, &LoadOptions::default()).unwrap()
}

const TEXTS: [&str; 8] = [
    "good movie",
    "the plot was not very good",
    "i love it",
    "bad acting and a boring story",
    "great film really fun",
    "terrible ending",
    "this story was boring",
    "the actors love the music",
];

fn synonyms() -> Synonyms {
    let mut s = Synonyms::default();
    for set in [
        &["good", "great", "fun"][..],
        &["bad", "terrible", "boring"],
        &["movie", "film", "story"],
        &["acting", "music", "ending", "scene"],
        &["love", "hate"],
    ] {
        s.add_synset(&set.iter().map(|w| w.to_string()).collect::<Vec<_>>());
    }
    s
}

/// Gold labels are the model's own, so every example is attacked.
fn examples(m: &Model) -> Vec<Example> {
    let labels = m.classify(&TEXTS).unwrap();
    TEXTS
        .iter()
        .zip(labels)
        .map(|(t, c)| Example { a: t.to_string(), b: None, label: c.label_id })
        .collect()
}

/// Every text reachable from `words` by changing at most `budget` words to their synonyms.
fn reachable(words: &[&str], syn: &Synonyms, budget: usize) -> Vec<String> {
    let mut out = vec![(words.iter().map(|w| w.to_string()).collect::<Vec<_>>(), 0usize, 0usize)];
    let mut all = Vec::new();
    while let Some((w, from, used)) = out.pop() {
        all.push(w.join(" "));
        if used == budget {
            continue;
        }
        for i in from..w.len() {
            for s in syn.of(words[i]) {
                let mut next = w.clone();
                next[i] = s.to_string();
                out.push((next, i + 1, used + 1));
            }
        }
    }
    all
}

#[test]
fn the_attack_turns_only_what_it_reports_and_misses_nothing_it_claims() {
    let m = model();
    let ex = examples(&m);
    let syn = synonyms();
    let cfg = AttackConfig { candidates: 10, max_changed: 0.5 };
    let r = attack(&m, &ex, &syn, &cfg).unwrap();
    assert_eq!(r.accuracy, 1.0);
    let turned = r.turned.len() as f64;
    assert!((r.attack_success_rate - turned / 8.0).abs() < 1e-12);
    assert!((r.accuracy_under_attack - (1.0 - turned / 8.0)).abs() < 1e-12);
    for t in &r.turned {
        let e = ex.iter().find(|e| e.a == t.original).unwrap();
        // The adversarial text really is classified otherwise ...
        let c = m.classify(&[t.adversarial.as_str()]).unwrap().remove(0);
        assert_ne!(c.label_id, e.label, "{t:?}");
        // ... and differs from the original only by synonyms, as many as reported.
        let (o, a): (Vec<&str>, Vec<&str>) =
            (t.original.split(' ').collect(), t.adversarial.split(' ').collect());
        assert_eq!(o.len(), a.len());
        let diffs: Vec<(&str, &str)> =
            o.iter().zip(&a).filter(|(x, y)| x != y).map(|(x, y)| (*x, *y)).collect();
        assert_eq!(diffs.len(), t.changed_words);
        assert!(diffs.iter().all(|(x, y)| syn.of(x).contains(y)), "{diffs:?}");
    }
    // Every example the exhaustive search cannot turn within the budget stays unturned, and
    // the attack turns at least one where a single substitution suffices for some example.
    let mut single = false;
    for e in &ex {
        let words: Vec<&str> = e.a.split(' ').collect();
        let budget = ((words.len() as f64 * cfg.max_changed).floor() as usize).max(1);
        let texts = reachable(&words, &syn, budget);
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let labels = m.classify(&refs).unwrap();
        let can = labels.iter().any(|c| c.label_id != e.label);
        let did = r.turned.iter().any(|t| t.original == e.a);
        assert!(can || !did, "{}: reported turned, but nothing within budget turns it", e.a);
        let one = reachable(&words, &syn, 1);
        let refs: Vec<&str> = one.iter().map(String::as_str).collect();
        single |= m.classify(&refs).unwrap().iter().any(|c| c.label_id != e.label);
    }
    assert!(!single || !r.turned.is_empty(), "a one-word turn exists but the attack found none");
}

#[test]
fn without_synonyms_nothing_is_turned() {
    let m = model();
    let mut ex = examples(&m);
    // One wrong gold label: accuracy counts it, the attack skips it.
    ex[0].label = (ex[0].label + 1) % 3;
    let r = attack(&m, &ex, &Synonyms::default(), &AttackConfig::default()).unwrap();
    assert_eq!(r.accuracy, 7.0 / 8.0);
    assert_eq!(r.accuracy_under_attack, r.accuracy);
    assert_eq!(r.attack_success_rate, 0.0);
    assert!(r.turned.is_empty());
}

#[test]
fn wordnet_files_are_read_and_their_absence_explained() {
    let dir = std::env::temp_dir().join(format!("bertling-wordnet-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let err = Synonyms::wordnet(&dir).unwrap_err().to_string();
    assert!(err.contains("wordnet-base"), "{err}");
    // The licence header (lines starting with spaces), then synsets in WordNet's format.
    let data = "  1 This software and database is being provided\n\
                00001740 00 a 02 good 0 great(p) 0 000 | a gloss\n\
                00002098 00 a 02 bad 0 terrible 0 000 | another\n";
    std::fs::write(dir.join("data.adj"), data).unwrap();
    let s = Synonyms::wordnet(&dir).unwrap();
    assert_eq!(s.of("good"), ["great"]);
    assert_eq!(s.of("terrible"), ["bad"]);
    std::fs::write(dir.join("data.noun"), "garbage line\n").unwrap();
    let err = Synonyms::wordnet(&dir).unwrap_err().to_string();
    assert!(err.contains("data.noun line 1"), "{err}");
}
