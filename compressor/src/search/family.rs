//! A family of students, one per budget (`bertling search`): the supernet trained block-wise
//! against the teacher, its pools pruned, the best candidates under each budget found from the
//! stages' held-out losses and re-ranked by the held-out cosine of the whole candidate; then each
//! chosen student inherits the supernet's weights and goes through distillation and KDLSQ like
//! any other (`pipeline::compress`), and its package records the architecture, the predicted and
//! measured latency and the metrics.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use bertling_runtime::profile::{bench_model, LatencyTable};
use bertling_runtime::{Backend, LoadOptions, Model, ModelData, TextTokenizer};
use burn::prelude::*;
use serde::Serialize;

use super::latency::{LatencyModel, RunSettings};
use super::plot::scatter_svg;
use super::select::{search, Budget, Costs, Found};
use super::space::SearchSpace;
use super::supernet::Supernet;
use super::verify::{verify, Verification, Verify};
use super::train::{
    boundaries, supernet_request, train_supernet, HeldOut, SupernetConfig, SupernetProgress,
    TrainedSupernet,
};
use crate::convert::{encoder_from_data, QuantPlan};
use crate::corpus::Corpus;
use crate::distill::{DistillConfig, Progress, Stop};
use crate::error::{CompressError, Result};
use crate::etd::{init_named, Init};
use crate::targets::TeacherSource;
use crate::pipeline::{
    check_resume, compress, open_log, CompressPlan, CompressedModel, RunFiles, StudentPlan,
};

/// What `bertling search` does.
#[derive(Clone, Debug)]
pub struct FamilyPlan {
    pub space: SearchSpace,
    pub supernet: SupernetConfig,
    /// Sentences held out (the corpus's first lines, which training then skips).
    pub held_out: usize,
    /// Candidates per budget re-ranked by held-out cosine.
    pub top: usize,
    pub budgets: Vec<Budget>,
    /// How the students will run (latency lookups and bytes).
    pub run: RunSettings,
    /// Distillation and KDLSQ of each chosen student; `None`: stop after choosing.
    pub train: Option<(DistillConfig, Vec<(QuantPlan, DistillConfig)>)>,
    /// Packages to compare with in the report and plot (e.g. uniform ETD students).
    pub baselines: Vec<PathBuf>,
    /// Train only this stage of the supernet (one process per stage and device), then stop; a
    /// run without it merges the stages' checkpoints, if all are complete, and searches.
    pub train_stage: Option<usize>,
    /// Candidates trained as students to measure how well the supernet ranks them.
    pub verify: Option<Verify>,
}

