//! Evaluation of a student against its teacher (both run by the runtime's CPU backend):
//! sentence-embedding agreement, STS-B Spearman from embeddings, and for classification
//! packages accuracy, label loyalty and probability loyalty (Xu et al. 2021,
//! `../shared/papers/NOTES.md` §6).

use std::path::Path;

use bertling_runtime::{cosine, Model};
use serde::{Deserialize, Serialize};

use crate::error::{CompressError, Result};

/// Cosine of the student's sentence embeddings to the teacher's over a set of texts.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Agreement {
    pub mean: f64,
    /// 5th percentile.
    pub p5: f64,
    pub min: f64,
    pub texts: usize,
}

impl Agreement {
    /// Mean, 5th percentile and minimum of `cos` (not empty).
    fn of(mut cos: Vec<f64>) -> Agreement {
        let mean = cos.iter().sum::<f64>() / cos.len() as f64;
        cos.sort_by(f64::total_cmp);
        let p5 = cos[((cos.len() - 1) as f64 * 0.05).round() as usize];
        Agreement { mean, p5, min: cos[0], texts: cos.len() }
    }
}

/// Embedding agreement over `texts` (batched).
pub fn agreement(teacher: &Model, student: &Model, texts: &[String]) -> Result<Agreement> {
    if texts.is_empty() {
        return Err(CompressError::InvalidArgument("no texts to compare on".into()));
    }
    Ok(Agreement::of(cosines(teacher, student, texts)?))
}

/// The cosine of each text's student embedding to its teacher embedding.
fn cosines(teacher: &Model, student: &Model, texts: &[String]) -> Result<Vec<f64>> {
    let (tw, sw) = (teacher.info().output_width, student.info().output_width);
    if tw != sw {
        return Err(CompressError::InvalidArgument(format!(
            "the student's embeddings have {sw} dimensions and the teacher's {tw}: embedding cosine needs the same width (compare them on a task instead, e.g. --task stsb)"
        )));
    }
    let mut cos = Vec::with_capacity(texts.len());
    for chunk in texts.chunks(32) {
        let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
        let (a, b) = (teacher.embed(&refs)?, student.embed(&refs)?);
        cos.extend(a.iter().zip(&b).map(|(x, y)| cosine(x, y) as f64));
    }
    Ok(cos)
}

/// One input of an agreement set.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct AgreementInput {
    pub category: String,
    pub text: String,
}

/// Inputs in categories, for agreement per category: by default the built-in benchmark of what
/// users type (`compressor/data/agreement.jsonl`, made by `scripts/make_agreement_set.py`;
/// sources and licenses in `compressor/data/README.md`).
#[derive(Clone, Debug)]
pub struct AgreementSet {
    pub inputs: Vec<AgreementInput>,
}

/// The built-in set, compiled in so that every binary has it.
const BUILTIN_SET: &str = include_str!("../data/agreement.jsonl");

impl AgreementSet {
    /// The benchmark of what users type (its categories and sources:
    /// `compressor/data/README.md`).
    pub fn builtin() -> AgreementSet {
        // Parsed by a test on every build: a failure here is a bug in the shipped file.
        AgreementSet::parse(BUILTIN_SET, "the built-in agreement set").unwrap_or(AgreementSet { inputs: Vec::new() })
    }

    /// Reads a JSON-lines file of `{"category": ..., "text": ...}` objects (other fields
    /// ignored; blank lines skipped).
    pub fn read(path: &Path) -> Result<AgreementSet> {
        let text = std::fs::read_to_string(path).map_err(|source| CompressError::Io { what: "cannot read the agreement set", path: path.into(), source })?;
        AgreementSet::parse(&text, &path.display().to_string())
    }

    /// Parses JSON lines (`origin` names the source in errors).
    pub fn parse(text: &str, origin: &str) -> Result<AgreementSet> {
        let mut inputs = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let input: AgreementInput = serde_json::from_str(line).map_err(|e| {
                CompressError::InvalidArgument(format!(
                    "{origin}, line {}: {e}; each line must be a JSON object with \"category\" and \"text\" strings",
                    i + 1
                ))
            })?;
            inputs.push(input);
        }
        if inputs.is_empty() {
            return Err(CompressError::InvalidArgument(format!("{origin} holds no inputs")));
        }
        Ok(AgreementSet { inputs })
    }

    /// The categories in the order they first appear.
    pub fn categories(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for i in &self.inputs {
            if !out.contains(&i.category.as_str()) {
                out.push(&i.category);
            }
        }
        out
    }
}

