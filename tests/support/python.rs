//! Python packages the tests run (a validator, DuckDB): the one found in this Python, else the
//! pinned version installed from PyPI into the user's site-packages, so the README's one test
//! command needs no set-up step.

use std::collections::HashSet;
use std::process::Command;
use std::sync::Mutex;

/// Makes `import module` work in `python3`, installing `pinned` (`name==version`) with `pip
/// install --user` when it does not; once per package per test run.
pub fn ensure_package(module: &str, pinned: &str) {
    static READY: Mutex<Option<HashSet<String>>> = Mutex::new(None);
    let mut ready = READY.lock().unwrap_or_else(|e| e.into_inner());
    let ready = ready.get_or_insert_with(HashSet::new);
    if ready.contains(module) {
        return;
    }
    let found = Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        let output = Command::new("python3")
            .args(["-m", "pip", "install", "--user", "--quiet"])
            .args(["--disable-pip-version-check", pinned])
            .output()
            .expect("python3 runs (the tests need Python 3 with pip)");
        assert!(
            output.status.success(),
            "installing {pinned} from PyPI failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    ready.insert(module.to_string());
}
