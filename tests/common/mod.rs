//! Helpers shared by the integration tests: temporary data, the CLI binary, snapshots.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs the `leadscore` binary built for these tests.
pub fn leadscore(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_leadscore"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("the leadscore binary runs")
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Writes `text` to `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Every file below `dir` with its bytes, for before/after comparisons.
pub fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                out.extend(snapshot(&path));
            } else {
                out.push((path.clone(), std::fs::read(&path).unwrap_or_default()));
            }
        }
    }
    out.sort();
    out
}

/// Runs the `leadscore` binary with its training clock set to `trained_at` (RFC 3339): versions
/// are named by the second, so tests stamp each training rather than wait for the clock.
pub fn leadscore_at(trained_at: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_leadscore"))
        .args(args)
        .env("RUST_LOG", "warn")
        .env("LEADSCORE_TRAINED_AT", trained_at)
        .output()
        .expect("the leadscore binary runs")
}
