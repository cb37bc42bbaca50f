//! The layer-mapping search (Jiao et al. 2020, `../shared/papers/NOTES.md`): which teacher
//! layer each student layer learns from, searched by a genetic algorithm whose fitness is a
//! proxy run (distillation on a sample of the corpus for a few hundred steps, scored by held-out
//! agreement with the teacher and, when given, STS-B dev). Maps are monotone (a later student
//! layer never learns from an earlier teacher layer); where there are no more of them than the
//! algorithm would evaluate, every map is evaluated instead.

use std::collections::BTreeMap;
use std::path::Path;

use bertling_runtime::rng::XorShift;
use bertling_runtime::{LoadOptions, Model, ModelData};
use serde::{Deserialize, Serialize};

use crate::distill::{layer_outputs, DistillConfig, LayerMap, Progress};
use crate::error::{CompressError, Result};
use crate::pipeline::{distill_student, RunFiles};

/// How the search runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MapSearchConfig {
    /// Maps per generation.
    pub population: usize,
    pub generations: usize,
    /// Probability that each student layer of a child moves to a neighbouring teacher layer.
    pub mutation: f64,
    pub seed: u64,
    /// The proxy distillation (its `map` is replaced by each candidate's).
    pub proxy: DistillConfig,
}

/// One evaluated map.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scored {
    pub map: Vec<usize>,
    /// Held-out cosine mean (and STS-B Spearman, averaged in when given): higher is better.
    pub fitness: f64,
    pub cosine: f64,
    pub stsb: Option<f64>,
}

/// What the search found.
#[derive(Clone, Debug, Serialize)]
pub struct MapSearchReport {
    pub student_layers: usize,
    pub teacher_layers: usize,
    /// Monotone maps in the space.
    pub space: u128,
    pub exhaustive: bool,
    /// Every evaluated map, best first.
    pub evaluated: Vec<Scored>,
    /// The uniform map's proxy score, for comparison.
    pub uniform: Scored,
}

/// Monotone maps of `s` student layers onto `t` teacher layers: C(t + s − 1, s).
pub fn count_maps(s: usize, t: usize) -> u128 {
    let (n, k) = ((t + s - 1) as u128, s as u128);
    (0..k).fold(1u128, |acc, i| acc.saturating_mul(n - i) / (i + 1))
}

/// Every monotone map, in lexicographic order.
pub fn all_maps(s: usize, t: usize) -> Vec<Vec<usize>> {
    fn rec(prefix: &mut Vec<usize>, s: usize, t: usize, out: &mut Vec<Vec<usize>>) {
        if prefix.len() == s {
            out.push(prefix.clone());
            return;
        }
        let from = prefix.last().copied().unwrap_or(0);
        for v in from..t {
            prefix.push(v);
            rec(prefix, s, t, out);
            prefix.pop();
        }
    }
    let mut out = Vec::new();
    rec(&mut Vec::new(), s, t, &mut out);
    out
}

fn random_map(s: usize, t: usize, rng: &mut XorShift) -> Vec<usize> {
    let mut m: Vec<usize> = (0..s).map(|_| rng.below(t as u64) as usize).collect();
    m.sort_unstable();
    m
}

/// One-point crossover of two monotone maps, then mutation; sorted to stay monotone.
fn child(a: &[usize], b: &[usize], t: usize, mutation: f64, rng: &mut XorShift) -> Vec<usize> {
    let cut = rng.below(a.len() as u64 + 1) as usize;
    let mut c: Vec<usize> = a[..cut].iter().chain(&b[cut..]).copied().collect();
    for v in c.iter_mut() {
        if f64::from(rng.unit()) < mutation {
            *v = if rng.below(2) == 0 { v.saturating_sub(1) } else { (*v + 1).min(t - 1) };
        }
    }
    c.sort_unstable();
    c
}