/// Embedding agreement in one category of an [`AgreementSet`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CategoryAgreement {
    pub category: String,
    #[serde(flatten)]
    pub agreement: Agreement,
}

/// Agreement per category of `set`, in the set's order (each text embedded once).
pub fn agreement_by_category(teacher: &Model, student: &Model, set: &AgreementSet) -> Result<Vec<CategoryAgreement>> {
    let texts: Vec<String> = set.inputs.iter().map(|i| i.text.clone()).collect();
    let cos = cosines(teacher, student, &texts)?;
    Ok(set
        .categories()
        .into_iter()
        .map(|c| {
            let v: Vec<f64> = set.inputs.iter().zip(&cos).filter(|(i, _)| i.category == c).map(|(_, &x)| x).collect();
            CategoryAgreement { category: c.to_string(), agreement: Agreement::of(v) }
        })
        .collect())
}

/// Spearman's rank correlation (average ranks for ties).
pub fn spearman(a: &[f64], b: &[f64]) -> f64 {
    fn ranks(v: &[f64]) -> Vec<f64> {
        let mut idx: Vec<usize> = (0..v.len()).collect();
        idx.sort_by(|&i, &j| v[i].total_cmp(&v[j]));
        let mut r = vec![0.0; v.len()];
        let mut i = 0;
        while i < idx.len() {
            let mut j = i;
            while j + 1 < idx.len() && v[idx[j + 1]] == v[idx[i]] {
                j += 1;
            }
            let avg = (i + j) as f64 / 2.0 + 1.0;
            for k in i..=j {
                r[idx[k]] = avg;
            }
            i = j + 1;
        }
        r
    }
    pearson(&ranks(a), &ranks(b))
}

/// Kendall's rank correlation τ-b (ties on either side count as neither concordant nor
/// discordant; 0 when either side is constant): how often two rankings order a pair alike.
pub fn kendall(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    let (mut concordant, mut discordant, mut ties_a, mut ties_b) = (0i64, 0i64, 0i64, 0i64);
    for i in 0..n {
        for j in i + 1..n {
            let (da, db) = (a[i] - a[j], b[i] - b[j]);
            match (da == 0.0, db == 0.0) {
                (true, true) => {}
                (true, false) => ties_a += 1,
                (false, true) => ties_b += 1,
                _ if (da > 0.0) == (db > 0.0) => concordant += 1,
                _ => discordant += 1,
            }
        }
    }
    let pairs_a = (concordant + discordant + ties_b) as f64;
    let pairs_b = (concordant + discordant + ties_a) as f64;
    if pairs_a == 0.0 || pairs_b == 0.0 {
        return 0.0;
    }
    (concordant - discordant) as f64 / (pairs_a * pairs_b).sqrt()
}

/// Pearson's correlation (0 when either side is constant).
pub fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len()) as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let cov: f64 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = a.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = b.iter().map(|y| (y - mb).powi(2)).sum();
    if va == 0.0 || vb == 0.0 {
        0.0
    } else {
        cov / (va * vb).sqrt()
    }
}

/// F1 of the `positive` label: 2·TP / (2·TP + FP + FN), 0 when there is nothing to score.
pub fn f1(gold: &[usize], pred: &[usize], positive: usize) -> f64 {
    let (mut tp, mut fp, mut fneg) = (0usize, 0usize, 0usize);
    for (&g, &p) in gold.iter().zip(pred) {
        match (g == positive, p == positive) {
            (true, true) => tp += 1,
            (false, true) => fp += 1,
            (true, false) => fneg += 1,
            (false, false) => {}
        }
    }
    let den = 2 * tp + fp + fneg;
    if den == 0 {
        0.0
    } else {
        2.0 * tp as f64 / den as f64
    }
}

