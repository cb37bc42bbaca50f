//! What makes a search trustworthy (`bertling search --verify N`): the supernet ranks candidates
//! by their held-out cosine with shared weights, and a search is only as good as that ranking
//! agrees with the ranking of the same architectures trained as students. N candidates of the
//! budgets' ranked lists are distilled from their inherited weights for a fixed number of steps,
//! scored by the runtime on the held-out texts, and the rank correlation (Kendall τ) of the
//! supernet's scores with the trained ones is reported, over all of them and within each budget
//! (where sizes are alike, so that τ is not just "bigger is better"). Each candidate's result and
//! float package are kept under `out/verify/` (`NN.json`, `NN.bertling`) as it finishes: a
//! killed search resumes without training it again.

use std::path::Path;

use bertling_runtime::{LoadOptions, Model, ModelData};
use serde::{Deserialize, Serialize};

use super::family::Member;
use super::supernet::Supernet;
use crate::distill::{DistillConfig, Progress};
use crate::error::{CompressError, Result};
use crate::eval::kendall;
use crate::pipeline::{distill_student, RunFiles};

/// The check a search runs when asked.
#[derive(Clone, Debug)]
pub struct Verify {
    /// Candidates to train (distinct architectures, taken from the budgets' ranked lists in
    /// turn: every budget's best, then every budget's second, ...).
    pub count: usize,
    /// Their distillation (float, from the supernet's weights).
    pub train: DistillConfig,
}

/// One candidate trained as a student.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Verified {
    pub arch: String,
    pub budget: String,
    /// Its summed held-out stage losses in the supernet (lower is better).
    pub proxy_loss: f64,
    /// Its held-out cosine in the supernet, which the search ranks by.
    pub supernet_cosine: f64,
    /// The embedding cosine to the teacher on the evaluation texts after `steps` steps of
    /// distillation, by the runtime.
    pub trained_cosine: f64,
    pub steps: usize,
}

/// The verification's result in the search report.
#[derive(Clone, Debug, Serialize)]
pub struct Verification {
    pub steps: usize,
    pub candidates: Vec<Verified>,
    /// Kendall τ of the supernet cosine with the trained cosine, over every candidate.
    pub tau: f64,
    /// Kendall τ of the (negated) proxy loss with the trained cosine.
    pub tau_proxy_loss: f64,
    /// The mean of τ within each budget that has at least 3 candidates (none: no such budget).
    pub tau_within_budgets: Option<f64>,
}

/// The candidates to verify: `count` distinct architectures, round-robin over the budgets.
pub fn pick(members: &[Member], count: usize) -> Vec<(String, String, f64, f64)> {
    let mut out: Vec<(String, String, f64, f64)> = Vec::new();
    let deepest = members.iter().map(|m| m.ranked.len()).max().unwrap_or(0);
    for k in 0..deepest {
        for m in members {
            if out.len() == count {
                return out;
            }
            if let Some((arch, loss, cosine)) = m.ranked.get(k) {
                if !out.iter().any(|o| o.0 == *arch) {
                    out.push((arch.clone(), m.budget.clone(), *loss, *cosine));
                }
            }
        }
    }
    out
}

/// τ over all candidates and within budgets (see [`Verification`]).
pub fn summarize(steps: usize, candidates: Vec<Verified>) -> Verification {
    let col = |c: &[&Verified], f: fn(&Verified) -> f64| c.iter().map(|v| f(v)).collect::<Vec<_>>();
    let all: Vec<&Verified> = candidates.iter().collect();
    let trained = col(&all, |v| v.trained_cosine);
    let tau = kendall(&col(&all, |v| v.supernet_cosine), &trained);
    let tau_proxy_loss = kendall(&col(&all, |v| -v.proxy_loss), &trained);
    let mut budgets: Vec<&str> = Vec::new();
    for v in &candidates {
        if !budgets.contains(&v.budget.as_str()) {
            budgets.push(&v.budget);
        }
    }
    let within: Vec<f64> = budgets
        .iter()
        .map(|b| all.iter().copied().filter(|v| v.budget == *b).collect::<Vec<_>>())
        .filter(|g| g.len() >= 3)
        .map(|g| kendall(&col(&g, |v| v.supernet_cosine), &col(&g, |v| v.trained_cosine)))
        .collect();
    let tau_within_budgets =
        (!within.is_empty()).then(|| within.iter().sum::<f64>() / within.len() as f64);
    Verification { steps, candidates, tau, tau_proxy_loss, tau_within_budgets }
}

