//! The model registry: `models/<version>/model.json`, `models/CURRENT`, `models/HISTORY`.
//!
//! Crash safety: every file is written to a temporary file in the same directory, flushed to
//! disk, then renamed over its final name (rename is atomic on POSIX file systems), and the
//! directory is flushed. A new version is written into a temporary directory that is renamed to
//! its version name only when complete. So a crash at any moment leaves `CURRENT` naming a
//! complete version and every existing version as it was; at worst a `.tmp-*` directory is left
//! behind, which readers ignore.

use crate::fsutil::{sync_dir, write_atomic};
use crate::model::{Model, ModelArtifact, ModelError};
use std::io::Write;
use std::path::{Path, PathBuf};

pub const CURRENT: &str = "CURRENT";
pub const HISTORY: &str = "HISTORY";
pub const MODEL_FILE: &str = "model.json";

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(transparent)]
    File(#[from] crate::fsutil::FileError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "no model is in service in {dir}: {dir}/CURRENT does not exist; {}",
        what_to_do(dir, newest)
    )]
    NoCurrent {
        dir: PathBuf,
        /// The newest version on disk, if any: then promoting it is the fix, not training.
        newest: Option<String>,
    },
    #[error("{dir}/CURRENT is empty or names an invalid version {version:?}")]
    BadCurrent { dir: PathBuf, version: String },
    #[error("no version {version:?} in {dir} (see `leadscore models list`)")]
    UnknownVersion { dir: PathBuf, version: String },
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("nothing to roll back to: {dir}/HISTORY has no earlier version")]
    NoEarlierVersion { dir: PathBuf },
}

