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

/// Trains a model on sample data into `dir/models`, stamped `seed` seconds into 2030 (so later
/// seeds get later versions); returns its version.
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
    let trained_at = format!("2030-01-01T00:00:{seed:02}Z");
    let out = crate::common::leadscore_at(
        &trained_at,
        &[
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
        ],
    );
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

/// Refusals not exercised elsewhere: each exits with its code and names the cause.
#[test]
fn every_other_refusal_names_its_cause_with_its_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let version = train_into(dir.path(), 5);
    let models = dir.path().join("models");
    let m = models.to_str().unwrap();
    let d = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let leads = d("leads-5.csv");
    let (m2, m3, m4) = (d("m2"), d("m3"), d("m4"));
    let (m2, m3, m4) = (m2.as_str(), m3.as_str(), m4.as_str());
    let empty_models = d("no-models");
    std::fs::create_dir_all(&empty_models).unwrap();
    let blank_current = d("blank-current");
    std::fs::create_dir_all(&blank_current).unwrap();
    std::fs::write(dir.path().join("blank-current/CURRENT"), "\n").unwrap();
    let only_ids = write(
        dir.path(),
        "only_ids.csv",
        &(0..100)
            .map(|i| format!("L{i},{}\n", (i % 2 == 0) as u8))
            .fold("lead_id,converted\n".to_string(), |s, row| s + &row),
    );
    let odd_target = write(
        dir.path(),
        "odd_target.csv",
        "lead_id,web_visits,converted\nL1,3,1\nL2,4,maybe\nL3,5,0\n",
    );
    let garbage = write(dir.path(), "garbage.pem", "not a certificate\n");
    let duplicate = write(
        dir.path(),
        "duplicate.csv",
        "lead_id,web_visits,web_visits\nL1,3,4\n",
    );
    let outcomes = write(
        dir.path(),
        "outcomes.csv",
        "lead_id,converted\nX1,1\nX2,0\n",
    );
    let predictions = d("predictions.csv");
    let out = leadscore(&[
        "score",
        "--data",
        &leads,
        "--models",
        m,
        "--out",
        &predictions,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    // A port nothing listens on: bind one, note it, free it.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_addr = busy.local_addr().unwrap().to_string();
    let closed_url = format!("http://{closed}");

    let cases: Vec<(Vec<&str>, i32, &str)> = vec![
        // Usage errors are clap's: exit 2.
        (vec!["train", "--target", "converted"], 2, "--data <DATA>"),
        (
            vec!["score", "--data", &leads, "--explain", "many"],
            2,
            "invalid value 'many'",
        ),
        (vec!["frobnicate"], 2, "unrecognized subcommand"),
        // Registry.
        (
            vec!["score", "--data", &leads, "--models", &empty_models],
            1,
            "no model is in service",
        ),
        (
            vec!["models", "show", "--models", &blank_current],
            1,
            "CURRENT is empty or names an invalid version",
        ),
        (
            vec!["models", "promote", "../etc", "--models", m],
            1,
            "no version \"../etc\"",
        ),
        (
            vec![
                "score",
                "--data",
                duplicate.to_str().unwrap(),
                "--models",
                m,
            ],
            1,
            "header has the column \"web_visits\" twice (columns 2 and 3)",
        ),
        // Training.
        (
            vec![
                "train",
                "--data",
                only_ids.to_str().unwrap(),
                "--target",
                "converted",
                "--id",
                "lead_id",
                "--models",
                m2,
            ],
            1,
            "no usable feature columns remain",
        ),
        (
            vec![
                "train",
                "--data",
                odd_target.to_str().unwrap(),
                "--target",
                "converted",
                "--models",
                m3,
            ],
            1,
            "neither won, lost nor open",
        ),
        (
            vec![
                "train",
                "--data",
                &leads,
                "--target",
                "converted",
                "--date",
                "source",
                "--models",
                m4,
            ],
            1,
            "is not a date",
        ),
        // Evaluation.
        (
            vec![
                "evaluate",
                "--predictions",
                &predictions,
                "--outcomes",
                outcomes.to_str().unwrap(),
                "--models",
                m,
                "--id",
                "lead_id",
            ],
            1,
            "no lead has both a prediction and a known outcome",
        ),
        // Serving and the load generator.
        (
            vec![
                "serve",
                "--models",
                m,
                "--tls-cert",
                garbage.to_str().unwrap(),
                "--tls-key",
                garbage.to_str().unwrap(),
                "--addr",
                "127.0.0.1:0",
            ],
            1,
            "TLS",
        ),
        (
            vec!["serve", "--models", m, "--addr", &busy_addr],
            1,
            "binding --addr",
        ),
        (
            vec!["serve", "--models", m, "--addr", "0.0.0.0:0"],
            1,
            "--insecure",
        ),
        (
            vec![
                "bench",
                "--target",
                &closed_url,
                "--data",
                &leads,
                "--id",
                "lead_id",
                "--duration",
                "1",
                "--warmup",
                "0",
                "--rounds",
                "1",
            ],
            1,
            "cannot connect to",
        ),
    ];
    for (args, code, message) in &cases {
        let out = leadscore(args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(*code), "{args:?}: {err}");
        assert!(
            err.contains(message),
            "{args:?}: expected {message:?} in {err}"
        );
    }
    drop(busy);
    let _ = version;
}