/// One budget's student.
#[derive(Clone, Debug, Serialize)]
pub struct Member {
    pub budget: String,
    /// The chosen candidate; absent when nothing in the space fits the budget.
    pub chosen: Option<Found>,
    /// Held-out cosine of the chosen candidate in the supernet (before any training of its
    /// own).
    pub supernet_cosine: Option<f64>,
    /// The candidates re-ranked: (architecture, proxy loss, held-out cosine).
    pub ranked: Vec<(String, f64, f64)>,
    pub packages: Vec<Measured>,
    /// Why the choice may surprise: a larger budget whose student is no larger than a smaller
    /// budget's (its larger candidates scored lower on held-out cosine in the supernet).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A package and its measured latency.
#[derive(Clone, Debug, Serialize)]
pub struct Measured {
    #[serde(flatten)]
    pub model: CompressedModel,
    /// `bertling bench` on this machine's CPU at the table's threads, when the table is a CPU
    /// table.
    pub measured_ms: Option<f64>,
}

/// The report of a search.
#[derive(Clone, Debug, Serialize)]
pub struct FamilyReport {
    pub teacher: String,
    pub space: SearchSpace,
    pub space_size: f64,
    pub supernet_steps: usize,
    pub supernet_seconds: f64,
    pub search_seconds: f64,
    /// Candidates left per stage after pruning.
    pub pools: Vec<usize>,
    /// Held-out loss of the embedding at each width.
    pub embeddings: Vec<(usize, f64)>,
    /// The latency table's device, when one was given.
    pub latency_table: Option<String>,
    pub run: RunSettings,
    pub members: Vec<Member>,
    pub baselines: Vec<Measured>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verification: Option<Verification>,
}

/// Notes each member whose budget is larger than another's but whose chosen student is not
/// (the re-ranking by held-out cosine preferred it over every larger candidate).
fn explain_choices(members: &mut [Member], budgets: &[Budget]) {
    let size = |b: &Budget| (b.bytes.unwrap_or(f64::INFINITY), b.ms.unwrap_or(f64::INFINITY));
    let chosen: Vec<Option<(f64, String)>> = members
        .iter()
        .map(|m| m.chosen.as_ref().map(|f| (f.bytes, f.arch.to_string())))
        .collect();
    let names: Vec<String> = members.iter().map(|m| m.budget.clone()).collect();
    for (i, m) in members.iter_mut().enumerate() {
        let Some((bytes, arch)) = &chosen[i] else { continue };
        let smaller = (0..budgets.len()).filter(|&j| {
            let (a, b) = (size(&budgets[j]), size(&budgets[i]));
            j != i && a.0 <= b.0 && a.1 <= b.1 && a != b
        });
        let Some(j) = smaller.filter(|&j| chosen[j].as_ref().is_some_and(|c| c.0 >= *bytes)).last()
        else {
            continue;
        };
        let larger = m.ranked.iter().filter(|r| r.0 != *arch).count();
        m.note = Some(format!(
            "{arch} ({bytes:.0} bytes) is no larger than the {} budget's student: its held-out \
             cosine in the supernet ({:.4}) beat the {larger} other candidates of this budget \
             (see ranked); more supernet steps make the larger ones competitive",
            names[j],
            m.supernet_cosine.unwrap_or(f64::NAN),
        ));
    }
}

/// Trains the supernet, searches each budget and compresses each chosen student into
/// `out/<budget>/` (see the module docs); writes `out/report.json`, `report.md` and
/// `family.svg`. With `plan.train_stage`, only trains that stage and returns `None`.
#[allow(clippy::too_many_arguments)]
pub fn search_family(
    teacher: &ModelData,
    teacher_name: &str,
    corpus: &Path,
    out: &Path,
    plan: &FamilyPlan,
    table: Option<&LatencyTable>,
    eval_texts: &[String],
    stsb: Option<&Path>,
    run: &RunFiles,
    supernet_progress: &mut dyn FnMut(&SupernetProgress),
    progress: &mut dyn FnMut(&str, &Progress),
) -> Result<Option<FamilyReport>> {
    let io = |what: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| CompressError::Io { what, path, source }
    };
    if plan.budgets.is_empty() {
        return Err(CompressError::InvalidArgument("give at least one budget".into()));
    }
    let predictor = table.map(|t| LatencyModel::new(t, plan.run)).transpose()?;
    std::fs::create_dir_all(out.join("checkpoints")).map_err(io("creating", out))?;
    let max_len = plan.supernet.max_len.min(teacher.spec.max_seq_len);
    // Importance orders the teacher's units so that every corner of the supernet holds the
    // most important ones.
    let Init::EtdImpt(importance) = init_named("etd-impt", teacher, corpus, max_len)? else {
        return Err(CompressError::InvalidArgument("importance could not be measured".into()));
    };
    let plain = run.device.device()?;
    let device = plain.clone().autodiff();
    let fresh = || {
        Supernet::from_teacher(teacher, &plan.space, Some(&importance), plan.supernet.seed, &device)
    };
    let net = fresh()?;
    let teacher_enc = encoder_from_data(teacher, &plain)?;
    let held_texts = crate::eval::read_texts(corpus, plan.held_out.max(1))?;
    let tok = TextTokenizer::new(&teacher.tokenizer_json, max_len)?;
    let held_inputs = tok.encode(&held_texts.iter().map(String::as_str).collect::<Vec<_>>())?;
    let bounds = boundaries(&plan.space);
    let held = HeldOut::new(&teacher_enc, &held_inputs, plan.supernet.batch_size, &bounds, &plain)?;
    let mut c = Corpus::open(corpus, &teacher.tokenizer_json, max_len)?;
    // Training starts after the held-out lines (a resumed run seeks from its checkpoint).
    c.seek(held_texts.len() as u64)?;
    let started = Instant::now();
    let stage_dir = |k: usize| out.join("checkpoints").join(format!("supernet-stage{k}"));
    let per_stage = |k: usize| SupernetConfig { only_stage: Some(k), ..plan.supernet.clone() };
    let complete = |k: usize| -> bool {
        std::fs::read_to_string(stage_dir(k).join("state.json"))
            .ok()
            .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
            .is_some_and(|v| v["step"].as_u64() == Some(plan.supernet.steps as u64))
    };
    let mut targets = {
        let source = TeacherSource::new(teacher, supernet_request(&plan.space), 0)?;
        match run.target_cache {
            None => source,
            Some(root) => {
                let store = crate::targets::full_request(&teacher_enc);
                let (source, notes) = source.cached(teacher, root, corpus, max_len, &store)?;
                notes.iter().for_each(|n| eprintln!("{n}"));
                source
            }
        }
    };
    let mut train = |cfg: &SupernetConfig,
                     dir: &Path,
                     log: &Path,
                     files: &RunFiles,
                     c: &mut Corpus,
                     net: Supernet|
     -> Result<TrainedSupernet> {
        let files = RunFiles { checkpoint: Some(dir), log: Some(log), ..files.clone() };
        check_resume(&files)?;
        let mut log = open_log(&files)?;
        let trained = train_supernet(
            net,
            &mut targets,
            &plan.space,
            c,
            &held,
            cfg,
            Some(dir),
            &device,
            log.as_mut().map(|f| f as &mut dyn Write),
            |p| {
                supernet_progress(p);
                match run.stop_after {
                    Some(n) if p.step >= n && p.step < p.steps => {
                        std::ops::ControlFlow::Break(Stop::Save)
                    }
                    _ => std::ops::ControlFlow::Continue(()),
                }
            },
        )?;
        if trained.step < cfg.steps {
            return Err(CompressError::Stopped { step: trained.step, steps: cfg.steps });
        }
        Ok(trained)
    };
    let stages = plan.space.slots.len();
    let trained = if let Some(k) = plan.train_stage {
        let log = out.join(format!("supernet-stage{k}.jsonl"));
        train(&per_stage(k), &stage_dir(k), &log, run, &mut c, net)?;
        return Ok(None);
    } else if (0..stages).all(complete) {
        // The stages were trained apart: each stage's modules (stage 0's with the embedding)
        // and pools from its own checkpoint, read by resuming the finished run.
        let mut merged: Option<TrainedSupernet> = None;
        for k in 0..stages {
            let log = out.join(format!("supernet-stage{k}.jsonl"));
            let resume = RunFiles { resume: true, ..run.clone() };
            let t = train(&per_stage(k), &stage_dir(k), &log, &resume, &mut c, fresh()?)?;
            match &mut merged {
                None => merged = Some(t),
                Some(m) => {
                    m.net.stages[k] = t.net.stages[k].clone();
                    m.pools[k] = t.pools[k].clone();
                }
            }
        }
        merged.ok_or_else(|| CompressError::InvalidArgument("the space has no stages".into()))?
    } else {
        let dir = out.join("checkpoints").join("supernet");
        train(&plan.supernet, &dir, &out.join("supernet.jsonl"), run, &mut c, net)?
    };
    let supernet_seconds = started.elapsed().as_secs_f64();
    // The search: every surviving candidate of every stage and every embedding width scored on
    // the held-out sentences, then the exact search per budget, the best few re-ranked.
    let started = Instant::now();
    let net = trained.net.valid();
    let stages: Vec<Vec<(super::Stage, f64)>> = trained
        .pools
        .iter()
        .enumerate()
        .map(|(k, pool)| {
            pool.iter().map(|s| (s.clone(), f64::from(held.stage_loss(&net, k, s)))).collect()
        })
        .collect();
    let embeddings: Vec<(usize, f64)> = plan
        .space
        .embedding_widths
        .iter()
        .map(|&e| (e, f64::from(held.embedding_loss(&net, e))))
        .collect();
    let rows = teacher.spec.embeddings.vocab_size
        + teacher.spec.embeddings.max_positions
        + teacher.spec.embeddings.type_vocab_size;
    let costs = Costs {
        latency: predictor.as_ref(),
        bits: plan.run.bits,
        group: plan.run.group,
        table_rows: rows,
        out_width: teacher.spec.embeddings.width,
        // The teacher's package less its tensors: the tokenizer and (about) the header.
        fixed: (bertling_runtime::write_package(teacher)?.len() - teacher.stored_bytes()) as f64,
    };
    let found = search(&embeddings, &stages, &costs, &plan.budgets, plan.top.max(1))?;
    let mut members = Vec::new();
    for (budget, cands) in plan.budgets.iter().zip(found) {
        let mut ranked: Vec<(Found, f64)> =
            cands.into_iter().map(|f| (f.clone(), f64::from(held.cosine(&net, &f.arch)))).collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        members.push(Member {
            budget: budget.to_string(),
            chosen: ranked.first().map(|r| r.0.clone()),
            supernet_cosine: ranked.first().map(|r| r.1),
            ranked: ranked.iter().map(|(f, c)| (f.arch.to_string(), f.loss, *c)).collect(),
            packages: Vec::new(),
            note: None,
        });
    }
    explain_choices(&mut members, &plan.budgets);
    let search_seconds = started.elapsed().as_secs_f64();
    let verification = match &plan.verify {
        Some(v) if v.count > 0 => {
            Some(verify(teacher, &net, &members, v, corpus, eval_texts, out, run, progress)?)
        }
        _ => None,
    };
    // Each chosen student: inherited weights, then distillation and KDLSQ.
    let measure = |path: &Path| -> Result<Option<f64>> {
        match table {
            Some(t) if t.backend == "cpu" => {
                let model = Model::load(path, &LoadOptions::new(Backend::Cpu, t.threads.max(1)))?;
                Ok(Some(bench_model(&model, plan.run.batch, plan.run.seq, 20, 3)?.0))
            }
            _ => Ok(None),
        }
    };
    for member in members.iter_mut() {
        let Some(found) = &member.chosen else { continue };
        let mut student = net.student(&found.arch, teacher)?;
        student.spec.provenance.recipe = serde_json::json!({
            "method": "nas-bert search", "arch": found.arch.to_string(), "budget": member.budget,
            "proxy_loss": found.loss, "predicted_ms": found.ms, "estimated_bytes": found.bytes,
        });
        let dir = out.join(budget_dir(&member.budget));
        let Some((train, kdlsq)) = &plan.train else {
            std::fs::create_dir_all(&dir).map_err(io("creating", &dir))?;
            let path = dir.join("student-inherited.bertling");
            let bytes = bertling_runtime::write_package_file(&student, &path)?;
            let parameters = student.parameters();
            let model = CompressedModel {
                name: "student-inherited".into(),
                path: path.clone(),
                bytes,
                parameters,
                bits: 32,
                cosine_mean: member.supernet_cosine,
                cosine_p5: None,
                stsb: None,
                agreement_by_category: Vec::new(),
            };
            // Timed only where the float package is what the latency settings describe.
            let measured_ms = if plan.run.bits == 32 { measure(&path)? } else { None };
            member.packages.push(Measured { measured_ms, model });
            continue;
        };
        let cplan = CompressPlan {
            student: Some(StudentPlan::Given(Box::new(student))),
            train: train.clone(),
            kdlsq: kdlsq.clone(),
        };
        let name = format!("{teacher_name} / {}", member.budget);
        let report = compress(
            teacher,
            &name,
            corpus,
            &dir,
            &cplan,
            eval_texts,
            stsb,
            run,
            &mut |stage, p| progress(&format!("{} {stage}", member.budget), p),
        )?;
        for m in report.models {
            let measured_ms = measure(&m.path)?;
            // The search's view of the package goes into its provenance.
            let mut data = bertling_runtime::load_model_data(&m.path)?;
            if let serde_json::Value::Object(metrics) = &mut data.spec.provenance.metrics {
                metrics.insert(
                    "search".into(),
                    serde_json::json!({"arch": found.arch.to_string(), "budget": member.budget,
                        "predicted_ms": predictor.as_ref().map(|_| found.ms), "measured_ms": measured_ms,
                        "latency_settings": super::latency::describe(&plan.run)}),
                );
            }
            bertling_runtime::write_package_file(&data, &m.path)?;
            member.packages.push(Measured { model: m, measured_ms });
        }
    }
    let mut baselines = Vec::new();
    if !plan.baselines.is_empty() {
        let opts = LoadOptions::default();
        let teacher_model = Model::from_data(teacher.clone(), &opts)?;
        for path in &plan.baselines {
            let m = Model::load(path, &opts)?;
            let same = m.info().output_width == teacher_model.info().output_width;
            let ag = if same {
                Some(crate::eval::agreement(&teacher_model, &m, eval_texts)?)
            } else {
                None
            };
            let model = CompressedModel {
                name: path.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default(),
                path: path.clone(),
                bytes: std::fs::metadata(path).map_err(io("reading", path))?.len() as usize,
                parameters: m.info().parameters,
                bits: m.info().matrix_bits.iter().copied().max().unwrap_or(32),
                cosine_mean: ag.map(|a| a.mean),
                cosine_p5: ag.map(|a| a.p5),
                stsb: stsb.map(|d| crate::eval::stsb(&m, d)).transpose()?,
                agreement_by_category: Vec::new(),
            };
            baselines.push(Measured { measured_ms: measure(path)?, model });
        }
    }
    let report = FamilyReport {
        teacher: teacher_name.to_string(),
        space: plan.space.clone(),
        space_size: plan.space.size() as f64,
        supernet_steps: plan.supernet.steps,
        supernet_seconds,
        search_seconds,
        pools: trained.pools.iter().map(Vec::len).collect(),
        embeddings,
        latency_table: table
            .map(|t| format!("{} on {} ({}, {})", t.backend, t.device, t.date, t.timing)),
        run: plan.run,
        members,
        baselines,
        verification,
    };
    let json = serde_json::to_string_pretty(&report).unwrap_or_default();
    let path = out.join("report.json");
    std::fs::write(&path, json).map_err(io("writing", &path))?;
    let path = out.join("report.md");
    std::fs::write(&path, report.markdown()).map_err(io("writing", &path))?;
    let path = out.join("family.svg");
    std::fs::write(&path, report.plot()).map_err(io("writing", &path))?;
    Ok(Some(report))
}

