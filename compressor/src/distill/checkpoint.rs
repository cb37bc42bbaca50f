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
}

pub(crate) fn optimizer(cfg: &DistillConfig) -> ModuleOptimizer {
    AdamWConfig::new()
        .with_beta_1(0.9)
        .with_beta_2(0.999)
        .with_epsilon(1e-8)
        .with_weight_decay(cfg.weight_decay)
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
    let io = |e: std::io::Error| {
        CompressError::InvalidArgument(format!("writing a checkpoint in {}: {e}", dir.display()))
    };
    let files = dir.join(&state.files);
    std::fs::create_dir_all(&files).map_err(io)?;
    let err = |e: burn::store::RecordError| {
        CompressError::InvalidArgument(format!("writing a checkpoint in {}: {e:?}", dir.display()))
    };
    trainee.clone().save_file(files.join("trainee")).map_err(err)?;
    optim.save(files.join("optimizer")).map_err(err)?;
    let tmp = dir.join("state.json.partial");
    std::fs::write(&tmp, serde_json::to_string_pretty(state).unwrap_or_default()).map_err(io)?;
    std::fs::rename(&tmp, dir.join("state.json")).map_err(io)?;
    for entry in std::fs::read_dir(dir).map_err(io)?.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if name.starts_with("step-") && name != state.files {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    Ok(())
}

/// The state of the checkpoint in `dir`, if it holds one; a checkpoint of other settings is
/// refused, with the settings that differ.
pub(crate) fn read_state(dir: &Path, cfg: &DistillConfig) -> Result<Option<CheckpointState>> {
    let path = dir.join("state.json");
    if !path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path)
        .map_err(|e| CompressError::InvalidArgument(format!("reading {}: {e}", path.display())))?;
    let state: CheckpointState = serde_json::from_str(&text)
        .map_err(|e| CompressError::InvalidArgument(format!("checkpoint state: {e}")))?;
    if state.config != *cfg {
        return Err(CompressError::InvalidArgument(format!(
            "the checkpoint in {} was made with other settings ({}); use the same ones, or \
             another checkpoint directory",
            dir.display(),
            settings_differ(&state.config, cfg)
        )));
    }
    Ok(Some(state))
}

/// The trainee and optimizer as the checkpoint `state` in `dir` saved them.
pub(crate) fn load(
    dir: &Path,
    state: &CheckpointState,
    trainee: Trainee,
    optim: ModuleOptimizer,
) -> Result<(Trainee, ModuleOptimizer)> {
    let err = |e: burn::store::RecordError| {
        CompressError::InvalidArgument(format!("reading the checkpoint: {e:?}"))
    };
    let files = dir.join(&state.files);
    let trainee = trainee.try_load_file(files.join("trainee")).map_err(err)?;
    let optim = optim.load(files.join("optimizer")).map_err(err)?;
    Ok((trainee, optim))
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