/// Matthews' correlation coefficient, for any number of labels (Gorodkin's R_K, which is the
/// usual MCC for two): (c·s − Σ_k p_k·t_k) / √((s² − Σ p_k²)(s² − Σ t_k²)) with c correct, s
/// examples, p_k and t_k the times label k was predicted and true; 0 when undefined.
pub fn matthews(gold: &[usize], pred: &[usize]) -> f64 {
    let k = gold.iter().chain(pred).copied().max().map_or(0, |m| m + 1);
    let (mut t, mut p) = (vec![0f64; k], vec![0f64; k]);
    let mut c = 0f64;
    for (&g, &q) in gold.iter().zip(pred) {
        t[g] += 1.0;
        p[q] += 1.0;
        c += f64::from(u8::from(g == q));
    }
    let s = gold.len().min(pred.len()) as f64;
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    let den = ((s * s - dot(&p, &p)) * (s * s - dot(&t, &t))).sqrt();
    if den == 0.0 {
        0.0
    } else {
        (c * s - dot(&p, &t)) / den
    }
}

/// GLUE's metrics of a classification task: accuracy, and F1 of the positive label (MRPC) or
/// Matthews' correlation (CoLA) where the task is scored so.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct TaskMetrics {
    pub accuracy: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub f1: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matthews: Option<f64>,
}

impl TaskMetrics {
    /// The metrics of `task` (`sst2`, `cola`, `mrpc`, `rte`, `qnli`) from gold and predicted
    /// label indices.
    pub fn of(task: &str, gold: &[usize], pred: &[usize]) -> TaskMetrics {
        let right = gold.iter().zip(pred).filter(|(g, p)| g == p).count();
        TaskMetrics {
            accuracy: right as f64 / gold.len().max(1) as f64,
            f1: (task == "mrpc").then(|| f1(gold, pred, 1)),
            matthews: (task == "cola").then(|| matthews(gold, pred)),
        }
    }
}

/// STS-B (dev.tsv in `dir`): Spearman correlation of the embeddings' cosine with the gold
/// scores.
pub fn stsb(model: &Model, dir: &Path) -> Result<f64> {
    let rows = crate::task::read_rows(&dir.join("dev.tsv"))?;
    let (mut pred, mut gold) = (Vec::new(), Vec::new());
    let data: Vec<&Vec<String>> = rows.iter().skip(1).filter(|r| r.len() >= 10).collect();
    if data.is_empty() {
        return Err(CompressError::InvalidArgument(format!("{}: no STS-B rows (score in column 10)", dir.display())));
    }
    for chunk in data.chunks(32) {
        let a: Vec<&str> = chunk.iter().map(|r| r[7].as_str()).collect();
        let b: Vec<&str> = chunk.iter().map(|r| r[8].as_str()).collect();
        let (ea, eb) = (model.embed(&a)?, model.embed(&b)?);
        for ((x, y), r) in ea.iter().zip(&eb).zip(chunk) {
            pred.push(cosine(x, y) as f64);
            gold.push(r[9].trim().parse::<f64>().map_err(|_| CompressError::InvalidArgument(format!("bad STS-B score `{}`", r[9])))?);
        }
    }
    Ok(spearman(&pred, &gold))
}

/// STS-B (dev.tsv in `dir`) scored by a model's regression head (`bertling finetune --task
/// stsb`): Pearson and Spearman correlation of its scores with the gold scores.
pub fn stsb_head(model: &Model, dir: &Path) -> Result<(f64, f64)> {
    if model.info().labels.as_ref().is_none_or(|l| l.len() != 1) {
        return Err(CompressError::InvalidArgument("the model has no regression head (one output): score STS-B by its embeddings".into()));
    }
    let examples = crate::task::TaskSpec::glue("stsb")?.read(&dir.join("dev.tsv"))?;
    let (mut pred, mut gold) = (Vec::new(), Vec::new());
    for chunk in examples.chunks(32) {
        let pairs: Vec<(&str, &str)> = chunk.iter().map(|e| (e.a.as_str(), e.b.as_deref().unwrap_or(""))).collect();
        pred.extend(model.classify_pairs(&pairs)?.iter().map(|c| c.probs.first().copied().unwrap_or(0.0) as f64));
        gold.extend(chunk.iter().map(|e| match e.target {
            crate::task::Target::Score(s) => s as f64,
            crate::task::Target::Class(c) => c as f64,
        }));
    }
    Ok((pearson(&pred, &gold), spearman(&pred, &gold)))
}

