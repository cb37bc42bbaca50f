//! Checkpoints: a killed run resumes from the last complete one and ends with the same weights
//! as an uninterrupted run.

use std::path::Path;

use burn::module::Module;
use burn::optim::{AdamWConfig, ModuleOptimizer};
use serde::{Deserialize, Serialize};

use super::config::DistillConfig;
use super::losses::Losses;
use super::trainee::Trainee;
use crate::error::{CompressError, Result};

/// The layout of the model state a checkpoint holds. Layout 2: blocks are an enum (one variant
/// per kind) instead of a struct of optional parts; checkpoints of layout 1 (no `layout` field)
/// cannot be read into the new modules.
pub const CHECKPOINT_LAYOUT: u32 = 2;

/// Where a run keeps its checkpoints: `state.json` names the complete checkpoint
/// subdirectory (`step-N/`, with the model and optimizer state) it belongs to.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CheckpointState {
    /// Optimizer steps done.
    pub step: usize,
    pub lines_read: u64,
    pub config: DistillConfig,
    /// The subdirectory holding this step's model and optimizer state.
    pub files: String,
    /// The losses of the last step (reported when a finished run is resumed).
    #[serde(default)]
    pub losses: Losses,
    /// [`CHECKPOINT_LAYOUT`] of the writer; absent = 1.
    #[serde(default = "layout_1")]
    pub layout: u32,
}

fn layout_1() -> u32 {
    1
}

pub(crate) fn optimizer(cfg: &DistillConfig) -> ModuleOptimizer {
    optimizer_with(cfg.weight_decay)
}

/// AdamW as every trainer here uses it (β 0.9/0.999, ε 1e-8; burn's defaults differ).
pub(crate) fn optimizer_with(weight_decay: f32) -> ModuleOptimizer {
    AdamWConfig::new()
        .with_beta_1(0.9)
        .with_beta_2(0.999)
        .with_epsilon(1e-8)
        .with_weight_decay(weight_decay)
        .init()
}

/// Writes a checkpoint so that a kill at any moment leaves a complete one: the model and
/// optimizer go into a fresh `step-N/` directory, then `state.json` is switched to it
/// atomically (write + rename), then older step directories are removed.
pub(crate) fn save_checkpoint(
    dir: &Path,
    trainee: &Trainee,
    optim: &ModuleOptimizer,
    state: &CheckpointState,
) -> Result<()> {
    save_files(dir, &state.files, "trainee", trainee, optim, state)
}

/// [`save_checkpoint`] of any module and state: `module` and `optim` into `dir/files/`, then
/// `state` as `dir/state.json` (atomically), then the other `step-*` directories removed.
pub(crate) fn save_files<M: Module + Clone>(
    dir: &Path,
    files: &str,
    module_name: &str,
    module: &M,
    optim: &ModuleOptimizer,
    state: &impl Serialize,
) -> Result<()> {
    let fail = |what: String| CompressError::Checkpoint { dir: dir.to_path_buf(), what };
    let io = |e: std::io::Error| fail(format!("writing it failed: {e}"));
    let sub = dir.join(files);
    std::fs::create_dir_all(&sub).map_err(io)?;
    let err = |e: burn::store::RecordError| fail(format!("writing it failed: {e:?}"));
    module.clone().save_file(sub.join(module_name)).map_err(err)?;
    optim.save(sub.join("optimizer")).map_err(err)?;
    let tmp = dir.join("state.json.partial");
    std::fs::write(&tmp, serde_json::to_string_pretty(state).unwrap_or_default()).map_err(io)?;
    std::fs::rename(&tmp, dir.join("state.json")).map_err(io)?;
    for entry in std::fs::read_dir(dir).map_err(io)?.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if name.starts_with("step-") && name != files {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    Ok(())
}

/// The module and optimizer [`save_files`] wrote into `dir/files/`.
pub(crate) fn load_files<M: Module>(
    dir: &Path,
    files: &str,
    module_name: &str,
    module: M,
    optim: ModuleOptimizer,
) -> Result<(M, ModuleOptimizer)> {
    let err = |e: burn::store::RecordError| CompressError::Checkpoint {
        dir: dir.to_path_buf(),
        what: format!(
            "reading the model or optimizer state failed ({e:?}); remove the directory to start \
             over"
        ),
    };
    let sub = dir.join(files);
    let module = module.try_load_file(sub.join(module_name)).map_err(err)?;
    let optim = optim.load(sub.join("optimizer")).map_err(err)?;
    Ok((module, optim))
}

/// The state of the checkpoint in `dir`, if it holds one; a checkpoint of other settings is
/// refused, with the settings that differ.
pub(crate) fn read_state(dir: &Path, cfg: &DistillConfig) -> Result<Option<CheckpointState>> {
    let Some(state) = read_json_state::<CheckpointState>(dir)? else { return Ok(None) };
    let fail = |what: String| CompressError::Checkpoint { dir: dir.to_path_buf(), what };
    if state.layout != CHECKPOINT_LAYOUT {
        return Err(fail(format!(
            "it was written by another version of bertling (checkpoint layout {}, this build reads \
             {CHECKPOINT_LAYOUT}); start the run again with another checkpoint directory",
            state.layout
        )));
    }
    if state.config != *cfg {
        return Err(fail(format!(
            "it was made with other settings ({}); use the same ones, or another checkpoint \
             directory",
            settings_differ(&state.config, cfg)
        )));
    }
    Ok(Some(state))
}

/// `dir/state.json` as the state type `S` of some trainer, if the directory holds one.
pub(crate) fn read_json_state<S: serde::de::DeserializeOwned>(dir: &Path) -> Result<Option<S>> {
    let path = dir.join("state.json");
    if !path.is_file() {
        return Ok(None);
    }
    let fail = |what: String| CompressError::Checkpoint { dir: dir.to_path_buf(), what };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| fail(format!("reading state.json failed: {e}")))?;
    serde_json::from_str(&text).map(Some).map_err(|e| {
        fail(format!(
            "state.json is not this kind of checkpoint ({e}); use another directory, or remove \
             it to start over"
        ))
    })
}

/// The trainee and optimizer as the checkpoint `state` in `dir` saved them.
pub(crate) fn load(
    dir: &Path,
    state: &CheckpointState,
    trainee: Trainee,
    optim: ModuleOptimizer,
) -> Result<(Trainee, ModuleOptimizer)> {
    load_files(dir, &state.files, "trainee", trainee, optim)
}

/// The settings that differ, as `name: checkpoint's value, not this run's` (e.g. a checkpoint
/// from before span augmentation: `augment: {"spans":0.0}, not {"spans":0.25}`, so
/// `--spans 0` resumes it).
fn settings_differ(saved: &DistillConfig, now: &DistillConfig) -> String {
    let (a, b) = (
        serde_json::to_value(saved).unwrap_or_default(),
        serde_json::to_value(now).unwrap_or_default(),
    );
    let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else { return String::new() };
    a.iter()
        .filter(|(k, v)| b.get(*k) != Some(v))
        .map(|(k, v)| format!("{k}: {v}, not {}", b.get(k).unwrap_or(&serde_json::Value::Null)))
        .collect::<Vec<_>>()
        .join("; ")
}