/// Trains the picked candidates (or reads the ones a killed run finished) and summarizes.
#[allow(clippy::too_many_arguments)]
pub fn verify(
    teacher: &ModelData,
    net: &Supernet,
    members: &[Member],
    plan: &Verify,
    corpus: &Path,
    eval_texts: &[String],
    out: &Path,
    run: &RunFiles,
    progress: &mut dyn FnMut(&str, &Progress),
) -> Result<Verification> {
    let dir = out.join("verify");
    std::fs::create_dir_all(&dir).map_err(|source| CompressError::Io {
        what: "creating the verification directory",
        path: dir.clone(),
        source,
    })?;
    let teacher_model = Model::from_data(teacher.clone(), &LoadOptions::default())?;
    let files = RunFiles { checkpoint: None, log: None, eval_texts: None, ..run.clone() };
    let picked = pick(members, plan.count);
    let mut done = Vec::new();
    for (i, (arch, budget, proxy_loss, supernet_cosine)) in picked.iter().enumerate() {
        let path = dir.join(format!("{i:02}.json"));
        let kept = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| serde_json::from_str::<Verified>(&t).ok())
            .filter(|v| v.arch == *arch && v.steps == plan.train.steps);
        if let Some(v) = kept {
            done.push(v);
            continue;
        }
        let student = net.student(&arch.parse()?, teacher)?;
        let name = format!("verify {}/{}", i + 1, picked.len());
        let trained = distill_student(teacher, &student, corpus, &plan.train, &files, &mut |p| {
            progress(&name, p)
        })?;
        // The student is kept: the user may want it, and it is what the score was taken of.
        bertling_runtime::write_package_file(&trained, &dir.join(format!("{i:02}.bertling")))?;
        let model = Model::from_data(trained, &LoadOptions::default())?;
        let trained_cosine = crate::eval::agreement(&teacher_model, &model, eval_texts)?.mean;
        let v = Verified {
            arch: arch.clone(),
            budget: budget.clone(),
            proxy_loss: *proxy_loss,
            supernet_cosine: *supernet_cosine,
            trained_cosine,
            steps: plan.train.steps,
        };
        let text = serde_json::to_string_pretty(&v).unwrap_or_default();
        std::fs::write(&path, text).map_err(|source| CompressError::Io {
            what: "writing a verified candidate",
            path: path.clone(),
            source,
        })?;
        done.push(v);
    }
    Ok(summarize(plan.train.steps, done))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(budget: &str, ranked: &[(&str, f64)]) -> Member {
        Member {
            budget: budget.into(),
            chosen: None,
            supernet_cosine: None,
            ranked: ranked.iter().map(|(a, c)| (a.to_string(), 1.0 - c, *c)).collect(),
            packages: Vec::new(),
            note: None,
        }
    }

    /// Round-robin over budgets, an architecture two budgets share taken once.
    #[test]
    fn candidates_are_taken_from_every_budget_in_turn() {
        let m = [member("a", &[("x", 0.9), ("y", 0.8)]), member("b", &[("x", 0.9), ("z", 0.7)])];
        let names: Vec<String> = pick(&m, 5).into_iter().map(|p| p.0).collect();
        assert_eq!(names, ["x", "y", "z"]);
        assert_eq!(pick(&m, 2).len(), 2);
    }

    /// τ within budgets ignores the order between budgets: a supernet that orders each budget's
    /// candidates rightly but the budgets wrongly has τ 1 within and less over all.
    #[test]
    fn tau_within_budgets_sees_only_the_order_inside_each_budget() {
        let v = |budget: &str, sc: f64, tc: f64| Verified {
            arch: format!("{budget}{sc}"),
            budget: budget.into(),
            proxy_loss: -sc,
            supernet_cosine: sc,
            trained_cosine: tc,
            steps: 10,
        };
        let c = vec![
            v("small", 0.93, 0.70),
            v("small", 0.92, 0.69),
            v("small", 0.91, 0.68),
            v("large", 0.83, 0.80),
            v("large", 0.82, 0.79),
            v("large", 0.81, 0.78),
        ];
        let r = summarize(10, c);
        assert_eq!(r.tau_within_budgets, Some(1.0));
        // 6 concordant pairs inside budgets, 9 discordant across: (6 - 9) / 15.
        assert!((r.tau - (-3.0 / 15.0)).abs() < 1e-12, "{}", r.tau);
        assert!((r.tau_proxy_loss - r.tau).abs() < 1e-12);
    }
}
