//! The `bertling` command end to end, on the small random classifier fixture.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use bertling_runtime::{LoadOptions, Model};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_bertling"))
}

fn tiny() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../runtime/tests/fixtures/tiny_cls")
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("bertling-cli-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

fn run_with_stdin(cmd: &mut Command, stdin: &str) -> Output {
    let mut child =
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    // A command that fails early may exit before reading its input: a broken pipe is fine.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    child.wait_with_output().unwrap()
}

#[test]
fn embed_reads_lines_and_prints_json_arrays() {
    let input = "good movie\n\nthe plot was not very good\n";
    let out =
        run_with_stdin(bin().args(["embed", "--model"]).arg(tiny()).args(["--batch", "2"]), input);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<Vec<f32>> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "one output per input line, the empty line included");
    let model = Model::load(tiny(), &LoadOptions::default()).unwrap();
    let want = model.embed(&["good movie", "", "the plot was not very good"]).unwrap();
    for (a, b) in lines.iter().zip(&want) {
        assert_eq!(a.len(), 32);
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < 1e-6);
        }
    }
}

#[test]
fn classify_prints_label_and_probs() {
    let file = tmp("in.txt");
    std::fs::write(&file, "good movie\ni hate this boring film .\n").unwrap();
    let out =
        bin().args(["classify", "--model"]).arg(tiny()).arg("--input").arg(&file).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let model = Model::load(tiny(), &LoadOptions::default()).unwrap();
    let want = model.classify(&["good movie", "i hate this boring film ."]).unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let got: Vec<serde_json::Value> =
        text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(got.len(), 2);
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g["label"], w.label.as_str());
        let probs: Vec<f32> = serde_json::from_value(g["probs"].clone()).unwrap();
        assert_eq!(probs.len(), 3);
        assert!((probs.iter().sum::<f32>() - 1.0).abs() < 1e-5);
    }
}

fn tiny_tok() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../runtime/tests/fixtures/tiny_tok")
}

/// `tag`: one JSON object per line with the runtime's tags (checked against transformers in
/// runtime/tests/tag.rs); `--conllu`: the file back with only the UPOS column replaced, and the
/// accuracy against the column it had.
#[test]
fn tag_prints_words_and_rewrites_conllu() {
    let model = Model::load(tiny_tok(), &LoadOptions::default()).unwrap();
    let texts = ["the actors were boring, but the ending!", "", "i really loved  this films ."];
    let out = run_with_stdin(
        bin().args(["tag", "--batch", "2", "--model"]).arg(tiny_tok()),
        &(texts.join("\n") + "\n"),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let got: Vec<serde_json::Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(got.len(), 3);
    for (g, t) in got.iter().zip(texts) {
        let want = model.tag(t).unwrap();
        let words = g["words"].as_array().unwrap();
        assert_eq!(words.len(), want.len());
        for (w, x) in words.iter().zip(&want) {
            assert_eq!(w["label"], x.label.as_str());
            assert_eq!((w["start"].as_u64(), w["end"].as_u64()), (Some(x.start as u64), Some(x.end as u64)));
            assert_eq!(w["word"], x.word.as_str());
        }
    }
    let conllu = "# sent_id = 1\n1-2\tgoodmovie\t_\t_\t_\t_\t_\t_\t_\t_\n\
1\tgood\tgood\tADJ\tJJ\t_\t2\tamod\t_\t_\n2\tmovie\tmovie\tNOUN\tNN\t_\t0\troot\t_\t_\n\n\
1\tthe\tthe\tDET\tDT\t_\t2\tdet\t_\t_\n2\tacting\tact\tNOUN\tNN\t_\t0\troot\t_\t_\n\
3\t!\t!\tPUNCT\t.\t_\t2\tpunct\t_\t_\n\n";
    let file = tmp("in.conllu");
    std::fs::write(&file, conllu).unwrap();
    let out = bin().args(["tag", "--model"]).arg(tiny_tok()).arg("--conllu").arg(&file).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let (got, had): (Vec<&str>, Vec<&str>) = (text.lines().collect(), conllu.lines().collect());
    assert_eq!(got.len(), had.len());
    let mut right = 0;
    let mut predicted = Vec::new();
    for (g, h) in got.iter().zip(&had) {
        let (gf, hf): (Vec<&str>, Vec<&str>) = (g.split('\t').collect(), h.split('\t').collect());
        if hf.len() == 10 && !hf[0].contains('-') {
            assert_eq!([&gf[..3], &gf[4..]].concat(), [&hf[..3], &hf[4..]].concat(), "only UPOS changes");
            right += usize::from(gf[3] == hf[3]);
            predicted.push(gf[3].to_string());
        } else {
            assert_eq!(g, h);
        }
    }
    let want: Vec<String> = [&["good", "movie"][..], &["the", "acting", "!"]]
        .iter()
        .flat_map(|w| model.tag_words(w).unwrap())
        .map(|t| t.label)
        .collect();
    assert_eq!(predicted, want);
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains(&format!("({right} of 5 words against the file's own UPOS column)")), "{err}");
    // A sequence classifier cannot tag; a broken CoNLL-U line is named.
    let out = run_with_stdin(bin().args(["tag", "--model"]).arg(tiny()), "good movie\n");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no token-classification head"));
    std::fs::write(&file, "1\tgood\n").unwrap();
    let out = bin().args(["tag", "--model"]).arg(tiny_tok()).arg("--conllu").arg(&file).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 1"), "{}", String::from_utf8_lossy(&out.stderr));
}

/// `finetune --task upos` on a treebank directory (x-ud-train.conllu, x-ud-dev.conllu) makes a
/// tagger whose `tag --conllu` accuracy on the dev file is the one its report states.
#[test]
fn finetune_upos_makes_a_tagger_that_tag_scores_as_reported() {
    let dir = tmp("ud");
    std::fs::create_dir_all(&dir).unwrap();
    // Five words a sentence, two choices a place: "the film was good ." and the like.
    let places: [([&str; 2], &str); 5] = [
        (["the", "this"], "DET"),
        (["film", "story"], "NOUN"),
        (["was", "is"], "AUX"),
        (["good", "boring"], "ADJ"),
        ([".", "!"], "PUNCT"),
    ];
    let write = |name: &str, n: usize, seed: usize| {
        let mut text = String::new();
        for k in 0..n {
            for (i, (choices, tag)) in places.iter().enumerate() {
                let w = choices[(k / (i + 1) + seed) % 2];
                text.push_str(&format!("{}\t{w}\t_\t{tag}\t_\t_\t0\t_\t_\t_\n", i + 1));
            }
            text.push('\n');
        }
        std::fs::write(dir.join(name), text).unwrap();
    };
    write("x-ud-train.conllu", 48, 0);
    write("x-ud-dev.conllu", 12, 1);
    let out = tmp("tagger.bertling");
    let run = bin()
        .args(["finetune", "--task", "upos", "--epochs", "4", "--batch", "8", "--lr", "3e-3", "--model"])
        .arg(tiny_tok())
        .arg("--data")
        .arg(&dir)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let report: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    let accuracy = report["best"]["scores"]["accuracy"].as_f64().unwrap();
    assert_eq!(report["dev_words"], 60);
    let tagged = bin()
        .args(["tag", "--model"])
        .arg(&out)
        .arg("--conllu")
        .arg(dir.join("x-ud-dev.conllu"))
        .output()
        .unwrap();
    assert!(tagged.status.success(), "{}", String::from_utf8_lossy(&tagged.stderr));
    let err = String::from_utf8(tagged.stderr).unwrap();
    assert!(err.contains(&format!("accuracy {accuracy:.4} (")), "{err} vs {accuracy}");
    assert!(err.contains("of 60 words"), "{err}");
    // `eval --task upos`: the tagger against itself is loyal, at the same accuracy.
    let ev = bin()
        .args(["eval", "--task", "upos", "--json", "--teacher"])
        .arg(&out)
        .arg("--student")
        .arg(&out)
        .arg("--data")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(ev.status.success(), "{}", String::from_utf8_lossy(&ev.stderr));
    let ev: serde_json::Value = serde_json::from_slice(&ev.stdout).unwrap();
    assert_eq!(ev["upos"]["label_loyalty"], 1.0);
    assert_eq!(ev["upos"]["words"], 60);
    assert!((ev["upos"]["student_accuracy"].as_f64().unwrap() - accuracy).abs() < 1e-9, "{ev}");
    assert!(ev["upos"]["student_mflops_per_word"].as_f64().unwrap() > 0.0, "{ev}");
    // `cvt`: the light tagger from the tiny teacher's table, 24 labelled sentences and the other
    // 24 as unlabelled text; `tag --conllu` scores it as its report says.
    let light = tmp("light.bertling");
    let cvt = |extra: &[&str]| {
        bin()
            .args(["cvt", "--task", "upos", "--also", "none", "--embedding", "16", "--width", "16", "--layers", "2", "--max-len", "32"])
            .args(["--epochs", "12", "--batch", "8", "--lr", "1e-2", "--teacher"])
            .arg(tiny_tok())
            .arg("--data")
            .arg(&dir)
            .arg("--out")
            .arg(&light)
            .args(extra)
            .output()
            .unwrap()
    };
    let run = cvt(&["--train-limit", "24", "--unlabeled-rest"]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let report: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!((report["train_sentences"].as_u64(), report["unlabeled_sentences"].as_u64()), (Some(24), Some(24)));
    let accuracy = report["best"]["scores"]["accuracy"].as_f64().unwrap();
    assert!(accuracy >= 0.8, "{report}");
    let tagged = bin().args(["tag", "--model"]).arg(&light).arg("--conllu").arg(dir.join("x-ud-dev.conllu")).output().unwrap();
    let err = String::from_utf8(tagged.stderr).unwrap();
    assert!(err.contains(&format!("accuracy {accuracy:.4} (")), "{err} vs {accuracy}");
    let run = cvt(&[]);
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("--unlabeled FILE"), "{}", String::from_utf8_lossy(&run.stderr));
    // The same sentences as two-column BIO files: entity-level F1 is the metric.
    let conll = tmp("conll");
    std::fs::create_dir_all(&conll).unwrap();
    for (split, n) in [("train", 48), ("dev", 12)] {
        let mut text = String::new();
        for k in 0..n {
            let w = |i: usize| places[i].0[(k / (i + 1)) % 2];
            let line = |i: usize, tag: &str| format!("{} {tag}\n", w(i));
            text += &(line(0, "B-THING") + &line(1, "I-THING") + &line(2, "O") + &line(3, "B-QUALITY") + &line(4, "O") + "\n");
        }
        std::fs::write(conll.join(format!("{split}.conll")), text).unwrap();
    }
    let run = bin()
        .args(["finetune", "--format", "conll", "--epochs", "2", "--batch", "8", "--lr", "3e-3", "--model"])
        .arg(tiny_tok())
        .arg("--data")
        .arg(&conll)
        .arg("--out")
        .arg(tmp("ner.bertling"))
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let report: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(report["best"]["scores"]["metric_name"], "entity_f1");
    assert_eq!(report["labels"], serde_json::json!(["B-QUALITY", "B-THING", "I-THING", "O"]));
}