/// A package in the plot: (series, name, bytes, measured ms, quality).
type Point = (&'static str, String, f64, Option<f64>, Option<f64>);
/// A series of the plot: its name and points (x, y, label).
type Series = (&'static str, Vec<(f64, f64, String)>);

/// An architecture as a Markdown table cell: its stage separators escaped.
fn cell(arch: &str) -> String {
    arch.replace('|', "\\|")
}

/// A directory name for a budget (`7MB+12ms` → `7MB_12ms`).
fn budget_dir(budget: &str) -> String {
    budget.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' { c } else { '_' }).collect()
}

impl FamilyReport {
    /// The packages of the family and of the baselines: (series, name, bytes, ms, quality).
    fn points(&self) -> Vec<Point> {
        let quality = |m: &CompressedModel| m.stsb.or(m.cosine_mean);
        let mut v = Vec::new();
        for member in &self.members {
            for p in &member.packages {
                v.push((
                    "searched",
                    format!("{} {}", member.budget, p.model.name),
                    p.model.bytes as f64,
                    p.measured_ms,
                    quality(&p.model),
                ));
            }
        }
        for p in &self.baselines {
            v.push((
                "baseline",
                p.model.name.clone(),
                p.model.bytes as f64,
                p.measured_ms,
                quality(&p.model),
            ));
        }
        v
    }

    /// A Markdown summary.
    pub fn markdown(&self) -> String {
        let f =
            |v: Option<f64>, d: usize| v.map(|v| format!("{v:.d$}")).unwrap_or_else(|| "-".into());
        let mut s = format!(
            "teacher: {}; search space of {:.2e} candidates, {} supernet steps ({:.0} s), search {:.1} s; \
             latency table: {}; settings {}\n\n",
            self.teacher,
            self.space_size,
            self.supernet_steps,
            self.supernet_seconds,
            self.search_seconds,
            self.latency_table.as_deref().unwrap_or("none (bytes only)"),
            super::latency::describe(&self.run),
        );
        s += "| budget | architecture | proxy loss | est. MB | predicted ms | supernet cosine |\n|---|---|---|---|---|---|\n";
        for m in &self.members {
            match &m.chosen {
                Some(c) => {
                    s += &format!(
                        "| {} | `{}` | {:.4} | {:.2} | {} | {} |\n",
                        m.budget,
                        cell(&c.arch.to_string()),
                        c.loss,
                        c.bytes / 1e6,
                        if self.latency_table.is_some() {
                            format!("{:.2}", c.ms)
                        } else {
                            "-".into()
                        },
                        f(m.supernet_cosine, 4)
                    )
                }
                None => s += &format!("| {} | nothing in the space fits | | | | |\n", m.budget),
            }
        }
        for m in self.members.iter().filter(|m| m.note.is_some()) {
            s += &format!("\n{}: {}\n", m.budget, m.note.as_deref().unwrap_or_default());
        }
        s += "\n| package | MB | params (M) | measured ms | cosine mean | cosine p5 | STS-B |\n|---|---|---|---|---|---|---|\n";
        let rows = self.members.iter().flat_map(|m| {
            m.packages.iter().map(move |p| (format!("{} {}", m.budget, p.model.name), p))
        });
        let base = self.baselines.iter().map(|p| (format!("baseline {}", p.model.name), p));
        for (name, p) in rows.chain(base) {
            let m = &p.model;
            s += &format!(
                "| {name} | {:.2} | {:.2} | {} | {} | {} | {} |\n",
                m.bytes as f64 / 1e6,
                m.parameters as f64 / 1e6,
                f(p.measured_ms, 2),
                f(m.cosine_mean, 4),
                f(m.cosine_p5, 4),
                f(m.stsb, 4)
            );
        }
        if let Some(v) = &self.verification {
            s += &format!(
                "\nHow well the supernet ranks: {} candidates distilled {} steps each from their \
                 inherited weights; Kendall τ of the supernet cosine with the trained cosine {:.3} \
                 (of the proxy loss {:.3}), within budgets {}.\n\n",
                v.candidates.len(),
                v.steps,
                v.tau,
                v.tau_proxy_loss,
                f(v.tau_within_budgets, 3)
            );
            s += "| budget | architecture | proxy loss | supernet cosine | trained cosine |\n\
                  |---|---|---|---|---|\n";
            for c in &v.candidates {
                s += &format!(
                    "| {} | `{}` | {:.4} | {:.4} | {:.4} |\n",
                    c.budget,
                    cell(&c.arch),
                    c.proxy_loss,
                    c.supernet_cosine,
                    c.trained_cosine
                );
            }
        }
        s
    }

    /// An SVG of quality against size and against measured latency, family and baselines.
    pub fn plot(&self) -> String {
        let pts = self.points();
        let series = |by_ms: bool| -> Vec<Series> {
            ["searched", "baseline"]
                .iter()
                .map(|&name| {
                    let v = pts
                        .iter()
                        .filter(|p| p.0 == name)
                        .filter_map(|p| {
                            let x = if by_ms { p.3? } else { p.2 / 1e6 };
                            Some((x, p.4?, p.1.clone()))
                        })
                        .collect();
                    (name, v)
                })
                .collect()
        };
        let y = if pts.iter().any(|p| p.4.is_some()) {
            "STS-B Spearman (or embedding cosine)"
        } else {
            "quality"
        };
        scatter_svg(&[("package MB", series(false)), ("measured ms", series(true))], y)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(budget: &str, arch: &str, bytes: f64) -> Member {
        let found = Found { arch: arch.parse().unwrap(), loss: 1.0, bytes, ms: 1.0 };
        Member {
            budget: budget.into(),
            chosen: Some(found),
            supernet_cosine: Some(0.9),
            ranked: vec![(arch.into(), 1.0, 0.9), ("e32|32:id,id".into(), 0.9, 0.8)],
            packages: Vec::new(),
            note: None,
        }
    }

    /// A larger budget that got a student no larger than a smaller budget's says why; one that
    /// got a larger student, or a budget of another kind, says nothing.
    #[test]
    fn a_larger_budget_with_no_larger_student_is_explained() {
        let budgets: Vec<Budget> =
            ["20KB", "40KB", "60KB", "5ms"].iter().map(|b| Budget::parse(b).unwrap()).collect();
        let mut members = vec![
            member("20KB", "e16|16:id,id", 18e3),
            member("40KB", "e16|16:id,id", 18e3),
            member("60KB", "e32|32:id,id", 50e3),
            member("5ms", "e16|16:id,id", 18e3),
        ];
        explain_choices(&mut members, &budgets);
        assert!(members[0].note.is_none());
        let note = members[1].note.as_deref().unwrap();
        assert!(note.contains("20KB") && note.contains("held-out cosine"), "{note}");
        assert!(members[2].note.is_none());
        assert!(members[3].note.is_none(), "a latency budget is not compared with byte budgets");
    }
}
