//! The command line as a user meets it: help, the registry commands, scoring errors.

use crate::common::{leadscore, stderr, write};

#[test]
fn every_command_has_help_with_an_example() {
    for args in [
        vec!["--help"],
        vec!["sample", "--help"],
        vec!["train", "--help"],
        vec!["score", "--help"],
        vec!["models", "--help"],
        vec!["evaluate", "--help"],
        vec!["serve", "--help"],
        vec!["bench", "--help"],
    ] {
        let out = leadscore(&args);
        assert!(out.status.success(), "{args:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Example"), "{args:?} has no example:\n{text}");
    }
    let out = leadscore(&["train", "--data"]);
    assert_eq!(out.status.code(), Some(2), "usage errors exit 2");
}

/// Trains a model on sample data into `dir/models`; returns its version.
fn train_into(dir: &std::path::Path, seed: u64) -> String {
    let data = dir.join(format!("leads-{seed}.csv"));
    let out = leadscore(&[
        "sample",
        "--rows",
        "2000",
        "--seed",
        &seed.to_string(),
        "--out",
        data.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let models = dir.join("models");
    let out = leadscore(&[
        "train",
        "--data",
        data.to_str().unwrap(),
        "--target",
        "converted",
        "--models",
        models.to_str().unwrap(),
        "--promote",
        "always",
        "--json",
        "--quiet",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["promotion"]["promoted"], true);
    summary["model_version"].as_str().unwrap().to_string()
}

#[test]
fn models_list_show_promote_rollback() {
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("models");
    let m = models.to_str().unwrap();
    let first = train_into(dir.path(), 1);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let second = train_into(dir.path(), 2);
    assert_ne!(first, second);

    let out = leadscore(&["models", "list", "--models", m]);
    let list = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(list.contains(&format!("* {second}")), "{list}");
    assert!(list.contains(&format!("  {first}")), "{list}");

    let out = leadscore(&["models", "show", &first, "--models", m]);
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["model_version"], first.as_str());
    assert_eq!(shown["format_version"], 1);

    let out = leadscore(&["models", "rollback", "--models", m]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(models.join("CURRENT"))
            .unwrap()
            .trim(),
        first
    );
    let out = leadscore(&["models", "rollback", "--models", m]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("nothing to roll back to"),
        "{}",
        stderr(&out)
    );

    let out = leadscore(&["models", "promote", &second, "--models", m]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(models.join("CURRENT"))
            .unwrap()
            .trim(),
        second
    );
    let out = leadscore(&["models", "promote", "../etc", "--models", m]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no version \"../etc\""),
        "{}",
        stderr(&out)
    );
}

#[test]
fn scoring_errors_name_the_cause() {
    let dir = tempfile::tempdir().unwrap();
    let version = train_into(dir.path(), 3);
    let models = dir.path().join("models");
    let m = models.to_str().unwrap();

    // A value the model cannot use: file, line and column.
    let bad = write(
        dir.path(),
        "bad.csv",
        "lead_id,web_visits,source\nL1,3,Web\nL2,lots,Web\n",
    );
    let out = leadscore(&["score", "--data", bad.to_str().unwrap(), "--models", m]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("bad.csv, line 3: column \"web_visits\": \"lots\" is not a number"),
        "{err}"
    );

    // Columns the file lacks are imputed, with a warning per column.
    let partial = write(dir.path(), "partial.csv", "lead_id,source\nL1,Referral\n");
    let out = leadscore(&["score", "--data", partial.to_str().unwrap(), "--models", m]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("column \"web_visits\" is not in"),
        "{}",
        stderr(&out)
    );

    let out = leadscore(&[
        "score",
        "--data",
        partial.to_str().unwrap(),
        "--models",
        m,
        "--version",
        "nope",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no version \"nope\""),
        "{}",
        stderr(&out)
    );

    // A corrupt artifact is refused with its path, never half-used.
    let artifact = models.join(&version).join("model.json");
    let text = std::fs::read_to_string(&artifact).unwrap();
    std::fs::write(&artifact, &text[..text.len() / 2]).unwrap();
    let out = leadscore(&["score", "--data", partial.to_str().unwrap(), "--models", m]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("is not a valid leadscore model"), "{err}");
    assert!(err.contains("model.json"), "{err}");
    std::fs::write(
        &artifact,
        text.replace("\"intercept\": ", "\"intercept\": 1e999, \"x\": "),
    )
    .unwrap();
    let out = leadscore(&["score", "--data", partial.to_str().unwrap(), "--models", m]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("number out of range"),
        "{}",
        stderr(&out)
    );
}