/// What to do when nothing is in service: promote a version that is there, or train one.
fn what_to_do(dir: &Path, newest: &Option<String>) -> String {
    let dir = dir.display();
    match newest {
        Some(version) => format!(
            "versions are there but none was put in service (the newest is {version}): promote \
             one with `leadscore models promote {version} --models {dir}`"
        ),
        None => {
            format!("train one with `leadscore train --data FILE --target COLUMN --models {dir}`")
        }
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> RegistryError + '_ {
    move |source| RegistryError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Tests set `LEADSCORE_REGISTRY_STEP_DELAY_MS` to pause between the steps of a registry write,
/// so that a process killed at a random moment lands inside each window (see tests/registry.rs).
fn step_delay() {
    if let Some(ms) = std::env::var("LEADSCORE_REGISTRY_STEP_DELAY_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
}

/// A version name is a single path component of safe characters.
fn valid_version(version: &str) -> bool {
    !version.is_empty()
        && !version.starts_with('.')
        && version
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// A models directory.
#[derive(Debug, Clone)]
pub struct Registry {
    pub dir: PathBuf,
}

impl Registry {
    pub fn new(dir: impl Into<PathBuf>) -> Registry {
        Registry { dir: dir.into() }
    }

    pub fn model_path(&self, version: &str) -> PathBuf {
        self.dir.join(version).join(MODEL_FILE)
    }

    /// The version in service, if any.
    pub fn current_version(&self) -> Result<Option<String>, RegistryError> {
        let path = self.dir.join(CURRENT);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let version = text.trim().to_string();
                if !valid_version(&version) {
                    return Err(RegistryError::BadCurrent {
                        dir: self.dir.clone(),
                        version,
                    });
                }
                Ok(Some(version))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(&path)(e)),
        }
    }

    /// Loads the version in service.
    pub fn load_current(&self) -> Result<Model, RegistryError> {
        let Some(version) = self.current_version()? else {
            return Err(RegistryError::NoCurrent {
                dir: self.dir.clone(),
                newest: self.versions()?.pop(),
            });
        };
        self.load(&version)
    }

    /// Loads a version, or the one in service when `version` is `None`.
    pub fn load_or_current(&self, version: Option<&str>) -> Result<Model, RegistryError> {
        match version {
            Some(v) => self.load(v),
            None => self.load_current(),
        }
    }

    pub fn load(&self, version: &str) -> Result<Model, RegistryError> {
        let path = self.model_path(version);
        if !valid_version(version) || !path.exists() {
            return Err(RegistryError::UnknownVersion {
                dir: self.dir.clone(),
                version: version.to_string(),
            });
        }
        Ok(Model::load(&path)?)
    }

    /// Complete versions, oldest first (names sort by training time).
    pub fn versions(&self) -> Result<Vec<String>, RegistryError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(&self.dir)(e)),
        };
        let mut versions: Vec<String> = entries
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|name| valid_version(name) && self.model_path(name).is_file())
            .collect();
        versions.sort();
        Ok(versions)
    }

    /// Writes a new version (not promoted). Fails rather than overwrite an existing version.
    pub fn write_version(&self, artifact: &ModelArtifact) -> Result<PathBuf, RegistryError> {
        std::fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        let version = &artifact.model_version;
        let final_dir = self.dir.join(version);
        if final_dir.exists() {
            return Err(RegistryError::Io {
                path: final_dir,
                source: std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "version already exists",
                ),
            });
        }
        let staging = tempfile::Builder::new()
            .prefix(".tmp-")
            .tempdir_in(&self.dir)
            .map_err(io(&self.dir))?;
        let json = serde_json::to_vec_pretty(artifact).expect("artifacts always serialise");
        let file = staging.path().join(MODEL_FILE);
        let mut f = std::fs::File::create(&file).map_err(io(&file))?;
        f.write_all(&json).map_err(io(&file))?;
        f.write_all(b"\n").map_err(io(&file))?;
        step_delay();
        f.sync_all().map_err(io(&file))?;
        sync_dir(staging.path())?;
        step_delay();
        let staging = staging.keep();
        std::fs::rename(&staging, &final_dir).map_err(|source| {
            let _ = std::fs::remove_dir_all(&staging);
            RegistryError::Io {
                path: final_dir.clone(),
                source,
            }
        })?;
        sync_dir(&self.dir)?;
        Ok(final_dir.join(MODEL_FILE))
    }

    /// Puts `version` in service after checking that it loads.
    pub fn promote(&self, version: &str) -> Result<(), RegistryError> {
        self.load(version)?;
        step_delay();
        self.set_current(version)?;
        step_delay();
        let mut history = self.history()?;
        // Promoting the version already in service changes nothing, so rollback skips it.
        if history.last().map(String::as_str) != Some(version) {
            history.push(version.to_string());
        }
        self.write_history(&history)
    }

    /// Puts the previously promoted version back in service.
    pub fn rollback(&self) -> Result<String, RegistryError> {
        let mut history = self.history()?;
        let current = self.current_version()?;
        // HISTORY is written after CURRENT; if a crash fell between the two, CURRENT wins.
        if history.last() != current.as_ref() {
            history.extend(current);
        }
        history.pop();
        let previous = history
            .last()
            .cloned()
            .ok_or_else(|| RegistryError::NoEarlierVersion {
                dir: self.dir.clone(),
            })?;
        self.load(&previous)?;
        self.set_current(&previous)?;
        self.write_history(&history)?;
        Ok(previous)
    }

    fn set_current(&self, version: &str) -> Result<(), RegistryError> {
        Ok(write_atomic(
            &self.dir.join(CURRENT),
            format!("{version}\n").as_bytes(),
        )?)
    }

    /// Versions promoted so far, oldest first.
    pub fn history(&self) -> Result<Vec<String>, RegistryError> {
        let path = self.dir.join(HISTORY);
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(text
                .lines()
                .map(str::trim)
                .filter(|l| valid_version(l))
                .map(String::from)
                .collect()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(io(&path)(e)),
        }
    }

    fn write_history(&self, history: &[String]) -> Result<(), RegistryError> {
        let mut text = history.join("\n");
        text.push('\n');
        Ok(write_atomic(&self.dir.join(HISTORY), text.as_bytes())?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_names_cannot_escape_the_directory() {
        assert!(valid_version("20261123-101530-ab12cd"));
        for bad in ["", "..", "../x", "a/b", ".tmp-1", "a b"] {
            assert!(!valid_version(bad), "{bad:?}");
        }
    }

    #[test]
    fn missing_current_says_how_to_train() {
        let dir = tempfile::tempdir().unwrap();
        let err = Registry::new(dir.path())
            .load_current()
            .unwrap_err()
            .to_string();
        assert!(err.contains("leadscore train"), "{err}");
    }

    #[test]
    fn versions_without_current_say_how_to_promote() {
        let dir = tempfile::tempdir().unwrap();
        for version in ["20261123-101530-ab12cd", "20261124-090000-ab12cd"] {
            std::fs::create_dir(dir.path().join(version)).unwrap();
            std::fs::write(dir.path().join(version).join(MODEL_FILE), "{}").unwrap();
        }
        let err = Registry::new(dir.path())
            .load_current()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("leadscore models promote 20261124-090000-ab12cd --models")
                && !err.contains("leadscore train"),
            "{err}"
        );
    }
}