/// A classification example: one text or a pair, and the gold label index.
pub struct Example {
    pub a: String,
    pub b: Option<String>,
    pub label: usize,
}

/// Dev examples of a GLUE classification task (`sst2`, `cola`, `mrpc`, `rte`, `qnli`) in `dir`.
/// Labels are indices in GLUE's order (RTE/QNLI: entailment = 0, not_entailment = 1).
pub fn glue_examples(task: &str, dir: &Path) -> Result<Vec<Example>> {
    let spec = crate::task::TaskSpec::glue(task)?;
    if spec.is_regression() {
        return Err(CompressError::InvalidArgument(format!("{task} is scored, not classified: it has no class labels")));
    }
    Ok(spec
        .read(&dir.join("dev.tsv"))?
        .into_iter()
        .filter_map(|e| match e.target {
            crate::task::Target::Class(label) => Some(Example { a: e.a, b: e.b, label }),
            crate::task::Target::Score(_) => None,
        })
        .collect())
}

/// Classification quality of a student and its loyalty to the teacher.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Loyalty {
    pub teacher_accuracy: f64,
    pub student_accuracy: f64,
    /// The task's GLUE metrics of each (accuracy, F1 for MRPC, Matthews for CoLA).
    pub teacher_metrics: TaskMetrics,
    pub student_metrics: TaskMetrics,
    /// Fraction of inputs where student and teacher predict the same label.
    pub label_loyalty: f64,
    /// Mean of 1 - sqrt(JSD(P_teacher ‖ P_student)), JSD with base-2 logarithms.
    pub probability_loyalty: f64,
    pub examples: usize,
}

/// Jensen–Shannon divergence with base-2 logarithms (in [0, 1]).
pub fn jsd(p: &[f64], q: &[f64]) -> f64 {
    let kl = |a: &[f64], m: &[f64]| -> f64 { a.iter().zip(m).filter(|(x, _)| **x > 0.0).map(|(x, y)| x * (x / y).log2()).sum() };
    let m: Vec<f64> = p.iter().zip(q).map(|(a, b)| (a + b) / 2.0).collect();
    (0.5 * kl(p, &m) + 0.5 * kl(q, &m)).max(0.0)
}

/// A tagger against its teacher on tagged sentences: word accuracy of each against the gold
/// tags, and label loyalty (the words the student tags as the teacher does).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TagLoyalty {
    pub sentences: usize,
    pub words: usize,
    pub teacher_accuracy: f64,
    pub student_accuracy: f64,
    pub label_loyalty: f64,
    /// Millions of floating-point operations per word (`2 ×` [`ModelSpec::macs_per_token`]
    /// at each sentence's length, times its tokens, over its words).
    ///
    /// [`ModelSpec::macs_per_token`]: bertling_runtime::spec::ModelSpec::macs_per_token
    pub teacher_mflops_per_word: f64,
    pub student_mflops_per_word: f64,
}

/// [`TagLoyalty`] of `student` against `teacher` (both token-classification models) on
/// `sentences`: (words, gold tags), each sentence tagged whole (`Model::tag_words`).
pub fn tag_loyalty(teacher: &Model, student: &Model, sentences: &[(Vec<String>, Vec<String>)]) -> Result<TagLoyalty> {
    let (mut words, mut t_right, mut s_right, mut agree) = (0usize, 0usize, 0usize, 0usize);
    let (mut t_flops, mut s_flops) = (0f64, 0f64);
    // A sentence's cost: its tokens (as the words joined tokenize) times the per-token work.
    let flops = |m: &Model, w: &[String]| -> Result<f64> {
        let n = m.tokenize(&[w.join(" ").as_str()])?.first().map_or(0, |i| i.ids.len());
        Ok(2.0 * m.info().spec.macs_per_token(n) * n as f64)
    };
    for (w, gold) in sentences {
        let refs: Vec<&str> = w.iter().map(String::as_str).collect();
        let (t, s) = (teacher.tag_words(&refs)?, student.tag_words(&refs)?);
        t_flops += flops(teacher, w)?;
        s_flops += flops(student, w)?;
        for ((t, s), g) in t.iter().zip(&s).zip(gold) {
            words += 1;
            t_right += usize::from(&t.label == g);
            s_right += usize::from(&s.label == g);
            agree += usize::from(t.label == s.label);
        }
    }
    let r = |n: usize| if words == 0 { 0.0 } else { n as f64 / words as f64 };
    Ok(TagLoyalty {
        sentences: sentences.len(),
        words,
        teacher_accuracy: r(t_right),
        student_accuracy: r(s_right),
        label_loyalty: r(agree),
        teacher_mflops_per_word: t_flops / words.max(1) as f64 / 1e6,
        student_mflops_per_word: s_flops / words.max(1) as f64 / 1e6,
    })
}