/// Searches the map of `student` (initialised, e.g. by ETD) onto `teacher`. `score` runs the
/// proxy of one map and returns (cosine, STS-B); the library's [`proxy_score`] is the real one,
/// tests pass a closed form. `known` are maps a killed run of the same settings scored already:
/// they are not run again, so the search continues where it stopped (the genetic search draws
/// the same populations, since its draws do not depend on how a score was obtained).
/// `progress` sees each newly scored map.
pub fn map_search(
    student_layers: usize,
    teacher_layers: usize,
    cfg: &MapSearchConfig,
    known: &[Scored],
    mut score: impl FnMut(&[usize]) -> Result<(f64, Option<f64>)>,
    mut progress: impl FnMut(usize, &Scored),
) -> Result<MapSearchReport> {
    if student_layers == 0 || teacher_layers == 0 || cfg.population < 2 || cfg.generations == 0 {
        return Err(CompressError::InvalidArgument(
            "map search needs layers on both sides, a population of at least 2 and a generation"
                .into(),
        ));
    }
    let (s, t) = (student_layers, teacher_layers);
    let valid = |m: &[usize]| m.len() == s && m.iter().all(|&v| v < t);
    let mut seen: BTreeMap<Vec<usize>, Scored> =
        known.iter().filter(|k| valid(&k.map)).map(|k| (k.map.clone(), k.clone())).collect();
    let mut eval = |map: &[usize], seen: &mut BTreeMap<Vec<usize>, Scored>| -> Result<Scored> {
        if let Some(done) = seen.get(map) {
            return Ok(done.clone());
        }
        let (cosine, stsb) = score(map)?;
        let fitness = stsb.map_or(cosine, |r| (cosine + r) / 2.0);
        let sc = Scored { map: map.to_vec(), fitness, cosine, stsb };
        seen.insert(map.to_vec(), sc.clone());
        progress(seen.len(), &sc);
        Ok(sc)
    };
    let uniform: Vec<usize> = (0..s).map(|j| ((j + 1) * t).div_ceil(s) - 1).collect();
    let uniform = eval(&uniform, &mut seen)?;
    let space = count_maps(s, t);
    let budget = (cfg.population * cfg.generations) as u128;
    let exhaustive = space <= budget;
    if exhaustive {
        for m in all_maps(s, t) {
            eval(&m, &mut seen)?;
        }
    } else {
        let mut rng = XorShift::new(cfg.seed);
        let mut population: Vec<Vec<usize>> = vec![uniform.map.clone()];
        while population.len() < cfg.population {
            population.push(random_map(s, t, &mut rng));
        }
        for _ in 0..cfg.generations {
            let mut scored =
                population.iter().map(|m| eval(m, &mut seen)).collect::<Result<Vec<_>>>()?;
            scored.sort_by(|a, b| b.fitness.total_cmp(&a.fitness).then(a.map.cmp(&b.map)));
            // The better half survives and breeds the rest.
            let parents: Vec<Vec<usize>> =
                scored.iter().take(cfg.population.div_ceil(2)).map(|s| s.map.clone()).collect();
            population = parents.clone();
            while population.len() < cfg.population {
                let a = &parents[rng.below(parents.len() as u64) as usize];
                let b = &parents[rng.below(parents.len() as u64) as usize];
                population.push(child(a, b, t, cfg.mutation, &mut rng));
            }
        }
        for m in &population {
            eval(m, &mut seen)?;
        }
    }
    let mut evaluated: Vec<Scored> = seen.into_values().collect();
    evaluated.sort_by(|a, b| b.fitness.total_cmp(&a.fitness).then(a.map.cmp(&b.map)));
    Ok(MapSearchReport {
        student_layers: s,
        teacher_layers: t,
        space,
        exhaustive,
        evaluated,
        uniform,
    })
}

/// The proxy of one map: `cfg.proxy` distillation of `student` from `teacher` with the map,
/// then the embedding agreement on `eval_texts` and STS-B dev (`stsb`, when given).
#[allow(clippy::too_many_arguments)]
pub fn proxy_score(
    teacher: &ModelData,
    student: &ModelData,
    corpus: &Path,
    proxy: &DistillConfig,
    map: &[usize],
    eval_texts: &[String],
    stsb: Option<&Path>,
    run: &RunFiles,
    progress: &mut dyn FnMut(&Progress),
) -> Result<(f64, Option<f64>)> {
    let cfg = DistillConfig { map: LayerMap::Explicit(map.to_vec()), ..proxy.clone() };
    let files = RunFiles { checkpoint: None, log: None, eval_texts: None, ..run.clone() };
    let trained = distill_student(teacher, student, corpus, &cfg, &files, progress)?;
    let opts = LoadOptions::default();
    let t = Model::from_data(teacher.clone(), &opts)?;
    let s = Model::from_data(trained, &opts)?;
    let cosine = crate::eval::agreement(&t, &s, eval_texts)?.mean;
    let stsb = stsb.map(|d| crate::eval::stsb(&s, d)).transpose()?;
    Ok((cosine, stsb))
}

