//! `eval`: a student against its teacher (agreement, STS-B, GLUE loyalty, tagging loyalty).

use std::path::PathBuf;

use bertling_compressor::eval::{
    agreement, agreement_by_category, glue_examples, loyalty, read_texts, stsb, stsb_head,
    tag_loyalty, AgreementSet,
};
use bertling_compressor::tagging::read_words;
use bertling_compressor::task::TaskSpec;
use bertling_compressor::robust::{self, AttackConfig, Synonyms};
use bertling_runtime::{LoadOptions, Model};
use clap::Args;

use crate::error::{CliError, Result};

#[derive(Args)]
pub(crate) struct EvalArgs {
    #[arg(long)]
    teacher: PathBuf,
    #[arg(long)]
    student: PathBuf,
    /// stsb, sst2, cola, mrpc, rte or qnli (with --data: a GLUE directory), or upos or xpos
    /// (taggers; --data: a UD treebank's directory, its *dev.conllu; --limit counts sentences).
    #[arg(long)]
    task: Option<String>,
    /// The task's GLUE directory (holding dev.tsv).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Texts for embedding agreement, one per line.
    #[arg(long)]
    texts: Option<PathBuf>,
    /// Embedding agreement per category on the built-in benchmark of what users type (short
    /// queries, single words and characters, punctuation and whitespace, numbers and code,
    /// names, other scripts, paragraphs past 256 tokens, ordinary sentences).
    #[arg(long, conflicts_with = "agreement_set")]
    agreement: bool,
    /// Embedding agreement per category on this JSON-lines file of {"category", "text"}
    /// objects instead of the built-in set.
    #[arg(long, value_name = "FILE")]
    agreement_set: Option<PathBuf>,
    /// With a classification --task: attack both models on the dev examples by word
    /// substitution (WordNet synonyms, words in order of importance, as TextFooler) and report
    /// attack success rate and accuracy under attack.
    #[arg(long)]
    attack: bool,
    /// WordNet's directory (data.noun, data.verb, data.adj, data.adv): Debian's wordnet-base.
    #[arg(long, default_value = "/usr/share/wordnet")]
    wordnet: PathBuf,
    /// At most this many texts or examples.
    #[arg(long, default_value_t = 2000)]
    limit: usize,
    /// Print JSON instead of a Markdown table.
    #[arg(long)]
    json: bool,
    #[arg(long)]
    threads: Option<usize>,
}