/// Accuracy, the task's metrics and loyalty on examples of `task`.
pub fn loyalty(task: &str, teacher: &Model, student: &Model, examples: &[Example]) -> Result<Loyalty> {
    let (mut ll, mut pl) = (0usize, 0f64);
    let (mut tp, mut sp) = (Vec::with_capacity(examples.len()), Vec::with_capacity(examples.len()));
    for chunk in examples.chunks(32) {
        let run = |m: &Model| -> Result<Vec<bertling_runtime::Classification>> {
            if chunk.iter().all(|e| e.b.is_none()) {
                let t: Vec<&str> = chunk.iter().map(|e| e.a.as_str()).collect();
                Ok(m.classify(&t)?)
            } else {
                let p: Vec<(&str, &str)> = chunk.iter().map(|e| (e.a.as_str(), e.b.as_deref().unwrap_or(""))).collect();
                Ok(m.classify_pairs(&p)?)
            }
        };
        let (t, s) = (run(teacher)?, run(student)?);
        for (ct, cs) in t.iter().zip(&s) {
            ll += (ct.label_id == cs.label_id) as usize;
            tp.push(ct.label_id);
            sp.push(cs.label_id);
            let (p, q): (Vec<f64>, Vec<f64>) = (ct.probs.iter().map(|&v| v as f64).collect(), cs.probs.iter().map(|&v| v as f64).collect());
            pl += 1.0 - jsd(&p, &q).sqrt();
        }
    }
    let n = examples.len() as f64;
    let gold: Vec<usize> = examples.iter().map(|e| e.label).collect();
    let (teacher_metrics, student_metrics) = (TaskMetrics::of(task, &gold, &tp), TaskMetrics::of(task, &gold, &sp));
    Ok(Loyalty {
        teacher_accuracy: teacher_metrics.accuracy,
        student_accuracy: student_metrics.accuracy,
        teacher_metrics,
        student_metrics,
        label_loyalty: ll as f64 / n,
        probability_loyalty: pl / n,
        examples: examples.len(),
    })
}