/// `eval --task cola`: GLUE's metric of the task beside accuracy and loyalty. The tiny model
/// against itself: loyalty 1, the same metrics on both sides, accuracy as the runtime's labels
/// give it; the Markdown table has the Matthews row.
#[test]
fn eval_reports_the_tasks_glue_metric() {
    let dir = tmp("cola");
    std::fs::create_dir_all(&dir).unwrap();
    let rows = [
        ("1", "good movie"),
        ("0", "i hate this boring film ."),
        ("1", "the plot was good"),
        ("0", "bad acting"),
        ("1", "i love it"),
        ("0", "a boring story"),
    ];
    let tsv: String = rows.iter().map(|(l, t)| format!("src\t{l}\t\t{t}\n")).collect();
    std::fs::write(dir.join("dev.tsv"), tsv).unwrap();
    let eval = |json: bool| {
        let mut cmd = bin();
        cmd.args(["eval", "--teacher"]).arg(tiny()).arg("--student").arg(tiny());
        cmd.args(["--task", "cola", "--data"]).arg(&dir);
        if json {
            cmd.arg("--json");
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let report: serde_json::Value = serde_json::from_str(&eval(true)).unwrap();
    let cola = &report["cola"];
    assert_eq!(cola["label_loyalty"], 1.0);
    assert!((cola["probability_loyalty"].as_f64().unwrap() - 1.0).abs() < 1e-6);
    assert_eq!(cola["teacher_metrics"], cola["student_metrics"]);
    let model = Model::load(tiny(), &LoadOptions::default()).unwrap();
    let texts: Vec<&str> = rows.iter().map(|r| r.1).collect();
    let labels = model.classify(&texts).unwrap();
    let right = rows.iter().zip(&labels).filter(|(r, c)| r.0 == c.label_id.to_string()).count();
    let m = &cola["student_metrics"];
    assert!((m["accuracy"].as_f64().unwrap() - right as f64 / 6.0).abs() < 1e-12);
    assert!(m["matthews"].as_f64().is_some_and(|v| (-1.0..=1.0).contains(&v)), "{m}");
    assert!(m.get("f1").is_none());
    assert!(eval(false).contains("| cola Matthews correlation |"));
    // The attack, with synonyms of the tiny vocabulary in WordNet's format: the same model on
    // both sides is equally robust; without WordNet the message says what to install.
    let wn = tmp("wordnet");
    std::fs::create_dir_all(&wn).unwrap();
    let synsets = "00000001 00 a 03 good 0 great 0 fun 0 000 |\n\
                   00000002 00 a 03 bad 0 terrible 0 boring 0 000 |\n\
                   00000003 00 n 03 movie 0 film 0 story 0 000 |\n";
    std::fs::write(wn.join("data.adj"), synsets).unwrap();
    let attack = |wordnet: &PathBuf| {
        bin()
            .args(["eval", "--teacher"])
            .arg(tiny())
            .arg("--student")
            .arg(tiny())
            .args(["--task", "cola", "--data"])
            .arg(&dir)
            .args(["--attack", "--json", "--wordnet"])
            .arg(wordnet)
            .output()
            .unwrap()
    };
    let out = attack(&wn);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let (t, s) = (&report["attack"]["teacher"], &report["attack"]["student"]);
    assert_eq!(t["accuracy_under_attack"], s["accuracy_under_attack"]);
    assert!(t["attack_success_rate"].as_f64().is_some_and(|r| (0.0..=1.0).contains(&r)));
    assert_eq!(t["accuracy"], cola["student_metrics"]["accuracy"]);
    let out = attack(&tmp("no-wordnet"));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("wordnet-base"));
}

#[test]
fn pack_inspect_and_run_a_quantized_package() {
    let pkg = tmp("tiny-4bit.bertling");
    let out = bin()
        .args(["pack", "--from"])
        .arg(tiny())
        .args(["--bits", "4", "--group", "32", "--out"])
        .arg(&pkg)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = bin().arg("inspect").arg(&pkg).arg("--json").output().unwrap();
    assert!(out.status.success());
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["matrix_bits"], serde_json::json!([4]));
    assert_eq!(info["embedding_bits"], serde_json::json!([8]));
    assert_eq!(info["spec"]["provenance"]["recipe"]["method"], "rtn");
    assert_eq!(info["spec"]["quantized"]["blocks.0.attn.qkv.weight"]["group"], 32);
    let text = bin().arg("inspect").arg(&pkg).output().unwrap();
    assert!(String::from_utf8_lossy(&text.stdout).contains("feed_forward"));
    let out = run_with_stdin(bin().args(["classify", "--model"]).arg(&pkg), "good movie\n");
    assert!(out.status.success());
    // The same package written twice is byte-identical.
    let again = tmp("tiny-4bit-again.bertling");
    bin()
        .args(["pack", "--from"])
        .arg(tiny())
        .args(["--bits", "4", "--group", "32", "--out"])
        .arg(&again)
        .output()
        .unwrap();
    assert_eq!(std::fs::read(&pkg).unwrap(), std::fs::read(&again).unwrap());
    // --rewrite writes the weights as they are: a package of the newest version comes out the
    // same; with a weight option it is a usage error.
    let rewritten = tmp("tiny-4bit-rewritten.bertling");
    let out = bin()
        .args(["pack", "--rewrite", "--from"])
        .arg(&pkg)
        .arg("--out")
        .arg(&rewritten)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read(&pkg).unwrap(), std::fs::read(&rewritten).unwrap());
    let out = bin()
        .args(["pack", "--rewrite", "--bits", "2", "--from"])
        .arg(&pkg)
        .arg("--out")
        .arg(&rewritten)
        .output()
        .unwrap();
    assert!(
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("--bits"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `pack --act-bits`: per-token activation steps with smoothing 0.5 unless told otherwise, one
/// calibrated step per matrix with `--act-steps tensor` (smoothing 0.7).
#[test]
fn pack_calibrated_activation_steps() {
    let cal = tmp("calibration.txt");
    std::fs::write(&cal, "a good movie\nthe plot was thin\nI liked it\n").unwrap();
    for (steps, per_token, smooth) in
        [(None, true, 0.5f32), (Some("tensor"), false, 0.7), (Some("token"), true, 0.5)]
    {
        let pkg = tmp(&format!("tiny-w8a8-{}.bertling", steps.unwrap_or("default")));
        let mut cmd = bin();
        cmd.args(["pack", "--from"])
            .arg(tiny())
            .args(["--bits", "8", "--act-bits", "8", "--calibrate"])
            .arg(&cal)
            .arg("--out")
            .arg(&pkg);
        if let Some(s) = steps {
            cmd.args(["--act-steps", s]);
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let m = Model::load(&pkg, &LoadOptions::default()).unwrap();
        let q = &m.info().spec.quantized["blocks.0.attn.qkv.weight"];
        assert_eq!(
            (q.act_bits, q.act_per_token, q.act_smooth),
            (Some(8), per_token, true),
            "{steps:?}"
        );
        assert_eq!(
            m.info().spec.provenance.recipe["plan"]["smooth"],
            serde_json::json!(f64::from(smooth)),
            "{steps:?}"
        );
        let out = run_with_stdin(bin().args(["classify", "--model"]).arg(&pkg), "good movie\n");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let text = bin().arg("inspect").arg(&pkg).output().unwrap();
        let says = if per_token { "A8 per token, smoothed" } else { "A8 per tensor, smoothed" };
        assert!(
            String::from_utf8_lossy(&text.stdout).contains(says),
            "{}",
            String::from_utf8_lossy(&text.stdout)
        );
    }
    for (args, says) in [
        (vec!["--act-bits", "8", "--act-steps", "row"], "--act-steps row: use token or tensor"),
        (vec!["--act-steps", "token"], "add --act-bits"),
    ] {
        let out = bin()
            .args(["pack", "--from"])
            .arg(tiny())
            .args(["--bits", "8", "--calibrate"])
            .arg(&cal)
            .args(&args)
            .arg("--out")
            .arg(tmp("z"))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(says), "{args:?}: {err}");
    }
}

#[test]
fn bench_prints_median_json() {
    let out = bin()
        .args(["bench", "--model"])
        .arg(tiny())
        .args(["--batch", "2", "--seq", "16", "--runs", "3", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["median_ms"].as_f64().unwrap() > 0.0);
    assert_eq!(v["batch"], 2);
}

#[test]
fn errors_go_to_stderr_with_nonzero_exit() {
    let cases: Vec<Vec<std::ffi::OsString>> = vec![
        vec!["embed".into(), "--model".into(), "/nonexistent/model".into()],
        vec![
            "pack".into(),
            "--from".into(),
            tiny().into(),
            "--bits".into(),
            "9".into(),
            "--out".into(),
            tmp("x").into(),
        ],
        vec![
            "pack".into(),
            "--from".into(),
            tiny().into(),
            "--bits".into(),
            "4".into(),
            "--group".into(),
            "48".into(),
            "--out".into(),
            tmp("y").into(),
        ],
        vec!["bench".into(), "--model".into(), tiny().into(), "--seq".into(), "1000".into()],
        vec!["embed".into(), "--model".into(), tiny().into(), "--backend".into(), "tpu".into()],
    ];
    for args in cases {
        let out = run_with_stdin(bin().args(&args), "x\n");
        assert!(!out.status.success(), "{args:?} should fail");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.starts_with("error: "), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    assert!(!tmp("x").exists() && !tmp("y").exists(), "failed packs leave no file behind");
    // A training device that is unknown, or not in this build, is refused before any work.
    let mut devices =
        vec![("gpu", "unknown training device `gpu`: use cpu, cuda, cuda:N (GPU index) or wgpu")];
    if cfg!(not(feature = "cuda")) {
        devices.push(("cuda:1", "training on cuda:1 needs a build with the `cuda` feature"));
    }
    for (device, says) in devices {
        let out = bin()
            .args(["distill", "--teacher"])
            .arg(tiny())
            .args(["--corpus", "/nonexistent", "--device", device, "--out"])
            .arg(tmp("d"))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(says), "{device}: {err}");
    }
}

#[test]
fn profile_writes_a_latency_table_and_breaks_a_model_down() {
    let out = tmp("table.json");
    let run = bin()
        .args([
            "profile",
            "--backend",
            "cpu",
            "--widths",
            "64,96",
            "--bits",
            "32,4",
            "--seq",
            "8",
            "--runs",
            "2",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let table =
        bertling_runtime::profile::LatencyTable::from_json(&std::fs::read_to_string(&out).unwrap())
            .unwrap();
    assert_eq!(table.backend, "cpu");
    assert_eq!(table.entries.len(), (11 + 10) * 2);
    assert_eq!(table.fixed.len(), 2 * 2, "a fixed cost per width and bits");
    assert!(table
        .get("sep_conv/w96/k7/w4/s8/b1")
        .is_some_and(|e| e.median_ms > 0.0 && e.runs == 2));
    let run = bin()
        .args(["profile", "--backend", "cpu", "--seq", "8", "--runs", "2", "--json", "--model"])
        .arg(tiny())
        .output()
        .unwrap();
    assert!(run.status.success());
    let ops: Vec<serde_json::Value> = String::from_utf8(run.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(ops.len(), 1 + 4, "embeddings and four blocks");
    assert_eq!(ops[1]["kernel"], "attention");
}

/// `predict-latency` adds up the table (checked against the table's own entries) and, with
/// --measure, times random-weight models of the architectures; a table of other settings is
/// refused with what it has.
#[test]
fn predict_latency_sums_the_table_and_measures() {
    let table_path = tmp("table-a8.json");
    let run = bin()
        .args(["profile", "--backend", "cpu", "--widths", "32,64", "--bits", "4", "--act-bits"])
        .args(["8", "--seq", "8", "--runs", "2", "--threads", "1", "--out"])
        .arg(&table_path)
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let table: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&table_path).unwrap()).unwrap();
    let ms = |list: &str, key: &str| -> f64 {
        let hit = table[list].as_array().unwrap().iter().find(|e| e["key"] == key);
        hit.unwrap_or_else(|| panic!("{key} in {list}"))["median_ms"].as_f64().unwrap()
    };
    let expected = ms("fixed", "identity/w32/w4a8/s8/b1")
        + ms("entries", "projection/w32/o64/w4a8/s8/b1")
        + ms("entries", "attention/w64/h2xd32/w4a8/s8/b1")
        + ms("entries", "feed_forward/w64/i96/w4a8/s8/b1")
        + ms("entries", "projection/w64/o32/w4a8/s8/b1")
        + ms("entries", "sep_conv/w32/k3/w4a8/s8/b1")
        + ms("entries", "projection/w32/o32/w4a8/s8/b1");
    let predict = |extra: &[&str]| {
        bin()
            .args(["predict-latency", "--teacher"])
            .arg(tiny())
            .arg("--table")
            .arg(&table_path)
            .args(["--stages", "2", "--widths", "32,64", "--group", "0", "--seq", "8"])
            .args(extra)
            .output()
            .unwrap()
    };
    let out = predict(&["--sample", "2", "--measure", "--runs", "2"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        text.contains("2 architectures, w4a8 s8 b1 on 1 threads: mean absolute error"),
        "{text}"
    );
    let out = predict(&[
        "--arch",
        "e32|64:a2x32,f96|32:c3,id",
        "--sample",
        "3",
        "--measure",
        "--runs",
        "2",
        "--json",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4 + 1, "four architectures and a summary");
    let first = &lines[0];
    assert_eq!(first["arch"], "e32|64:a2x32,f96|32:c3,id");
    let predicted = first["predicted_ms"].as_f64().unwrap();
    assert!((predicted - expected).abs() <= 1e-9 * expected, "{predicted} vs {expected}");
    assert!(lines[..4].iter().all(|l| l["measured_ms"].as_f64().is_some_and(|m| m > 0.0)));
    assert_eq!(lines[4]["architectures"], 4);
    assert!(lines[4]["mean_abs_error"].as_f64().is_some_and(|e| e.is_finite()));
    // The table has W4A8 entries only: float activations are refused, naming what it has.
    let out = predict(&["--sample", "1", "--act-bits", "0"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("w4a8 s8 b1"), "{err}");
    let out = predict(&["--arch", "e32|64:a3"]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("not an op"));
}

#[test]
fn wgpu_backend_gives_the_cpu_results() {
    let input = "good movie\n\nthe plot was not very good\n";
    let cpu = run_with_stdin(bin().args(["embed", "--model"]).arg(tiny()), input);
    let gpu =
        run_with_stdin(bin().args(["embed", "--backend", "wgpu", "--model"]).arg(tiny()), input);
    assert!(gpu.status.success(), "{}", String::from_utf8_lossy(&gpu.stderr));
    let parse = |o: &Output| -> Vec<Vec<f32>> {
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let (c, g) = (parse(&cpu), parse(&gpu));
    assert_eq!(c.len(), 3);
    for (a, b) in c.iter().zip(&g) {
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < 1e-4);
        }
    }
}

/// A small corpus, written once per test process (tests run in parallel).
fn small_corpus() -> PathBuf {
    static PATH: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PATH.get_or_init(write_small_corpus).clone()
}

fn write_small_corpus() -> PathBuf {
    let words = [
        "good", "bad", "movie", "film", "great", "plot", "acting", "not", "very", "i", "love",
        "hate", "boring", "fun", "story", "music", "the", "a",
    ];
    let mut s = 11u64;
    let text: String = (0..120)
        .map(|i| {
            let n = 3 + i % 7;
            let line: Vec<&str> = (0..n)
                .map(|_| {
                    s ^= s << 13;
                    s ^= s >> 7;
                    s ^= s << 17;
                    words[(s % words.len() as u64) as usize]
                })
                .collect();
            line.join(" ") + "\n"
        })
        .collect();
    let p = tmp("corpus.txt");
    std::fs::write(&p, text).unwrap();
    p
}

/// distill -> quantize -> eval on the tiny teacher: packages come out, are loadable, and the
/// report has the metrics; a second run into the same checkpoint needs --resume.
#[test]
fn distill_quantize_and_eval() {
    let corpus = small_corpus();
    let student = tmp("student.bertling");
    let ck = tmp("ck-distill");
    let _ = std::fs::remove_dir_all(&ck);
    let common = [
        "--steps",
        "6",
        "--batch",
        "4",
        "--max-len",
        "16",
        "--lr",
        "1e-3",
        "--warmup",
        "2",
        "--checkpoint-every",
        "3",
        "--threads",
        "1",
    ];
    // `eval` of `student` against the tiny teacher, with `flags`; more arguments may follow.
    let eval = |flags: &[&str], student: &PathBuf| {
        let mut c = bin();
        c.arg("eval").args(flags).arg("--teacher").arg(tiny()).arg("--student").arg(student);
        c
    };
    // `quantize` of the tiny teacher itself on the corpus, with `flags`, into `out`.
    let quantize = |flags: &[&str], out: &PathBuf| {
        bin()
            .args(["quantize", "--teacher"])
            .arg(tiny())
            .args(flags)
            .arg("--corpus")
            .arg(&corpus)
            .arg("--out")
            .arg(out)
            .args(common)
            .output()
            .unwrap()
    };
    let out = bin()
        .args(["distill", "--teacher"])
        .arg(tiny())
        .arg("--corpus")
        .arg(&corpus)
        .args(["--layers", "1", "--width", "16", "--init", "etd-impt", "--out"])
        .arg(&student)
        .arg("--checkpoint")
        .arg(&ck)
        .args(common)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let info = Model::load(&student, &LoadOptions::default()).unwrap();
    assert_eq!(info.info().blocks.len(), 2);
    assert_eq!(info.info().output_width, 16);
    assert_eq!(info.info().spec.provenance.recipe["method"], "distill");
    // The checkpoint is there: running again without --resume is refused.
    let again = bin()
        .args(["distill", "--teacher"])
        .arg(tiny())
        .arg("--corpus")
        .arg(&corpus)
        .args(["--layers", "1", "--width", "16", "--out"])
        .arg(tmp("x.bertling"))
        .arg("--checkpoint")
        .arg(&ck)
        .args(common)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--resume"));

    let q = tmp("student-w4.bertling");
    let out = bin()
        .args(["quantize", "--teacher"])
        .arg(tiny())
        .arg("--student")
        .arg(&student)
        .args([
            "--bits",
            "4",
            "--group",
            "32",
            "--act-bits",
            "8",
            "--weight-init",
            "mse",
            "--act-init",
            "mse",
            "--corpus",
        ])
        .arg(&corpus)
        .arg("--out")
        .arg(&q)
        .args(common)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let qm = Model::load(&q, &LoadOptions::default()).unwrap();
    assert_eq!(qm.info().matrix_bits, vec![4]);
    assert_eq!(qm.info().spec.quantized["blocks.0.attn.qkv.weight"].act_bits, Some(8));
    assert!(
        qm.info().spec.quantized["blocks.0.attn.qkv.weight"].act_per_token,
        "per-token activation steps by default"
    );
    let plan = &qm.info().spec.provenance.recipe["plan"];
    assert_eq!(
        (plan["weight_init"].as_str(), plan["act_init"].as_str()),
        (Some("mse"), Some("mse")),
        "{plan}"
    );
    // An unknown rule is an error that names the choices, before any work.
    let bad = quantize(&["--bits", "4", "--weight-init", "max"], &tmp("bad.bertling"));
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("use lsq or mse"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );

    // The student's embeddings are narrower than the teacher's: no cosine between them.
    let out = eval(&["--json"], &q).arg("--texts").arg(&corpus).output().unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("16 dimensions"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The teacher itself at 8 bits (weights only) stays close to it.
    let q8 = tmp("teacher-w8.bertling");
    let out = quantize(&["--bits", "8", "--act-bits", "0"], &q8);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = eval(&["--json"], &q8).arg("--texts").arg(&corpus).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mean = report["agreement"]["mean"].as_f64().unwrap();
    assert!(mean > 0.9 && mean <= 1.0 + 1e-9 && report["agreement"]["texts"] == 120, "{report}");

    // Agreement per category: the built-in set of what users type, or the user's own.
    let out = eval(&["--json", "--agreement"], &q8).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let by = report["agreement_by_category"].as_array().unwrap();
    assert_eq!(by.len(), 8, "{report}");
    assert!(
        by.iter().all(|c| c["min"].as_f64().unwrap() <= c["mean"].as_f64().unwrap()
            && c["mean"].as_f64().unwrap() > 0.8),
        "{report}"
    );
    let set = tmp("set.jsonl");
    std::fs::write(&set, "{\"category\": \"mine\", \"text\": \"hello there\"}\n{\"category\": \"mine\", \"text\": \"?\"}\n").unwrap();
    let out = eval(&["--json"], &q8).arg("--agreement-set").arg(&set).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["agreement_by_category"][0]["category"], "mine");
    assert_eq!(report["agreement_by_category"][0]["texts"], 2);
    let out = eval(&["--agreement"], &q8).arg("--agreement-set").arg(&set).output().unwrap();
    assert!(!out.status.success(), "--agreement and --agreement-set exclude each other");
    std::fs::write(&set, "not json\n").unwrap();
    let out = eval(&[], &q8).arg("--agreement-set").arg(&set).output().unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("line 1"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A span fraction outside 0..1 is refused before any work.
    let out =
        quantize(&["--bits", "8", "--act-bits", "0", "--spans", "1.5"], &tmp("never.bertling"));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("span fraction"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Synthetic noise from the vocabulary trains, and the package records the fractions.
    let noisy = tmp("noisy.bertling");
    let out =
        quantize(&["--bits", "8", "--act-bits", "0", "--noise", "0.5", "--spans", "0.2"], &noisy);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let recipe =
        Model::load(&noisy, &LoadOptions::default()).unwrap().info().spec.provenance.recipe.clone();
    let fraction = |k: &str| recipe["config"]["augment"][k].as_f64().map(|v| v as f32);
    assert_eq!((fraction("spans"), fraction("noise")), (Some(0.2), Some(0.5)), "{recipe}");
    let out = quantize(&["--bits", "8", "--noise", "1.5"], &tmp("never.bertling"));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("noise fraction"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// --stop-after saves a checkpoint and exits cleanly; --resume finishes the run, and the log
/// holds every step and every evaluation of held-out texts.
#[test]
fn a_stopped_run_resumes_and_logs_its_evaluations() {
    let corpus = small_corpus();
    let (ck, log, student) = (tmp("ck-stop"), tmp("stop.jsonl"), tmp("stopped.bertling"));
    let _ = std::fs::remove_dir_all(&ck);
    let _ = std::fs::remove_file(&log);
    let _ = std::fs::remove_file(&student);
    let held_out = tmp("held-out.txt");
    std::fs::write(&held_out, "a sentence nobody trained on\nand another one\n").unwrap();
    let run = |extra: &[&str]| {
        bin()
            .args(["distill", "--teacher"])
            .arg(tiny())
            .arg("--corpus")
            .arg(&corpus)
            .args(["--layers", "1", "--width", "16", "--out"])
            .arg(&student)
            .arg("--checkpoint")
            .arg(&ck)
            .arg("--log")
            .arg(&log)
            .arg("--eval-texts")
            .arg(&held_out)
            .args([
                "--steps",
                "6",
                "--batch",
                "4",
                "--max-len",
                "16",
                "--warmup",
                "2",
                "--eval-every",
                "2",
                "--threads",
                "1",
            ])
            .args(extra)
            .output()
            .unwrap()
    };
    let out = run(&["--stop-after", "3"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("stopped after step 3 of 6"));
    assert!(!student.exists(), "no package from a stopped run");
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ck.join("state.json")).unwrap()).unwrap();
    assert_eq!(state["step"], 3);
    // As if the run had gone on past its checkpoint and been killed mid-line: resuming redoes
    // those steps, and the log keeps one line per step.
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    std::io::Write::write_all(
        &mut f,
        b"{\"step\":4,\"loss\":1.0}\n{\"eval\":{},\"step\":4}\n{\"step\":5,\"lo",
    )
    .unwrap();
    drop(f);
    let out = run(&["--resume"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(student.exists());
    assert!(String::from_utf8_lossy(&out.stderr).contains("eval at step 6"));
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let steps: Vec<u64> = lines
        .iter()
        .filter(|l| l.get("eval").is_none())
        .map(|l| l["step"].as_u64().unwrap())
        .collect();
    let evals: Vec<u64> = lines
        .iter()
        .filter(|l| l.get("eval").is_some())
        .map(|l| l["step"].as_u64().unwrap())
        .collect();
    assert_eq!(steps, [1, 2, 3, 4, 5, 6]);
    assert_eq!(evals, [0, 2, 4, 6]);
    assert!(lines.iter().filter_map(|l| l.get("eval")).all(|e| e["texts"] == 2));
    // --stop-after needs somewhere to save.
    let out = bin()
        .args(["distill", "--teacher"])
        .arg(tiny())
        .arg("--corpus")
        .arg(&corpus)
        .arg("--out")
        .arg(tmp("y.bertling"))
        .args(["--steps", "4", "--stop-after", "2"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--checkpoint"));
}

/// The whole chain on the tiny teacher: a student, two bit widths, a report.
#[test]
fn compress_writes_packages_and_a_report() {
    let out_dir = tmp("compress");
    let _ = std::fs::remove_dir_all(&out_dir);
    let out = bin()
        .args(["compress", "--teacher"])
        .arg(tiny())
        .arg("--corpus")
        .arg(small_corpus())
        .arg("--out")
        .arg(&out_dir)
        .args([
            "--layers",
            "1",
            "--width",
            "16",
            "--bits",
            "8,2",
            "--group",
            "32",
            "--steps",
            "4",
            "--quant-steps",
            "3",
            "--batch",
            "4",
            "--max-len",
            "16",
            "--warmup",
            "1",
            "--threads",
            "1",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("report.json")).unwrap())
            .unwrap();
    let models = report["models"].as_array().unwrap();
    assert_eq!(
        models.iter().map(|m| m["name"].as_str().unwrap()).collect::<Vec<_>>(),
        ["student-f32", "student-w8", "student-w2"]
    );
    for m in models {
        // 16-wide students of a wider teacher: no embedding cosine to report.
        assert!(m.get("cosine_mean").is_none());
        let pkg = Model::load(m["path"].as_str().unwrap(), &LoadOptions::default()).unwrap();
        assert_eq!(
            m["bytes"].as_u64().unwrap(),
            std::fs::metadata(m["path"].as_str().unwrap()).unwrap().len(),
            "the report gives the file's size"
        );
        // Provenance: the teacher's hash, the recipe, the last held-out evaluation and the report.
        let prov = &pkg.info().spec.provenance;
        assert_eq!(prov.teacher_sha256.len(), 64);
        assert!(prov.metrics["final_eval"]["loss"]["total"].as_f64().unwrap() > 0.0);
        assert_eq!(prov.metrics["report"]["eval_texts"], 120);
        // What was not given comes from the recipe of the stage and width (compressor::recipe):
        // distillation at lr 2e-4; KDLSQ at 8 bits with lr 1e-4, smoothing 0.5 (per-token
        // activation steps), sentence weight 1;
        // at 2 bits lr 3e-4, no smoothing, sentence weight 5. The given group, warm-up and steps
        // hold everywhere.
        let (cfg, plan) = (&prov.recipe["config"], &prov.recipe["plan"]);
        let want = match m["name"].as_str().unwrap() {
            "student-f32" => serde_json::json!([2e-4, 1.0, null, null, 4]),
            "student-w8" => serde_json::json!([1e-4, 1.0, 32, f64::from(0.5f32), 3]),
            _ => serde_json::json!([3e-4, 5.0, 32, null, 3]),
        };
        assert_eq!(
            serde_json::json!([
                cfg["lr"],
                cfg["weights"]["sentence"],
                plan["group"],
                plan["smooth"],
                cfg["steps"]
            ]),
            want,
            "{}",
            m["name"]
        );
        assert_eq!((cfg["warmup"].as_u64(), cfg["batch_size"].as_u64()), (Some(1), Some(4)));
        if !plan.is_null() {
            assert_eq!(
                (
                    plan["embedding_group"].as_u64(),
                    plan["weight_init"].as_str(),
                    plan["act_init"].as_str()
                ),
                (Some(32), Some("mse"), Some("mse"))
            );
            assert_eq!(plan["act_per_token"].as_bool(), Some(true));
        }
    }
    assert!(std::fs::read_to_string(out_dir.join("report.md"))
        .unwrap()
        .contains("| student-w2 | 2 |"));
    assert!(String::from_utf8_lossy(&out.stdout).contains("cosine mean"));
    let log = std::fs::read_to_string(out_dir.join("train.jsonl")).unwrap();
    let evals = log.lines().filter(|l| l.contains("\"eval\"")).count();
    assert_eq!(
        log.lines().count() - evals,
        4 + 3 + 3,
        "distillation of four steps, two KDLSQ stages of three"
    );
    assert_eq!(evals, 3 * 2, "an evaluation before and after each stage");
}

/// `compress --arch`: a searched architecture cut from the teacher, distilled and quantized;
/// every package has the architecture's blocks and names it in its provenance. `--student` takes
/// a float package as the student and refuses a quantized one; a malformed architecture is a
/// usage error that says which flag.
#[test]
fn compress_makes_packages_of_a_searched_architecture() {
    let out_dir = tmp("compress-arch");
    let _ = std::fs::remove_dir_all(&out_dir);
    let compress = |out: &PathBuf, extra: &[&str]| {
        bin()
            .args(["compress", "--teacher"])
            .arg(tiny())
            .arg("--corpus")
            .arg(small_corpus())
            .arg("--out")
            .arg(out)
            .args(["--bits", "4", "--group", "row", "--steps", "2", "--quant-steps", "2"])
            .args(["--batch", "4", "--max-len", "16", "--warmup", "1", "--threads", "1"])
            .args(extra)
            .output()
            .unwrap()
    };
    let arch = "e16|16:a2x8,f24|32:c5,id";
    let run = compress(&out_dir, &["--arch", arch]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("report.json")).unwrap())
            .unwrap();
    let models = report["models"].as_array().unwrap();
    assert_eq!(models.len(), 2, "student-f32 and student-w4");
    // The architecture written out by hand: a projection into each stage and out of the last.
    use bertling_runtime::BlockSpec::*;
    let want = [
        Projection { input: 16, output: 16 },
        Attention { width: 16, heads: 2, head_dim: 8 },
        FeedForward { width: 16, inner: 24 },
        Projection { input: 16, output: 32 },
        SepConv { width: 32, kernel: 5 },
        Projection { input: 32, output: 32 },
    ];
    for m in models {
        let data =
            bertling_runtime::load_model_data(std::path::Path::new(m["path"].as_str().unwrap()))
                .unwrap();
        assert_eq!(data.spec.blocks, want, "{}", m["name"]);
        let recipe = data.spec.provenance.recipe.to_string();
        assert!(recipe.contains(arch), "{recipe}");
    }
    // The float student again, as a package: the chain runs from it.
    let f32_path = models[0]["path"].as_str().unwrap().to_string();
    let from_pkg = tmp("compress-student");
    let _ = std::fs::remove_dir_all(&from_pkg);
    let run = compress(&from_pkg, &["--student", &f32_path]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let w4 = models[1]["path"].as_str().unwrap().to_string();
    let run = compress(&tmp("compress-quantized"), &["--student", &w4]);
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("is quantized"));
    let run = compress(&tmp("compress-bad-arch"), &["--arch", "e16|16:zz"]);
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("--arch"));
}

/// `bertling search` of the tiny teacher on the small corpus into `out`.
fn tiny_search(out: &Path) -> Command {
    let mut c = bin();
    c.args(["search", "--teacher"]).arg(tiny()).arg("--corpus").arg(small_corpus());
    c.arg("--out").arg(out);
    c
}

/// `search` on the tiny teacher with a latency table: one student per budget (a byte budget and
/// a millisecond budget), each within its budget as estimated, distilled and quantized into a
/// package whose provenance names its architecture with the predicted and measured latency;
/// the looser budget's best proxy loss is no worse; report and plot written.
#[test]
fn search_makes_a_family_within_budgets() {
    let table = tmp("search-table.json");
    let run = bin()
        .args(["profile", "--backend", "cpu", "--widths", "16,32", "--bits", "4", "--act-bits"])
        .args(["8", "--seq", "8", "--runs", "2", "--threads", "1", "--out"])
        .arg(&table)
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let out = tmp("search-out");
    let _ = std::fs::remove_dir_all(&out);
    let search = |extra: &[&str]| {
        tiny_search(&out)
            .arg("--latency-table")
            .arg(&table)
            .args(["--budgets", "12KB,1000ms", "--widths", "16,32", "--stages", "2"])
            .args(["--supernet-steps", "4", "--pool", "6", "--shrink-every", "2", "--bins", "2"])
            .args(["--keep", "1", "--held-out", "4", "--top", "2", "--latency-seq", "8"])
            .args(["--steps", "2", "--quant-steps", "2", "--bits", "4", "--group", "row"])
            .args(["--batch", "4", "--max-len", "16", "--eval-size", "4", "--threads", "1"])
            .args(["--checkpoint-every", "2"])
            .args(extra)
            .output()
            .unwrap()
    };
    let run = search(&[]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    let members = report["members"].as_array().unwrap();
    assert_eq!(members.len(), 2);
    let chosen = |i: usize| &members[i]["chosen"];
    assert!(chosen(0)["bytes"].as_f64().unwrap() <= 12e3, "{}", chosen(0));
    assert!(chosen(1)["ms"].as_f64().unwrap() <= 1000.0);
    let best = |i: usize| {
        members[i]["ranked"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r[1].as_f64().unwrap())
            .fold(f64::MAX, f64::min)
    };
    assert!(
        best(1) <= best(0) + 1e-12,
        "a looser budget finds no worse: {} vs {}",
        best(1),
        best(0)
    );
    // The report's cosines are the runtime's on the packages (its texts: the corpus's first
    // 500 lines), pooled as the teacher pools (the tiny classifier: its [CLS] state), and the
    // float student's own training evaluation (the first 4, --eval-size), pooled the same way,
    // agrees with the runtime there.
    let teacher = Model::load(tiny(), &LoadOptions::default()).unwrap();
    let corpus_text = std::fs::read_to_string(small_corpus()).unwrap();
    let lines: Vec<&str> =
        corpus_text.lines().map(str::trim).filter(|l| !l.is_empty()).take(500).collect();
    let mean_cosine = |student: &Model, texts: &[&str]| -> f64 {
        let (t, s) = (teacher.embed(texts).unwrap(), student.embed(texts).unwrap());
        assert_eq!((t.len(), s.len()), (texts.len(), texts.len()));
        let sum: f64 = t.iter().zip(&s).map(|(a, b)| f64::from(bertling_runtime::cosine(a, b))).sum();
        sum / texts.len() as f64
    };
    for m in members {
        for p in m["packages"].as_array().unwrap() {
            let path = PathBuf::from(p["path"].as_str().unwrap());
            let student = Model::load(&path, &LoadOptions::default()).unwrap();
            assert_eq!(student.info().spec.pooling, teacher.info().spec.pooling);
            let cos = mean_cosine(&student, &lines);
            let reported = p["cosine_mean"].as_f64().unwrap();
            assert!((cos - reported).abs() < 1e-5, "{}: runtime {cos}, report {reported}", p["name"]);
            if p["name"] == "student-f32" {
                let data = bertling_runtime::load_model_data(&path).unwrap();
                let trained = data.spec.provenance.metrics["final_eval"]["cosine_mean"].as_f64();
                let runtime = mean_cosine(&student, &lines[..4]);
                let trained = trained.unwrap();
                assert!((trained - runtime).abs() < 2e-3, "training eval {trained}, runtime {runtime}");
            }
        }
    }
    for m in members {
        let packages = m["packages"].as_array().unwrap();
        assert_eq!(packages.len(), 2, "student-f32 and student-w4");
        let w4 = packages.iter().find(|p| p["name"] == "student-w4").unwrap();
        assert!(w4["measured_ms"].as_f64().is_some_and(|ms| ms > 0.0));
        let path = PathBuf::from(w4["path"].as_str().unwrap());
        let data = bertling_runtime::load_model_data(&path).unwrap();
        let search = &data.spec.provenance.metrics["search"];
        assert_eq!(search["arch"], m["chosen"]["arch"]);
        let arch: String = serde_json::from_value(search["arch"].clone()).unwrap();
        assert!(arch.starts_with('e'), "{arch}");
        assert!(
            search["predicted_ms"].as_f64().is_some() && search["measured_ms"].as_f64().is_some()
        );
        assert_eq!(
            data.spec.embeddings.width,
            arch[1..arch.find('|').unwrap()].parse::<usize>().unwrap()
        );
    }
    assert!(std::fs::read_to_string(out.join("report.md")).unwrap().contains("| budget |"));
    assert!(std::fs::read_to_string(out.join("family.svg")).unwrap().starts_with("<svg"));
    // The supernet's checkpoint is there: the same command again needs --resume.
    let again = search(&[]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--resume"));
    // A millisecond budget without a table is refused before any work.
    let run = bin()
        .args(["search", "--teacher"])
        .arg(tiny())
        .arg("--corpus")
        .arg(small_corpus())
        .arg("--out")
        .arg(tmp("search-no-table"))
        .args(["--budgets", "5ms"])
        .output()
        .unwrap();
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("--latency-table"));
}

/// `search --verify`: candidates of every budget's ranked list trained as students; the report
/// gives each one's supernet cosine as ranked, its trained cosine as the runtime computes it from
/// the kept package, and Kendall τ as a second implementation computes it; a resumed search
/// reads the finished candidates instead of training them again.
#[test]
fn search_verify_trains_ranked_candidates_and_reports_kendall_tau() {
    let out = tmp("search-verify");
    let _ = std::fs::remove_dir_all(&out);
    let search = |extra: &[&str]| {
        tiny_search(&out)
            .args(["--budgets", "12KB,40KB", "--widths", "16,32", "--stages", "2"])
            .args(["--supernet-steps", "4", "--pool", "6", "--shrink-every", "2", "--bins", "2"])
            .args(["--keep", "2", "--held-out", "4", "--top", "3", "--search-only"])
            .args(["--verify", "4", "--verify-steps", "3", "--batch", "4", "--max-len", "16"])
            .args(["--eval-size", "4", "--threads", "1", "--checkpoint-every", "2"])
            .args(extra)
            .output()
            .unwrap()
    };
    let run = search(&[]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let read = || -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap()
    };
    let report = read();
    let ranked: Vec<(String, f64)> = report["members"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|m| m["ranked"].as_array().unwrap().clone())
        .map(|r| (r[0].as_str().unwrap().to_string(), r[2].as_f64().unwrap()))
        .collect();
    let mut distinct: Vec<&String> = ranked.iter().map(|r| &r.0).collect();
    distinct.sort();
    distinct.dedup();
    let v = &report["verification"];
    let cands = v["candidates"].as_array().unwrap();
    assert_eq!(cands.len(), distinct.len().min(4));
    assert!(cands.len() >= 2, "{report}");
    let teacher = Model::load(tiny(), &LoadOptions::default()).unwrap();
    let corpus_text = std::fs::read_to_string(small_corpus()).unwrap();
    let lines: Vec<&str> =
        corpus_text.lines().map(str::trim).filter(|l| !l.is_empty()).take(500).collect();
    let t = teacher.embed(&lines).unwrap();
    let (mut sup, mut trained) = (Vec::new(), Vec::new());
    for (i, c) in cands.iter().enumerate() {
        let arch = c["arch"].as_str().unwrap();
        let listed = ranked.iter().find(|r| r.0 == arch).expect("a ranked candidate");
        assert_eq!(c["supernet_cosine"].as_f64().unwrap(), listed.1);
        let student = Model::load(out.join(format!("verify/{i:02}.bertling")), &LoadOptions::default())
            .unwrap();
        let s = student.embed(&lines).unwrap();
        let cos: f64 = t.iter().zip(&s).map(|(a, b)| f64::from(bertling_runtime::cosine(a, b))).sum();
        let cos = cos / lines.len() as f64;
        let reported = c["trained_cosine"].as_f64().unwrap();
        assert!((cos - reported).abs() < 1e-6, "{arch}: runtime {cos}, report {reported}");
        sup.push(listed.1);
        trained.push(reported);
    }
    // Kendall τ-b, written out again.
    let (mut num, mut ta, mut tb) = (0.0, 0.0, 0.0);
    for i in 0..sup.len() {
        for j in i + 1..sup.len() {
            let (x, y) = ((sup[i] - sup[j]).signum(), (trained[i] - trained[j]).signum());
            num += x * y;
            ta += x * x;
            tb += y * y;
        }
    }
    let tau = if ta * tb == 0.0 { 0.0 } else { num / (ta * tb).sqrt() };
    assert!((v["tau"].as_f64().unwrap() - tau).abs() < 1e-12, "{v}");
    assert!(std::fs::read_to_string(out.join("report.md")).unwrap().contains("Kendall τ"));
    // Resumed: the finished candidates are read, not trained again.
    let stamp = std::fs::metadata(out.join("verify/00.json")).unwrap().modified().unwrap();
    let run = search(&["--resume"]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    assert_eq!(std::fs::metadata(out.join("verify/00.json")).unwrap().modified().unwrap(), stamp);
    assert_eq!(read()["verification"], report["verification"]);
}

/// `map-search` on the tiny teacher: a 1-layer student has two monotone maps onto its 2 layers,
/// both evaluated by proxy runs; the report ranks them and names uniform's; the best is printed
/// as a --map that `distill` accepts; a search run again on the report of a killed one scores
/// only the maps it lacks, and one of other settings is refused.
#[test]
fn map_search_evaluates_every_map_of_a_small_space() {
    let out = tmp("map-search.json");
    let run = bin()
        .args(["map-search", "--teacher"])
        .arg(tiny())
        .arg("--corpus")
        .arg(small_corpus())
        .args(["--layers", "1", "--proxy-steps", "2", "--batch", "4", "--max-len", "16"])
        .args(["--eval-size", "4", "--threads", "1", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(report["space"], 2);
    assert_eq!(report["exhaustive"], true);
    let evaluated = report["evaluated"].as_array().unwrap();
    assert_eq!(evaluated.len(), 2);
    assert!(evaluated[0]["fitness"].as_f64() >= evaluated[1]["fitness"].as_f64());
    assert_eq!(report["uniform"]["map"], serde_json::json!([1]));
    let text = String::from_utf8_lossy(&run.stdout);
    let best = text.lines().find_map(|l| l.strip_prefix("best: --map ")).unwrap();
    assert_eq!(serde_json::json!([best.parse::<usize>().unwrap()]), evaluated[0]["map"]);
    assert_eq!(report["complete"], true);

    // Run again on a report that lost a map (as a killed search leaves it) and whose other map
    // has a marked score: only the lost map is scored, the marked one is taken as it stands.
    let mut partial = report.clone();
    let mut kept = evaluated[0].clone();
    kept["cosine"] = serde_json::json!(0.125);
    kept["fitness"] = serde_json::json!(0.125);
    partial["evaluated"] = serde_json::json!([kept]);
    partial["complete"] = serde_json::json!(false);
    std::fs::write(&out, partial.to_string()).unwrap();
    let again = |extra: &[&str]| {
        bin()
            .args(["map-search", "--teacher"])
            .arg(tiny())
            .arg("--corpus")
            .arg(small_corpus())
            .args(["--layers", "1", "--proxy-steps", "2", "--batch", "4", "--max-len", "16"])
            .args(["--eval-size", "4", "--threads", "1"])
            .args(extra)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap()
    };
    let run = again(&[]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("resuming: 1 maps already scored"), "{stderr}");
    assert_eq!(stderr.matches("] map [").count(), 1, "{stderr}");
    let resumed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(resumed["complete"], true);
    let maps = resumed["evaluated"].as_array().unwrap();
    assert_eq!(maps.len(), 2);
    assert!(maps.iter().any(|m| m["map"] == kept["map"] && m["cosine"] == 0.125));
    let lost = maps.iter().find(|m| m["map"] != kept["map"]).unwrap();
    assert_eq!(lost, evaluated.iter().find(|m| m["map"] != kept["map"]).unwrap());

    // Other settings are refused rather than mixed in.
    let run = again(&["--seed", "9"]);
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("other settings"));
}

/// Sentences of the tiny vocabulary, each with one sentiment word: (label 1 or 0, text).
fn sentiment_rows(n: usize, seed: u64) -> Vec<(usize, String)> {
    let (pos, neg) = (["good", "great", "love", "fun"], ["bad", "terrible", "hate", "boring"]);
    let filler = ["the", "a", "movie", "film", "plot", "acting", "i", "it", "this", "story"];
    let mut s = seed;
    let mut next = |n: usize| {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s % n as u64) as usize
    };
    (0..n)
        .map(|i| {
            let mut words: Vec<&str> = (0..2 + next(4)).map(|_| filler[next(10)]).collect();
            let word = if i % 2 == 0 { pos[next(4)] } else { neg[next(4)] };
            words.insert(next(words.len() + 1), word);
            (usize::from(i % 2 == 0), words.join(" "))
        })
        .collect()
}

/// `finetune` on GLUE's SST-2 layout and on a user's TSV (columns by name, labels from the
/// data): packages the runtime loads, with the task's labels and the reported dev accuracy; a
/// run stopped with a checkpoint resumes to the same bytes; bad input is explained.
#[test]
fn finetune_trains_packages_from_tsv_files() {
    let data = tmp("finetune-sst2");
    std::fs::create_dir_all(&data).unwrap();
    for (file, n, seed) in [("train.tsv", 192, 11), ("dev.tsv", 32, 12)] {
        let rows: String =
            sentiment_rows(n, seed).iter().map(|(l, t)| format!("{t}\t{l}\n")).collect();
        std::fs::write(data.join(file), format!("sentence\tlabel\n{rows}")).unwrap();
    }
    let finetune = |out: &PathBuf, extra: &[&str]| {
        let mut cmd = bin();
        cmd.args(["finetune", "--model"]).arg(tiny()).arg("--data").arg(&data).arg("--out");
        cmd.arg(out).args(["--epochs", "12", "--batch", "16", "--lr", "3e-3", "--max-len", "32"]);
        cmd.args(extra).output().unwrap()
    };
    let out = tmp("finetuned.bertling");
    let run = finetune(&out, &["--task", "sst2"]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let report: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(report["labels"], serde_json::json!(["negative", "positive"]));
    let acc = report["best"]["scores"]["accuracy"].as_f64().unwrap();
    assert!(acc >= 0.9, "{report}");
    let model = Model::load(&out, &LoadOptions::default()).unwrap();
    let dev = sentiment_rows(32, 12);
    let texts: Vec<&str> = dev.iter().map(|(_, t)| t.as_str()).collect();
    let got = model.classify(&texts).unwrap();
    let right = dev.iter().zip(&got).filter(|((l, _), c)| *l == c.label_id).count();
    assert!((right as f64 / 32.0 - acc).abs() < 1e-12, "runtime {right}/32 vs {acc}");
    // Stopped after step 30 with a checkpoint, then resumed: the same package.
    let (ck, out2) = (tmp("finetune-ck"), tmp("finetuned2.bertling"));
    let stop = ["--task", "sst2", "--checkpoint", ck.to_str().unwrap(), "--stop-after", "30"];
    let run = finetune(&out2, &stop);
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success() && err.contains("stopped after step 30"), "{err}");
    assert!(!out2.exists());
    let run =
        finetune(&out2, &["--task", "sst2", "--checkpoint", ck.to_str().unwrap(), "--resume"]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&out2).unwrap());
    // BERT-of-Theseus: a 1-layer student of the fine-tuned 2-layer model, by module replacing.
    let theseus = tmp("theseus.bertling");
    let mut cmd = bin();
    cmd.args(["finetune", "--model"]).arg(&out).arg("--data").arg(&data).arg("--out");
    cmd.arg(&theseus).args(["--task", "sst2", "--theseus", "1", "--epochs", "12", "--batch", "16"]);
    let run = cmd.args(["--lr", "3e-3", "--max-len", "32"]).output().unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let report: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert!(report["best"]["scores"]["accuracy"].as_f64().unwrap() >= 0.85, "{report}");
    let info = Model::load(&theseus, &LoadOptions::default()).unwrap().info().clone();
    assert_eq!(info.blocks.len(), 2);
    // A user's TSV: columns named in the header, labels read from the data.
    let own = tmp("finetune-own");
    std::fs::create_dir_all(&own).unwrap();
    for (file, n, seed) in [("train.tsv", 192, 11), ("dev.tsv", 32, 12)] {
        let rows: String = sentiment_rows(n, seed)
            .iter()
            .map(|(l, t)| format!("x\t{}\t{t}\n", if *l == 1 { "pos" } else { "neg" }))
            .collect();
        std::fs::write(own.join(file), format!("id\tverdict\treview\n{rows}")).unwrap();
    }
    let out3 = tmp("own.bertling");
    let mut cmd = bin();
    cmd.args(["finetune", "--model"]).arg(tiny()).arg("--data").arg(&own).arg("--out").arg(&out3);
    cmd.args(["--text-columns", "review", "--label-column", "verdict", "--header"]);
    let run = cmd.args(["--epochs", "2", "--batch", "16", "--lr", "3e-3"]).output().unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let labels = Model::load(&out3, &LoadOptions::default()).unwrap().info().labels.clone();
    assert_eq!(labels, Some(vec!["neg".to_string(), "pos".into()]));
    // Bad input: an unknown task, a missing file, no task at all, a missing column.
    let missing = tmp("finetune-none");
    for (args, says) in [
        (vec!["--task", "mnli"], "sst2, cola, mrpc, stsb, rte, qnli".to_string()),
        (
            vec!["--text-columns", "body", "--label-column", "verdict", "--header"],
            "no column `body`".into(),
        ),
        (vec![], "--text-columns and --label-column".into()),
    ] {
        let mut cmd = bin();
        cmd.args(["finetune", "--model"]).arg(tiny()).arg("--data").arg(&own);
        let run = cmd.arg("--out").arg(tmp("bad.bertling")).args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&run.stderr);
        assert!(!run.status.success() && err.contains(&says), "{args:?}: {err}");
    }
    let mut cmd = bin();
    cmd.args(["finetune", "--model"]).arg(tiny()).arg("--data").arg(&missing);
    let run = cmd.arg("--out").arg(tmp("bad.bertling")).args(["--task", "sst2"]).output().unwrap();
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success() && err.contains("train.tsv"), "{err}");
    assert!(!tmp("bad.bertling").exists());
    // STS-B's layout makes a regression head, and eval scores STS-B by it.
    let stsb = tmp("finetune-stsb");
    std::fs::create_dir_all(&stsb).unwrap();
    let head =
        "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n";
    for (file, n, seed) in [("train.tsv", 192, 11), ("dev.tsv", 32, 12)] {
        let rows = sentiment_rows(2 * n, seed);
        let lines: String = rows
            .chunks(2)
            .enumerate()
            .map(|(i, p)| {
                format!("{i}\tg\tf\ty\t0\tn\tn\t{}\t{}\t{}\n", p[0].1, p[1].1, p[0].0 + p[1].0)
            })
            .collect();
        std::fs::write(stsb.join(file), format!("{head}{lines}")).unwrap();
    }
    let out4 = tmp("stsb.bertling");
    let mut cmd = bin();
    cmd.args(["finetune", "--model"]).arg(tiny()).arg("--data").arg(&stsb).arg("--out").arg(&out4);
    let run = cmd
        .args(["--task", "stsb", "--epochs", "2", "--batch", "16", "--lr", "3e-3"])
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let report: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    let mut cmd = bin();
    cmd.args(["eval", "--teacher"]).arg(tiny()).arg("--student").arg(&out4);
    let run = cmd.args(["--task", "stsb", "--json", "--data"]).arg(&stsb).output().unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let eval: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    let scores = &eval["stsb"]["student_scores"];
    assert_eq!(scores["by"], "regression head");
    assert_eq!(eval["stsb"]["teacher_scores"]["by"], "embedding cosine");
    let (got, want) = (
        scores["spearman"].as_f64().unwrap(),
        report["best"]["scores"]["spearman"].as_f64().unwrap(),
    );
    assert!((got - want).abs() < 1e-6, "eval {got} vs finetune {want}");
    assert!(scores["pearson"].as_f64().is_some());
    // Pruning baselines: structured pruning halves the heads; a magnitude-pruned package keeps
    // its zeros through finetune without being told.
    let texts = tmp("prune-texts.txt");
    std::fs::write(&texts, "i love this movie\nthe acting was terrible\na boring story\n").unwrap();
    let (structured, magnitude) = (tmp("structured.bertling"), tmp("magnitude.bertling"));
    let prune = |method: &str, out: &PathBuf, extra: &[&str]| {
        let mut cmd = bin();
        cmd.args(["prune", "--model"]).arg(tiny()).args(["--method", method, "--out"]).arg(out);
        cmd.args(extra).output().unwrap()
    };
    let run = prune("structured", &structured, &["--texts", texts.to_str().unwrap()]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let info = Model::load(&structured, &LoadOptions::default()).unwrap().info().clone();
    assert!(info.blocks.iter().all(
        |b| !matches!(b, bertling_runtime::BlockSpec::Attention { heads, .. } if *heads != 2)
    ));
    let run = prune("magnitude", &magnitude, &["--sparsity", "0.5"]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let tuned = tmp("magnitude-sst2.bertling");
    use bertling_runtime::spec::names;
    let mut cmd = bin();
    cmd.args(["finetune", "--model"]).arg(&magnitude).arg("--data").arg(&data).arg("--out");
    let run =
        cmd.arg(&tuned).args(["--task", "sst2", "--epochs", "1", "--lr", "3e-3"]).output().unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let w = bertling_runtime::load_model_data(&tuned).unwrap().tensors
        [&names::weight(&names::block(1).ffn_in())]
        .to_f32();
    assert!(w.iter().filter(|v| **v == 0.0).count() >= w.len() / 2, "the zeros were kept");
    for (method, extra, says) in [
        ("structured", vec![], "--texts FILE"),
        ("random", vec![], "use magnitude or structured"),
        ("magnitude", vec!["--sparsity", "1"], "fraction to remove"),
    ] {
        let run = prune(method, &tmp("bad-prune.bertling"), &extra);
        let err = String::from_utf8_lossy(&run.stderr);
        assert!(!run.status.success() && err.contains(says), "{method}: {err}");
    }
}
