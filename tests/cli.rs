//! The command line as a user meets it: help, the registry commands, scoring errors, line
//! numbers. The table of refusals (exit code and message of each) is in `refusals.rs`.

use crate::common::{leadscore, leadscore_bench, stderr, write};

#[test]
fn every_command_has_help_with_an_example() {
    for args in [
        vec!["--help"],
        vec!["sample", "--help"],
        vec!["train", "--help"],
        vec!["score", "--help"],
        vec!["models", "--help"],
        vec!["models", "export", "--help"],
        vec!["evaluate", "--help"],
        vec!["serve", "--help"],
    ] {
        let out = leadscore(&args);
        assert!(out.status.success(), "{args:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Example"), "{args:?} has no example:\n{text}");
    }
    for args in [
        vec!["--help"],
        vec!["load", "--help"],
        vec!["ceiling", "--help"],
    ] {
        let out = leadscore_bench(&args);
        assert!(out.status.success(), "leadscore-bench {args:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("Example"),
            "leadscore-bench {args:?} has no example:\n{text}"
        );
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

/// Line numbers in errors and in `score`'s `line` column are the lines a text editor shows,
/// whatever ends the lines (`\n`, `\r\n`, a lone `\r`), with blank lines and a quoted field
/// that spans two lines before the rows they name.
#[test]
fn line_numbers_are_the_lines_an_editor_shows_with_any_line_ending() {
    let f = crate::server::fixture();
    let models = crate::server::registry(&[&f.a], Some("test-a"));
    let m = models.path().to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Written with `\n`; each case replaces every line break with its own.
    let leads = "lead_id,web_visits,source,notes\n\
                 L1,3,Web,plain\n\
                 \n\
                 L2,4,Web,\"called twice,\nno answer\"\n\
                 \n\
                 \n\
                 L3,5,Referral,x\n";
    // The editor's line of the row starting with `prefix`, counted on the `\n` text.
    let editor_line = |text: &str, prefix: &str| {
        1 + text
            .split('\n')
            .position(|l| l.starts_with(prefix))
            .unwrap() as u64
    };
    assert_eq!(
        ["L1", "L2", "L3"].map(|id| editor_line(leads, id)),
        [2, 4, 8]
    );
    for (style, newline) in [("LF", "\n"), ("CRLF", "\r\n"), ("CR", "\r")] {
        let file = write(
            dir.path(),
            &format!("{style}.csv"),
            &leads.replace('\n', newline),
        );
        let scored = dir.path().join(format!("{style}-scored.csv"));
        let out = leadscore(&[
            "score",
            "--data",
            file.to_str().unwrap(),
            "--models",
            m,
            "--out",
            scored.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{style}: {}", stderr(&out));
        let mut reader = csv::Reader::from_path(&scored).unwrap();
        let mut lines: Vec<(String, u64)> = reader
            .records()
            .map(|r| {
                let r = r.unwrap();
                (r[0].to_string(), r[1].parse().unwrap())
            })
            .collect();
        lines.sort();
        let expected: Vec<(String, u64)> = ["L1", "L2", "L3"]
            .iter()
            .map(|id| (id.to_string(), editor_line(leads, id)))
            .collect();
        assert_eq!(lines, expected, "{style}: score's line column");

        // A value the model cannot use, and a ragged row, after all of that.
        for (name, row, message) in [
            (
                "bad",
                "L4,lots,Web,y",
                "column \"web_visits\": \"lots\" is not a number",
            ),
            ("ragged", "L4,6,Web", "3 fields where the header has 4"),
        ] {
            let text = format!("{leads}\n{row}\n");
            let line = editor_line(&text, "L4");
            assert_eq!(line, 10);
            let file = write(
                dir.path(),
                &format!("{style}-{name}.csv"),
                &text.replace('\n', newline),
            );
            let out = leadscore(&["score", "--data", file.to_str().unwrap(), "--models", m]);
            assert_eq!(
                out.status.code(),
                Some(1),
                "{style} {name}: {}",
                stderr(&out)
            );
            let expected = format!("{style}-{name}.csv, line {line}: {message}");
            assert!(
                stderr(&out).contains(&expected),
                "{style} {name}: expected {expected:?} in {}",
                stderr(&out)
            );
        }
    }
}

/// Retraining without a column the serving model leans on is not promoted, and the summary says
/// in plain words what stays in service, why it may win, and how to serve the new version; the
/// summary lists every column with its kind, without nested parentheses.
#[test]
fn a_refused_promotion_says_what_stays_in_service_and_why() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("leads.csv");
    let d = data.to_str().unwrap();
    let out = leadscore(&["sample", "--rows", "3000", "--seed", "4", "--out", d]);
    assert!(out.status.success(), "{}", stderr(&out));
    let models = dir.path().join("models");
    let m = models.to_str().unwrap();
    let train = |at: &str, extra: &[&str]| {
        let mut args = vec!["train", "--data", d, "--target", "converted"];
        args.extend(["--date", "created_at", "--models", m, "--quiet"]);
        args.extend(extra);
        let out = crate::common::leadscore_at(at, &args);
        assert!(out.status.success(), "{}", stderr(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let first = train("2030-01-01T00:00:01Z", &[]);
    assert!(first.contains("promoted   yes"), "{first}");
    let line = |text: &str, start: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(start))
            .unwrap_or_else(|| panic!("no line starting {start:?} in\n{text}"))
            .to_string()
    };
    let id_line = line(&first, "lead_id ");
    assert!(
        id_line.contains(" id ") && id_line.contains("not a feature: mostly unique values"),
        "{id_line}"
    );
    assert!(line(&first, "created_at").contains("orders the holdout (--date)"));
    assert!(line(&first, "demo_requested").contains("boolean"));
    assert!(line(&first, "columns").contains("13 read: 10 features, 3 not"));
    assert!(!first.contains("(("), "{first}");

    let serving = std::fs::read_to_string(models.join("CURRENT")).unwrap();
    let serving = serving.trim();
    let second = train("2030-01-01T00:00:02Z", &["--drop", "demo_requested"]);
    assert!(second.contains("promoted   no"), "{second}");
    assert!(
        second.contains(&format!("{serving} stays in service")),
        "{second}"
    );
    assert!(
        second.contains("It scores with columns this model does not use (demo_requested)"),
        "{second}"
    );
    let new_version = line(&second, "model")
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string();
    assert!(
        second.contains(&format!(
            "leadscore models promote {new_version} --models {m}"
        )),
        "{second}"
    );
    assert!(line(&second, "demo_requested").contains("dropped (--drop)"));
}