/// Non-empty lines of a text file, at most `limit`.
pub fn read_texts(path: &Path, limit: usize) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| CompressError::InvalidArgument(format!("cannot read {}: {e}", path.display())))?;
    Ok(text.lines().map(str::trim).filter(|l| !l.is_empty()).take(limit).map(str::to_string).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spearman_closed_forms() {
        assert!((spearman(&[1.0, 2.0, 3.0, 4.0], &[10.0, 20.0, 30.0, 40.0]) - 1.0).abs() < 1e-12);
        assert!((spearman(&[1.0, 2.0, 3.0, 4.0], &[4.0, 3.0, 2.0, 1.0]) + 1.0).abs() < 1e-12);
        // Monotone but not linear: still 1.
        assert!((spearman(&[1.0, 2.0, 3.0], &[1.0, 8.0, 27.0]) - 1.0).abs() < 1e-12);
        // With ties: ranks [1.5, 1.5, 3] vs [1, 2, 3] -> 0.8660254.
        assert!((spearman(&[5.0, 5.0, 7.0], &[1.0, 2.0, 3.0]) - 0.866_025_403_784_438_6).abs() < 1e-12);
    }

    #[test]
    fn kendall_closed_forms() {
        assert!((kendall(&[1.0, 2.0, 3.0, 4.0], &[10.0, 20.0, 30.0, 40.0]) - 1.0).abs() < 1e-12);
        assert!((kendall(&[1.0, 2.0, 3.0, 4.0], &[4.0, 3.0, 2.0, 1.0]) + 1.0).abs() < 1e-12);
        // One swapped pair of six: (5 - 1) / 6.
        assert!((kendall(&[1.0, 2.0, 3.0, 4.0], &[1.0, 3.0, 2.0, 4.0]) - 4.0 / 6.0).abs() < 1e-12);
        // τ-b with a tie in a: concordant 2, discordant 0, one pair tied in a only:
        // 2 / √(2 · 3).
        let t = kendall(&[1.0, 1.0, 2.0], &[1.0, 2.0, 3.0]);
        assert!((t - 2.0 / 6f64.sqrt()).abs() < 1e-12, "{t}");
        assert_eq!(kendall(&[1.0, 1.0], &[1.0, 2.0]), 0.0);
    }

    #[test]
    fn pearson_f1_and_matthews_closed_forms() {
        // x and y deviate by (-1.5, -0.5, 0.5, 1.5) and (-1.5, 0.5, -0.5, 1.5): 4 / 5.
        assert!((pearson(&[1.0, 2.0, 3.0, 4.0], &[1.0, 3.0, 2.0, 4.0]) - 0.8).abs() < 1e-12);
        assert_eq!(pearson(&[1.0, 1.0], &[1.0, 2.0]), 0.0);
        // TP 2, FP 1, FN 1, TN 1.
        let (gold, pred) = ([1, 1, 0, 0, 1], [1, 0, 0, 1, 1]);
        assert!((f1(&gold, &pred, 1) - 4.0 / 6.0).abs() < 1e-12);
        // The two-label closed form: (TP·TN − FP·FN) / √((TP+FP)(TP+FN)(TN+FP)(TN+FN)) = 1/6.
        assert!((matthews(&gold, &pred) - 1.0 / 6.0).abs() < 1e-12);
        assert!((matthews(&[0, 1, 1, 0], &[0, 1, 1, 0]) - 1.0).abs() < 1e-12);
        assert!((matthews(&[0, 1, 1, 0], &[1, 0, 0, 1]) + 1.0).abs() < 1e-12);
        // A constant prediction says nothing: 0, not a division by zero.
        assert_eq!(matthews(&[0, 1, 1, 0], &[1, 1, 1, 1]), 0.0);
        // scikit-learn's documented example: true [+1, +1, +1, −1], predicted [+1, −1, +1, +1].
        assert!((matthews(&[1, 1, 1, 0], &[1, 0, 1, 1]) + 1.0 / 3.0).abs() < 1e-12);
        // Three labels, by hand: s = 6, c = 3, p = (2, 2, 2), t = (2, 2, 2):
        // (3·6 − 12) / √((36 − 12)(36 − 12)) = 0.25.
        assert!((matthews(&[0, 0, 1, 1, 2, 2], &[0, 1, 1, 2, 2, 0]) - 0.25).abs() < 1e-12);
        let m = TaskMetrics::of("mrpc", &gold, &pred);
        assert_eq!((m.accuracy, m.matthews), (0.6, None));
        assert!(m.f1.is_some());
        let m = TaskMetrics::of("cola", &gold, &pred);
        assert!(m.f1.is_none() && m.matthews.is_some());
    }

    #[test]
    fn jsd_closed_forms() {
        assert_eq!(jsd(&[0.5, 0.5], &[0.5, 0.5]), 0.0);
        // Disjoint distributions: JSD = 1 bit.
        assert!((jsd(&[1.0, 0.0], &[0.0, 1.0]) - 1.0).abs() < 1e-12);
        // p = (1, 0), q = (1/2, 1/2): m = (3/4, 1/4); JSD = ½·log2(4/3) + ½·(½·log2(2/3) + ½·log2(2)).
        let want = 0.5 * (4.0f64 / 3.0).log2() + 0.5 * (0.5 * (2.0f64 / 3.0).log2() + 0.5);
        assert!((jsd(&[1.0, 0.0], &[0.5, 0.5]) - want).abs() < 1e-12);
    }
}
