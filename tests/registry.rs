//! Crash safety of the model registry: `leadscore train` killed (SIGKILL) at any moment leaves
//! every existing version and `CURRENT` intact.

use crate::common::{leadscore_at, snapshot, stderr};
use leadscore::registry::Registry;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn training_killed_at_any_moment_leaves_the_registry_intact() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("leads.csv");
    let models = dir.path().join("models");
    leadscore::sample::write_sample(&data, 3000, 9).unwrap();
    let (data_s, models_s) = (data.to_str().unwrap(), models.to_str().unwrap());
    let train_args = [
        "train",
        "--data",
        data_s,
        "--target",
        "converted",
        "--models",
        models_s,
        "--promote",
        "always",
        "--quiet",
    ];
    // Versions are named by the second of their training time: each run is stamped a second
    // after the one before instead of waiting for the clock.
    let stamp = |second: u32| format!("2030-01-01T00:00:{second:02}Z");
    let out = leadscore_at(&stamp(0), &train_args);
    assert!(out.status.success(), "{}", stderr(&out));
    let registry = Registry::new(&models);
    let first = registry.current_version().unwrap().unwrap();

    // Each registry write step pauses this long, so kills land inside every window:
    // staging file written, staging directory renamed, CURRENT replaced, HISTORY replaced.
    let step = Duration::from_millis(150);
    let run = |second: u32| {
        Command::new(env!("CARGO_BIN_EXE_leadscore"))
            .args(train_args)
            .env(
                "LEADSCORE_REGISTRY_STEP_DELAY_MS",
                step.as_millis().to_string(),
            )
            .env("LEADSCORE_TRAINED_AT", stamp(second))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    // One uninterrupted run tells how long a run takes here.
    let started = Instant::now();
    assert!(run(1).wait().unwrap().success());
    let full = started.elapsed();

    let mut outcomes = std::collections::BTreeMap::new();
    for k in 0..16u32 {
        let before = snapshot(&models);
        let versions_before = registry.versions().unwrap();
        let mut child = run(2 + k);
        // Spread the kills over the whole run, weighted towards its end where the writes are.
        let at = full.mul_f64(0.35 + 0.65 * (k as f64 + 0.5) / 16.0);
        std::thread::sleep(at);
        let finished = child.try_wait().unwrap().is_some();
        child.kill().ok();
        child.wait().unwrap();

        // CURRENT names a complete, loadable version; old versions are byte for byte intact.
        let current = registry
            .current_version()
            .unwrap()
            .expect("CURRENT survives");
        registry.load(&current).expect("CURRENT loads");
        for version in &versions_before {
            registry.load(version).expect("old versions still load");
        }
        let after = snapshot(&models);
        for (path, bytes) in &before {
            let is_pointer = path.ends_with("CURRENT") || path.ends_with("HISTORY");
            if !is_pointer {
                let now = after.iter().find(|(p, _)| p == path).map(|(_, b)| b);
                assert_eq!(now, Some(bytes), "{} changed", path.display());
            }
        }
        // Every version directory is complete (temporaries are dot-named and ignored).
        for entry in std::fs::read_dir(&models).unwrap().flatten() {
            let name = entry.file_name().into_string().unwrap();
            if entry.path().is_dir() && !name.starts_with('.') {
                registry.load(&name).expect("no half-written version");
            }
        }
        let new_versions = registry.versions().unwrap().len() - versions_before.len();
        let promoted = current != *versions_before.last().unwrap();
        *outcomes
            .entry((finished, new_versions, promoted))
            .or_insert(0) += 1;
    }
    // The kills landed both before the new version existed and after it was written.
    assert!(outcomes.keys().any(|&(_, new, _)| new == 0), "{outcomes:?}");
    assert!(outcomes.keys().any(|&(_, new, _)| new == 1), "{outcomes:?}");
    assert!(registry.versions().unwrap().contains(&first));
}

#[test]
fn a_file_size_limit_while_saving_gives_a_clear_error_and_no_partial_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("leads.csv");
    let models = dir.path().join("models");
    leadscore::sample::write_sample(&data, 3000, 4).unwrap();
    let (data_s, models_s) = (data.to_str().unwrap(), models.to_str().unwrap());
    let out = leadscore_at(
        "2030-01-01T00:00:00Z",
        &[
            "train",
            "--data",
            data_s,
            "--target",
            "converted",
            "--models",
            models_s,
            "--quiet",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let before = snapshot(&models);

    // Files may grow to 8 KiB (a model is ~20 KiB); SIGXFSZ ignored, so writes fail with EFBIG
    // as they would on a full disk.
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "trap '' XFSZ; ulimit -f 8; exec {} train --data {data_s} --target converted \
             --models {models_s} --promote always --quiet",
            env!("CARGO_BIN_EXE_leadscore")
        ))
        .env("LEADSCORE_TRAINED_AT", "2030-01-01T00:00:01Z") // a version name of its own
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("saving the model in"), "{err}");
    assert!(err.contains("File too large"), "{err}");
    assert_eq!(
        snapshot(&models),
        before,
        "no partial version, CURRENT untouched"
    );
    let leftovers: Vec<_> = std::fs::read_dir(&models)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp-"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "temporary files removed: {leftovers:?}"
    );
}