pub(crate) fn eval_cmd(a: &EvalArgs) -> Result<()> {
    // WordNet read before any work, so a missing one fails at once.
    let synonyms = if a.attack && a.task.as_deref().is_some_and(|t| t != "stsb") {
        Some(Synonyms::wordnet(&a.wordnet)?)
    } else {
        None
    };
    let opts = LoadOptions { threads: a.threads, ..Default::default() };
    let teacher = Model::load(&a.teacher, &opts)?;
    let student = Model::load(&a.student, &opts)?;
    let mut report = serde_json::Map::new();
    let mut rows: Vec<(String, String, String)> = Vec::new();
    if let Some(texts) = &a.texts {
        let t = read_texts(texts, a.limit)?;
        let ag = agreement(&teacher, &student, &t)?;
        rows.push((
            "embedding cosine to teacher (mean)".into(),
            "1".into(),
            format!("{:.4}", ag.mean),
        ));
        rows.push((
            "embedding cosine to teacher (5th pct)".into(),
            "1".into(),
            format!("{:.4}", ag.p5),
        ));
        report.insert("agreement".into(), serde_json::to_value(ag).unwrap_or_default());
    }
    let set = match (&a.agreement_set, a.agreement) {
        (Some(path), _) => Some(AgreementSet::read(path)?),
        (None, true) => Some(AgreementSet::builtin()),
        (None, false) => None,
    };
    if let Some(set) = set {
        let by = agreement_by_category(&teacher, &student, &set)?;
        for c in &by {
            let g = &c.agreement;
            let what =
                format!("cosine to teacher, {} ({} inputs): mean / p5 / min", c.category, g.texts);
            rows.push((what, "1".into(), format!("{:.4} / {:.4} / {:.4}", g.mean, g.p5, g.min)));
        }
        report
            .insert("agreement_by_category".into(), serde_json::to_value(&by).unwrap_or_default());
    }
    match (a.task.as_deref(), &a.data) {
        (None, None) if a.attack => {
            return Err(CliError::Usage("--attack needs --task and --data".into()))
        }
        (None, None) => {}
        (Some(_), None) | (None, Some(_)) => {
            return Err(CliError::Usage("--task and --data go together".into()))
        }
        (Some("stsb"), Some(_)) if a.attack => {
            return Err(CliError::Usage(
                "--attack needs a classification task (sst2, cola, mrpc, rte, qnli)".into(),
            ))
        }
        (Some("stsb"), Some(dir)) => {
            // A fine-tuned regression head scores the pairs; other models, their embeddings'
            // cosine.
            let score = |m: &Model| -> Result<(&str, Option<f64>, f64)> {
                if m.info().labels.as_ref().is_some_and(|l| l.len() == 1) {
                    let (p, s) = stsb_head(m, dir)?;
                    Ok(("regression head", Some(p), s))
                } else {
                    Ok(("embedding cosine", None, stsb(m, dir)?))
                }
            };
            let (t, s) = (score(&teacher)?, score(&student)?);
            rows.push(("STS-B dev Spearman".into(), format!("{:.4}", t.2), format!("{:.4}", s.2)));
            if let (Some(tp), Some(sp)) = (t.1, s.1) {
                rows.push(("STS-B dev Pearson".into(), format!("{tp:.4}"), format!("{sp:.4}")));
            }
            rows.push(("STS-B scored by".into(), t.0.into(), s.0.into()));
            let side = |(by, pearson, spearman): (&str, Option<f64>, f64)| serde_json::json!({"by": by, "pearson": pearson, "spearman": spearman});
            report.insert(
                "stsb".into(),
                serde_json::json!({"teacher": t.2, "student": s.2, "teacher_scores": side(t),
                    "student_scores": side(s)}),
            );
        }
        (Some(task @ ("upos" | "xpos")), Some(dir)) => {
            if a.attack {
                return Err(CliError::Usage("--attack needs a classification task".into()));
            }
            let spec = TaskSpec::tagging(task)?;
            let path = crate::finetune::conllu_file(dir, "dev")?;
            let sentences: Vec<(Vec<String>, Vec<String>)> = read_words(&spec, &path)?
                .into_iter()
                .take(a.limit)
                .map(|s| (s.words, s.tags))
                .collect();
            let l = tag_loyalty(&teacher, &student, &sentences)?;
            rows.push((
                format!("{task} accuracy ({} words)", l.words),
                format!("{:.4}", l.teacher_accuracy),
                format!("{:.4}", l.student_accuracy),
            ));
            rows.push(("label loyalty".into(), "1".into(), format!("{:.4}", l.label_loyalty)));
            rows.push((
                "MFLOPs per word".into(),
                format!("{:.2}", l.teacher_mflops_per_word),
                format!("{:.2}", l.student_mflops_per_word),
            ));
            report.insert(task.to_string(), serde_json::to_value(l).unwrap_or_default());
        }
        (Some(task), Some(dir)) => {
            let mut ex = glue_examples(task, dir)?;
            ex.truncate(a.limit);
            let l = loyalty(task, &teacher, &student, &ex)?;
            rows.push((
                format!("{task} accuracy"),
                format!("{:.4}", l.teacher_accuracy),
                format!("{:.4}", l.student_accuracy),
            ));
            let (t, s) = (l.teacher_metrics, l.student_metrics);
            for (name, t, s) in
                [("F1", t.f1, s.f1), ("Matthews correlation", t.matthews, s.matthews)]
            {
                if let (Some(t), Some(s)) = (t, s) {
                    rows.push((format!("{task} {name}"), format!("{t:.4}"), format!("{s:.4}")));
                }
            }
            rows.push(("label loyalty".into(), "1".into(), format!("{:.4}", l.label_loyalty)));
            rows.push((
                "probability loyalty".into(),
                "1".into(),
                format!("{:.4}", l.probability_loyalty),
            ));
            report.insert(task.to_string(), serde_json::to_value(l).unwrap_or_default());
            if let Some(synonyms) = &synonyms {
                let cfg = AttackConfig::default();
                let (t, s) = (
                    robust::attack(&teacher, &ex, synonyms, &cfg)?,
                    robust::attack(&student, &ex, synonyms, &cfg)?,
                );
                rows.push((
                    "accuracy under attack".into(),
                    format!("{:.4}", t.accuracy_under_attack),
                    format!("{:.4}", s.accuracy_under_attack),
                ));
                rows.push((
                    "attack success rate".into(),
                    format!("{:.4}", t.attack_success_rate),
                    format!("{:.4}", s.attack_success_rate),
                ));
                report.insert(
                    "attack".into(),
                    serde_json::json!({"config": cfg, "teacher": t, "student": s}),
                );
            }
        }
    }
    if rows.is_empty() {
        return Err(CliError::Usage(
            "nothing to evaluate: give --agreement, --agreement-set FILE, --texts FILE and/or \
             --task T --data DIR"
                .into(),
        ));
    }
    let (ti, si) = (teacher.info(), student.info());
    report.insert(
        "teacher".into(),
        serde_json::json!({"path": a.teacher, "parameters": ti.parameters, "bytes": ti.bytes}),
    );
    let student = serde_json::json!({
        "path": a.student, "parameters": si.parameters, "bytes": si.bytes,
        "matrix_bits": si.matrix_bits,
    });
    report.insert("student".into(), student);
    if a.json {
        println!("{}", serde_json::Value::Object(report));
    } else {
        println!("| metric | teacher | student |\n|---|---|---|");
        println!("| size (MB) | {:.1} | {:.1} |", ti.bytes as f64 / 1e6, si.bytes as f64 / 1e6);
        for (m, t, s) in rows {
            println!("| {m} | {t} | {s} |");
        }
    }
    Ok(())
}