/// Layers (as the distillation counts them) of a model.
pub fn layers_of(model: &ModelData) -> Result<usize> {
    let enc = crate::convert::encoder_from_data(model, &burn::prelude::Device::flex())?;
    Ok(layer_outputs(&enc).len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monotone_maps_are_counted_and_listed() {
        assert_eq!(count_maps(3, 6), 56);
        let all = all_maps(3, 6);
        assert_eq!(all.len(), 56);
        assert!(all.iter().all(|m| m.windows(2).all(|w| w[0] <= w[1])));
        assert_eq!(all[0], [0, 0, 0]);
        assert_eq!(all[55], [5, 5, 5]);
        assert_eq!(count_maps(6, 12), 12376);
    }

    fn cfg(population: usize, generations: usize) -> MapSearchConfig {
        MapSearchConfig {
            population,
            generations,
            mutation: 0.3,
            seed: 3,
            proxy: crate::recipe::distill(),
        }
    }

    /// Small spaces are enumerated; in a large one the genetic search climbs to the optimum of
    /// a closed-form fitness (the closer to a hidden target map, the better) and beats uniform.
    #[test]
    fn search_finds_the_best_map() {
        let target = [1usize, 4, 5];
        let fitness = |m: &[usize]| {
            let d: usize = m.iter().zip(&target).map(|(a, b)| a.abs_diff(*b)).sum();
            Ok((1.0 / (1.0 + d as f64), None))
        };
        let r = map_search(3, 6, &cfg(8, 10), &[], fitness, |_, _| {}).unwrap();
        assert!(r.exhaustive);
        assert_eq!(r.evaluated.len(), 56);
        assert_eq!(r.evaluated[0].map, target);
        let target = [2usize, 5, 7, 9, 11];
        let fitness = |m: &[usize]| {
            let d: usize = m.iter().zip(&target).map(|(a, b)| a.abs_diff(*b)).sum();
            Ok((1.0 / (1.0 + d as f64), None))
        };
        let r = map_search(5, 12, &cfg(12, 25), &[], fitness, |_, _| {}).unwrap();
        assert!(!r.exhaustive && r.evaluated.len() < 12 * 26);
        assert!(r.evaluated[0].fitness > r.uniform.fitness);
        assert_eq!(r.evaluated[0].map, target, "{:?}", &r.evaluated[..3]);
    }

    /// A search given the maps a killed run scored runs only the others, and ends with the
    /// report of an uninterrupted run.
    #[test]
    fn a_resumed_search_scores_only_the_maps_not_yet_scored() {
        let target = [2usize, 5, 7, 9, 11];
        let fitness = |m: &[usize]| {
            let d: usize = m.iter().zip(&target).map(|(a, b)| a.abs_diff(*b)).sum();
            Ok((1.0 / (1.0 + d as f64), None))
        };
        let whole = map_search(5, 12, &cfg(12, 6), &[], fitness, |_, _| {}).unwrap();
        let mut scored = Vec::new();
        let mut killed = |m: &[usize]| {
            if scored.len() == 20 {
                return Err(CompressError::InvalidArgument("killed".into()));
            }
            let sc = fitness(m)?;
            scored.push(Scored { map: m.to_vec(), fitness: sc.0, cosine: sc.0, stsb: None });
            Ok(sc)
        };
        assert!(map_search(5, 12, &cfg(12, 6), &[], &mut killed, |_, _| {}).is_err());
        let mut rerun = 0;
        let counting = |m: &[usize]| {
            rerun += 1;
            fitness(m)
        };
        let resumed = map_search(5, 12, &cfg(12, 6), &scored, counting, |_, _| {}).unwrap();
        assert_eq!(rerun, whole.evaluated.len() - 20);
        assert_eq!(resumed.evaluated, whole.evaluated);
        assert_eq!(resumed.uniform, whole.uniform);
    }
}
