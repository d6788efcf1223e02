//! Refusals no other test asserted with both their message and their code: command-line errors
//! (exit 1, or 2 for clap's usage errors), every way the model in service can fail to load at
//! start-up, requests that are not valid protobuf (`INVALID_ARGUMENT` saying why), an unknown
//! method, and the authentication messages. `RELIABILITY.md` lists every refusal with its test.
//!
//! The command-line cases are one table: arguments, environment, exit code, and a substring of
//! standard error. Each runs the real binary to its exit, within `common::COMMAND_TIMEOUT` (a
//! refusal that starts serving instead fails its case by name).

use crate::common::run_to_exit;
use crate::server::{
    attribute_of_kind, fixture, model, raw_call, registry, score_request, start_serving, text,
};
use leadscore::server::pb;
use std::path::Path;
use std::process::Command;
use tonic::{Code, Request};

const BIN: &str = env!("CARGO_BIN_EXE_leadscore");
/// The serving benchmark's tools, a separate binary.
const BENCH: &str = env!("CARGO_BIN_EXE_leadscore-bench");

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Whether this process runs as root (for whom file permissions do not deny reads).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|uids| uids.split_whitespace().nth(1)) // the effective uid
        == Some("0")
}

/// One refusal of the command line: what to run, and the exit code and message expected.
struct Refusal {
    name: &'static str,
    /// The program run: the binary (or `leadscore-bench`), or `bash` (`-c LINE`, for resource
    /// limits), or `setpriv`.
    program: &'static str,
    args: Vec<String>,
    env: Vec<(&'static str, String)>,
    code: i32,
    message: String,
}

fn refusal(name: &'static str, args: &[&str], code: i32, message: &str) -> Refusal {
    Refusal {
        name,
        program: BIN,
        args: args.iter().map(|a| a.to_string()).collect(),
        env: Vec::new(),
        code,
        message: message.to_string(),
    }
}

/// Runs the refusal and checks its exit code and message; returns standard error.
fn check(case: Refusal) -> String {
    let mut command = Command::new(case.program);
    command
        .args(&case.args)
        .env("RUST_LOG", "warn")
        .env_remove("LEADSCORE_AUTH_TOKEN");
    for (key, value) in &case.env {
        command.env(key, value);
    }
    let out = run_to_exit(case.name, command);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(case.code), "{}: {err}", case.name);
    assert!(
        err.contains(&case.message),
        "{}: expected {:?} in:\n{err}",
        case.name,
        case.message
    );
    assert!(!err.contains("panicked"), "{}: {err}", case.name);
    err.into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_line_refusals_say_why_and_exit_with_their_code() {
    let f = fixture();
    let models = registry(&[&f.a], Some("test-a"));
    let m = path(models.path()).to_string();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = |name: &str| path(&d.join(name)).to_string();
    let write = |name: &str, text: &str| path(&crate::common::write(d, name, text)).to_string();
    let data = path(&f.data).to_string();
    let missing_dir = p("no-such-dir");
    let a_directory = p("a-directory");
    std::fs::create_dir(&a_directory).unwrap();
    let broken = registry(&[&f.a], Some("test-a"));
    std::fs::write(
        broken.path().join("test-a").join("model.json"),
        "{\"format_version\": 1, \"trunc",
    )
    .unwrap();
    let broken = path(broken.path()).to_string();

    let only_ids = write(
        "ids.csv",
        &(0..200).fold("id,outcome\n".to_string(), |s, i| {
            s + &format!("L{i},{}\n", i % 2)
        }),
    );
    let same_name = write(
        "same_name.csv",
        &(0..200).fold("id,Web Visits,web  visits,outcome\n".to_string(), |s, i| {
            s + &format!("L{i},{},{},{}\n", i % 7, i % 5, i % 2)
        }),
    );
    let not_utf8 = p("latin1.csv");
    std::fs::write(&not_utf8, b"x,outcome\n1,1\ncaf\xe9,0\n").unwrap();
    let flags = write(
        "flags.csv",
        &(0..200).fold("id,flag,outcome\n".to_string(), |s, i| {
            let flag = if i == 50 {
                "maybe"
            } else {
                ["yes", "no"][i % 2]
            };
            s + &format!("{i},{flag},{}\n", i % 3 % 2)
        }),
    );
    let mut late = String::from("id,created,signal,outcome\n");
    for i in 0..500 {
        let month = 1 + i * 12 / 500;
        let won = month <= 9 && i % 3 == 0;
        late.push_str(&format!("{i},2025-{month:02}-01,{},{}\n", i % 5, won as u8));
    }
    let late = write("late.csv", &late);
    let not_a_number = write("p.csv", "lead_id,probability,grade\nA,abc,B\n");
    let out_of_range = write("p2.csv", "lead_id,probability,grade\nA,1.5,B\n");
    let bad_time = write(
        "p3.csv",
        "lead_id,probability,grade,scored_at\nA,0.5,B,yesterday\n",
    );
    let outcomes = write("o.csv", "lead_id,converted\nA,1\n");
    let no_table = p("empty.sqlite");
    rusqlite::Connection::open(&no_table)
        .unwrap()
        .execute_batch("CREATE TABLE other(x)")
        .unwrap();
    let one_prediction = write("p4.csv", "lead_id,probability,grade\nA,0.5,B\n");
    let not_an_outcome = write("o2.csv", "lead_id,converted\nA,maybe\n");
    let decided_twice = write("o3.csv", "lead_id,converted\nA,1\nA,0\n");
    let bad_date = write("o4.csv", "lead_id,converted,closed\nA,1,someday\n");
    let not_numeric = write("bt.csv", "lead_id,web_visits,converted\nL1,lots,1\n");
    let not_yes_no = write("yn.csv", "lead_id,demo_requested\nL1,maybe\n");
    let no_models = p("no-models");
    std::fs::create_dir(&no_models).unwrap();
    let blank_current = p("blank-current");
    std::fs::create_dir(&blank_current).unwrap();
    std::fs::write(d.join("blank-current/CURRENT"), "\n").unwrap();
    let duplicate = write("duplicate.csv", "lead_id,web_visits,web_visits\nL1,3,4\n");
    let odd_target = write(
        "odd_target.csv",
        "lead_id,web_visits,converted\nL1,3,1\nL2,4,maybe\nL3,5,0\n",
    );
    let other_leads = write("o5.csv", "lead_id,converted\nX1,1\nX2,0\n");
    // A port nothing listens on: bind one, note it, free it.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let closed_url = format!("http://{closed}");
    let leads = data.clone();
    let empty_token = write("empty-token", "\n");
    let pem = write("not.pem", "not a certificate\n");
    let occupied = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = occupied.local_addr().unwrap().to_string();
    let serve = |extra: &[&str]| -> Vec<String> {
        ["serve", "--models", &m, "--addr", "127.0.0.1:0"]
            .iter()
            .chain(extra)
            .map(|s| s.to_string())
            .collect()
    };
    let serve_refusal = |name, extra: &[&str], code, message: &str| Refusal {
        args: serve(extra),
        ..refusal(name, &[], code, message)
    };

    let cases = vec![
        refusal(
            "an unknown command",
            &["frobnicate"],
            2,
            "unrecognized subcommand",
        ),
        refusal(
            "train: --max-rows with --horizon",
            &[
                "train",
                "--data",
                &late,
                "--target",
                "outcome",
                "--date",
                "created",
                "--horizon",
                "30",
                "--closed-at",
                "created",
                "--max-rows",
                "100",
                "--models",
                &p("sampled-models"),
            ],
            1,
            "--max-rows cannot be combined with --horizon",
        ),
        // serve: flags and files checked before anything starts
        serve_refusal(
            "serve: --reload-interval 0",
            &["--reload-interval", "0"],
            1,
            "--reload-interval must be a positive number of seconds, not 0",
        ),
        serve_refusal(
            "serve: --shutdown-grace NaN",
            &["--shutdown-grace", "NaN"],
            1,
            "--shutdown-grace must be a positive number of seconds, not NaN",
        ),
        serve_refusal(
            "serve: --auth-token-file missing",
            &["--auth-token-file", &p("nope")],
            1,
            &format!("reading --auth-token-file {}", p("nope")),
        ),
        serve_refusal(
            "serve: --auth-token-file empty",
            &["--auth-token-file", &empty_token],
            1,
            "the token file is empty",
        ),
        Refusal {
            env: vec![("LEADSCORE_AUTH_TOKEN", " ".into())],
            ..serve_refusal(
                "serve: LEADSCORE_AUTH_TOKEN empty",
                &[],
                1,
                "LEADSCORE_AUTH_TOKEN is set but empty",
            )
        },
        serve_refusal(
            "serve: --tls-cert missing",
            &["--tls-cert", &p("nope.pem"), "--tls-key", &pem],
            1,
            &format!("reading --tls-cert {}", p("nope.pem")),
        ),
        serve_refusal(
            "serve: --tls-key missing",
            &["--tls-cert", &pem, "--tls-key", &p("nope.key")],
            1,
            &format!("reading --tls-key {}", p("nope.key")),
        ),
        refusal(
            "serve: --models missing",
            &["serve", "--models", &missing_dir],
            1,
            &format!("--models {missing_dir}: no such directory"),
        ),
        serve_refusal(
            "serve: --metrics-addr in use",
            &["--metrics-addr", &busy],
            1,
            &format!("binding --metrics-addr {busy}"),
        ),
        serve_refusal(
            "serve: --prediction-log is a directory",
            &["--prediction-log", &a_directory],
            1,
            &format!("cannot open the prediction log {a_directory}: unable to open database file"),
        ),
        Refusal {
            program: "bash",
            args: vec![
                "-c".into(),
                format!(
                    "trap '' XFSZ; ulimit -f 0; exec '{BIN}' serve --models '{m}' --addr \
                     127.0.0.1:0 --prediction-log '{}'",
                    p("full.sqlite")
                ),
            ],
            ..refusal(
                "serve: --prediction-log on a full disk",
                &[],
                1,
                &format!(
                    "cannot open the prediction log {}: disk I/O error",
                    p("full.sqlite")
                ),
            )
        },
        serve_refusal(
            "serve: a --tls-cert that is not a certificate",
            &["--tls-cert", &pem, "--tls-key", &pem],
            1,
            "TLS",
        ),
        refusal(
            "serve: --addr in use",
            &["serve", "--models", &m, "--addr", &busy],
            1,
            "binding --addr",
        ),
        refusal(
            "serve: a public --addr without a token or --insecure",
            &["serve", "--models", &m, "--addr", "0.0.0.0:0"],
            1,
            "--insecure",
        ),
        refusal(
            "serve: --max-batch 0",
            &["serve", "--max-batch", "0"],
            2,
            "invalid value '0' for '--max-batch <MAX_BATCH>'",
        ),
        refusal(
            "serve: --tls-cert without --tls-key",
            &["serve", "--tls-cert", &pem],
            2,
            "--tls-key <TLS_KEY>",
        ),
        refusal(
            "serve: --addr not an address",
            &["serve", "--addr", "localhost"],
            2,
            "invalid value 'localhost' for '--addr <ADDR>'",
        ),
        // train
        refusal(
            "train: --data missing",
            &[
                "train",
                "--data",
                &p("nope.csv"),
                "--target",
                "outcome",
                "--models",
                &p("m1"),
            ],
            1,
            &format!("cannot read {}", p("nope.csv")),
        ),
        refusal(
            "train: text that is not UTF-8",
            &[
                "train",
                "--data",
                &not_utf8,
                "--target",
                "outcome",
                "--models",
                &p("m1"),
            ],
            1,
            "latin1.csv, line 3: not valid UTF-8 text",
        ),
        refusal(
            "train: --id is the target",
            &[
                "train",
                "--data",
                &only_ids,
                "--target",
                "outcome",
                "--id",
                "outcome",
                "--models",
                &p("m1"),
            ],
            1,
            "--id \"outcome\": is the --target column",
        ),
        refusal(
            "train: --kind without =",
            &[
                "train",
                "--data",
                &only_ids,
                "--target",
                "outcome",
                "--kind",
                "id",
                "--models",
                &p("m1"),
            ],
            1,
            "--kind \"id\": expected COLUMN=KIND",
        ),
        refusal(
            "train: --kind of an unknown kind",
            &[
                "train",
                "--data",
                &only_ids,
                "--target",
                "outcome",
                "--kind",
                "id=colour",
                "--models",
                &p("m1"),
            ],
            1,
            "--kind \"id=colour\": unknown kind \"colour\"",
        ),
        refusal(
            "train: a yes/no column with another value",
            &[
                "train",
                "--data",
                &flags,
                "--target",
                "outcome",
                "--id",
                "id",
                "--kind",
                "flag=boolean",
                "--models",
                &p("m1"),
            ],
            1,
            "\"maybe\" is not a yes/no value",
        ),
        refusal(
            "train: no feature column left",
            &[
                "train",
                "--data",
                &only_ids,
                "--target",
                "outcome",
                "--id",
                "id",
                "--models",
                &p("m1"),
            ],
            1,
            "no usable feature columns remain",
        ),
        refusal(
            "train: two feature columns one name would denote",
            &[
                "train",
                "--data",
                &same_name,
                "--target",
                "outcome",
                "--id",
                "id",
                "--models",
                &p("m1"),
            ],
            1,
            "the columns \"Web Visits\" and \"web  visits\" are one field under the name rule",
        ),
        refusal(
            "train: an outcome that is neither won, lost nor open",
            &[
                "train",
                "--data",
                &odd_target,
                "--target",
                "converted",
                "--models",
                &p("m1"),
            ],
            1,
            "neither won, lost nor open",
        ),
        refusal(
            "train: a --date column that is not a date",
            &[
                "train",
                "--data",
                &data,
                "--target",
                "converted",
                "--date",
                "source",
                "--models",
                &p("m1"),
            ],
            1,
            "is not a date",
        ),
        refusal(
            "train: a holdout with no wins (from the command line)",
            &[
                "train",
                "--data",
                &late,
                "--target",
                "outcome",
                "--date",
                "created",
                "--models",
                &p("m1"),
            ],
            1,
            "the holdout (the most recent 20% of leads by \"created\") has 0 won",
        ),
        // score
        refusal(
            "score: --out in a missing directory",
            &[
                "score",
                "--data",
                &data,
                "--models",
                &m,
                "--out",
                &format!("{missing_dir}/s.csv"),
            ],
            1,
            &format!("writing {missing_dir}/s.csv"),
        ),
        refusal(
            "score: no model in service",
            &["score", "--data", &data, "--models", &no_models],
            1,
            "no model is in service",
        ),
        refusal(
            "score: a header with a column twice",
            &["score", "--data", &duplicate, "--models", &m],
            1,
            "header has the column \"web_visits\" twice (columns 2 and 3)",
        ),
        refusal(
            "score: a yes/no column with another value",
            &["score", "--data", &not_yes_no, "--models", &m],
            1,
            "yn.csv, line 2: column \"demo_requested\": \"maybe\" is not a yes/no value",
        ),
        // evaluate
        refusal(
            "evaluate: backtest of a value the model cannot use",
            &["evaluate", "--models", &m, "--data", &not_numeric],
            1,
            "bt.csv, line 2: field \"web_visits\": \"lots\" is not a number",
        ),
        refusal(
            "evaluate: realized without a model or --target",
            &[
                "evaluate",
                "--models",
                &no_models,
                "--predictions",
                &one_prediction,
                "--outcomes",
                &outcomes,
            ],
            1,
            "--target: no model to take the outcome column from; name it with --target COL",
        ),
        refusal(
            "evaluate: an outcome that is neither won, lost nor open",
            &[
                "evaluate",
                "--models",
                &m,
                "--predictions",
                &one_prediction,
                "--outcomes",
                &not_an_outcome,
            ],
            1,
            "o2.csv, line 2: column \"converted\": \"maybe\" is neither won, lost nor open",
        ),
        refusal(
            "evaluate: a lead decided twice",
            &[
                "evaluate",
                "--models",
                &m,
                "--predictions",
                &one_prediction,
                "--outcomes",
                &decided_twice,
            ],
            1,
            "o3.csv, line 3: lead \"A\" already has an outcome at line 2; keep one row per lead",
        ),
        refusal(
            "evaluate: an --outcome-date that is not a date",
            &[
                "evaluate",
                "--models",
                &m,
                "--predictions",
                &one_prediction,
                "--outcomes",
                &bad_date,
                "--outcome-date",
                "closed",
            ],
            1,
            "o4.csv, line 2: column \"closed\": \"someday\" is not a date or time",
        ),
        refusal(
            "evaluate: --predictions without --outcomes",
            &["evaluate", "--models", &m, "--predictions", &not_a_number],
            2,
            "the following required arguments were not provided:\n  --outcomes <OUTCOMES>",
        ),
        refusal(
            "evaluate: a probability that is not a number",
            &[
                "evaluate",
                "--models",
                &m,
                "--predictions",
                &not_a_number,
                "--outcomes",
                &outcomes,
            ],
            1,
            "p.csv, line 2: probability \"abc\" is not a number",
        ),
        refusal(
            "evaluate: a probability outside [0, 1]",
            &[
                "evaluate",
                "--models",
                &m,
                "--predictions",
                &out_of_range,
                "--outcomes",
                &outcomes,
            ],
            1,
            "p2.csv, line 2: probability 1.5 is not between 0 and 1",
        ),
        refusal(
            "evaluate: a scored_at that is not a time",
            &[
                "evaluate",
                "--models",
                &m,
                "--predictions",
                &bad_time,
                "--outcomes",
                &outcomes,
            ],
            1,
            "scored_at \"yesterday\" is not an RFC 3339 time",
        ),
        refusal(
            "evaluate: predictions and outcomes of different leads",
            &[
                "evaluate",
                "--predictions",
                &one_prediction,
                "--outcomes",
                &other_leads,
                "--models",
                &m,
                "--id",
                "lead_id",
            ],
            1,
            "no lead has both a prediction and a known outcome",
        ),
        refusal(
            "evaluate: a SQLite file without predictions",
            &[
                "evaluate",
                "--models",
                &m,
                "--predictions",
                &no_table,
                "--outcomes",
                &outcomes,
            ],
            1,
            "reading the prediction log: no such table: predictions",
        ),
        refusal(
            "evaluate: a gate value out of range",
            &[
                "evaluate",
                "--models",
                &m,
                "--data",
                &data,
                "--max-calibration-gap",
                "3",
            ],
            2,
            "\"3\" is not between 0 and 1 (write 3% as 0.03)",
        ),
        refusal(
            "evaluate: the model in service is corrupt",
            &["evaluate", "--models", &broken, "--data", &data],
            1,
            "is not a valid leadscore model",
        ),
        // models
        refusal(
            "models show: a blank CURRENT",
            &["models", "show", "--models", &blank_current],
            1,
            "CURRENT is empty or names an invalid version",
        ),
        refusal(
            "models show: an unknown version",
            &["models", "show", "nope", "--models", &m],
            1,
            "no version \"nope\"",
        ),
        refusal(
            "models promote: a version that does not load",
            &["models", "promote", "test-a", "--models", &broken],
            1,
            "promoting test-a",
        ),
        // sample
        refusal(
            "sample: --out in a missing directory",
            &[
                "sample",
                "--rows",
                "10",
                "--out",
                &format!("{missing_dir}/x.csv"),
            ],
            1,
            &format!("writing {missing_dir}/x.csv"),
        ),
        refusal(
            "sample: --rows 0",
            &["sample", "--rows", "0", "--out", &p("x.csv")],
            2,
            "invalid value '0' for '--rows <ROWS>'",
        ),
        // leadscore-bench load
        Refusal {
            program: BENCH,
            ..refusal(
                "leadscore-bench load: nothing listening at --target",
                &[
                    "load",
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
            )
        },
        Refusal {
            program: BENCH,
            ..refusal(
                "leadscore-bench load: a negative --duration",
                &["load", "--data", &data, "--duration=-1"],
                1,
                "--duration must be a number of seconds, not -1",
            )
        },
    ];
    for case in cases {
        check(case);
    }
    drop(occupied);
}

/// The version `CURRENT` names cannot be loaded at start-up, in every way not covered by
/// `start_up_refusals_name_the_cause_and_exit_1`: the server exits 1 naming the cause.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_unloadable_model_in_service_stops_the_server_at_start_up() {
    let f = fixture();
    type Prepare = fn(&Path);
    let cases: Vec<(&str, Prepare, &str)> = vec![
        (
            "CURRENT names an invalid version",
            |m| std::fs::write(m.join("CURRENT"), "../test-a\n").unwrap(),
            "CURRENT is empty or names an invalid version \"../test-a\"",
        ),
        (
            "CURRENT is empty",
            |m| std::fs::write(m.join("CURRENT"), "").unwrap(),
            "CURRENT is empty or names an invalid version \"\"",
        ),
        (
            "CURRENT cannot be read",
            |m| {
                std::fs::remove_file(m.join("CURRENT")).unwrap();
                std::fs::create_dir(m.join("CURRENT")).unwrap();
            },
            "CURRENT: Is a directory",
        ),
        (
            "model.json with a number out of range",
            |m| {
                let path = m.join("test-a").join("model.json");
                let text = std::fs::read_to_string(&path).unwrap();
                let changed = text.replacen("\"intercept\": ", "\"intercept\": 1e999, \"x\": ", 1);
                std::fs::write(&path, changed).unwrap();
            },
            "test-a/model.json is not a valid leadscore model: number out of range",
        ),
        (
            "model.json whose coefficients do not match its features",
            |m| {
                let path = m.join("test-a").join("model.json");
                let mut artifact: serde_json::Value =
                    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
                artifact["coefficients"].as_array_mut().unwrap().pop();
                std::fs::write(&path, artifact.to_string()).unwrap();
            },
            "coefficients for",
        ),
        (
            "model.json cannot be read",
            |m| {
                let path = m.join("test-a").join("model.json");
                std::fs::remove_file(&path).unwrap();
                std::fs::create_dir(&path).unwrap();
            },
            "cannot read model",
        ),
    ];
    for (name, prepare, expected) in cases {
        let models = registry(&[&f.a], Some("test-a"));
        prepare(models.path());
        let args = [
            "serve",
            "--models",
            path(models.path()),
            "--addr",
            "127.0.0.1:0",
        ];
        let err = check(refusal(name, &args, 1, expected));
        assert!(
            err.contains("error: cannot load the model in service: "),
            "{name}: {err}"
        );
    }

    // A model.json without read permission. root reads a file whatever its mode, so as root
    // the server runs as `nobody` (setpriv), with the registry opened up to it but for that
    // file; without setpriv the case is skipped, not faked.
    let models = registry(&[&f.a], Some("test-a"));
    let mut args = vec![
        "serve",
        "--models",
        path(models.path()),
        "--addr",
        "127.0.0.1:0",
    ];
    let mut command = BIN;
    if is_root() {
        let setpriv = Command::new("setpriv").arg("--help").output();
        if !setpriv.is_ok_and(|out| out.status.success()) {
            eprintln!("root without setpriv: the unreadable model.json case is skipped");
            return;
        }
        use std::os::unix::fs::PermissionsExt;
        for dir in [models.path().to_path_buf(), models.path().join("test-a")] {
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        command = "setpriv";
        let drop_root = ["--reuid=65534", "--regid=65534", "--clear-groups", BIN];
        args.splice(0..0, drop_root);
    }
    {
        use std::os::unix::fs::PermissionsExt;
        let artifact = models.path().join("test-a").join("model.json");
        std::fs::set_permissions(&artifact, std::fs::Permissions::from_mode(0o000)).unwrap();
    }
    let err = check(Refusal {
        program: command,
        ..refusal(
            "model.json without read permission",
            &args,
            1,
            "test-a/model.json: Permission denied",
        )
    });
    assert!(
        err.contains("error: cannot load the model in service: "),
        "{err}"
    );
}

/// Bytes that are not a valid request: `INVALID_ARGUMENT`, saying what is wrong (and, inside a
/// lead, which lead); an unknown method: `UNIMPLEMENTED`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_are_invalid_argument_saying_why() {
    let f = fixture();
    let models = registry(&[&f.a], Some("test-a"));
    let server = start_serving(models.path(), |_| {}).await;
    let mut nested = vec![0x4b; 101]; // groups of field 9, nested 101 deep
    nested.extend([0x4c; 101]);
    // A lead whose one map entry has a name that is not UTF-8.
    let bad_name: &[u8] = &[0x12, 0x05, 0x0a, 0x01, 0xff, 0x12, 0x00];
    let lead_with_bad_name = [&[0x0a, bad_name.len() as u8][..], bad_name].concat();
    // A good lead (one field the model knows: a lead with none is refused), as sent in a batch.
    let good_lead = prost::Message::encode_to_vec(&pb::Lead {
        lead_id: String::new(),
        fields: [(attribute_of_kind(&model(&f.a), "numeric"), text("12"))]
            .into_iter()
            .collect(),
    });
    let good_lead = [&[0x0a, good_lead.len() as u8][..], &good_lead].concat();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "ScoreLead",
            [&[0x10][..], &[0xff; 9], &[0x02]].concat(),
            "malformed request: bad varint",
        ),
        (
            "ScoreLead",
            vec![0x0a, 0x05, 0x01],
            "malformed request: truncated message",
        ),
        (
            "ScoreLead",
            vec![0x80, 0x80, 0x80, 0x80, 0x80, 0x01],
            "malformed request: field key out of range",
        ),
        (
            "ScoreLead",
            vec![0x00, 0x00],
            "malformed request: field number 0",
        ),
        (
            "ScoreLead",
            vec![0x0e],
            "malformed request: unsupported wire type",
        ),
        (
            "ScoreLead",
            vec![0x08, 0x01],
            "malformed request: field has the wrong wire type",
        ),
        (
            "ScoreLead",
            vec![0x4c],
            "malformed request: unexpected end group",
        ),
        (
            "ScoreLeads",
            nested,
            "malformed request: message nested too deeply",
        ),
        (
            "ScoreLead",
            vec![0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f],
            "malformed request: truncated message",
        ),
        (
            "ScoreLead",
            vec![0x0a, 0x03, 0x0a, 0x01, 0xff],
            "malformed request: string is not valid UTF-8",
        ),
        (
            "ScoreLead",
            lead_with_bad_name.clone(),
            "malformed request: field name is not valid UTF-8",
        ),
        (
            "ScoreLeads",
            [&good_lead[..], &lead_with_bad_name].concat(),
            "leads[1]: malformed request: field name is not valid UTF-8",
        ),
    ];
    for (method, bytes, expected) in cases {
        let status = raw_call(&server, method, bytes.clone()).await.unwrap_err();
        assert_eq!(
            status.code(),
            Code::InvalidArgument,
            "{method} {bytes:02x?}"
        );
        assert!(
            status.message().contains(expected),
            "{method} {bytes:02x?}: expected {expected:?} in {:?}",
            status.message()
        );
    }
    let status = raw_call(&server, "ScoreEverything", vec![])
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented);
    assert_eq!(status.message(), "no such method");
    server.stop().await;
}

/// What a caller without the right token is told, by the server and by `leadscore-bench load`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authentication_refusals_say_what_is_missing() {
    let f = fixture();
    let models = registry(&[&f.a], Some("test-a"));
    let server = start_serving(models.path(), |config| {
        config.auth_token = Some("refusal-s3cret".into());
    })
    .await;
    let mut client = server.client().await;
    let numeric = attribute_of_kind(&model(&f.a), "numeric");
    let lead = pb::Lead {
        lead_id: "L1".into(),
        fields: [(numeric, text("12"))].into_iter().collect(),
    };
    for (header, expected) in [
        (
            None,
            "missing authorization header (send `authorization: Bearer <token>`)",
        ),
        (Some("Bearer wrong"), "invalid bearer token"),
        (Some("Basic refusal-s3cret"), "invalid bearer token"),
        (Some("refusal-s3cret"), "invalid bearer token"),
    ] {
        let mut request = Request::new(score_request(lead.clone(), 0));
        if let Some(header) = header {
            request
                .metadata_mut()
                .insert("authorization", header.parse().unwrap());
        }
        let status = client.score_lead(request).await.unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{header:?}");
        assert_eq!(status.message(), expected, "{header:?}");
    }
    // The load generator without the token: every call fails, exit 1 with the first error.
    let data = path(&f.data).to_string();
    let url = server.url();
    let err = check(Refusal {
        program: BENCH,
        ..refusal(
            "leadscore-bench load: calls refused",
            &[
                "load",
                "--data",
                &data,
                "--id",
                "lead_id",
                "--exclude",
                "converted",
                "--target",
                &url,
                "--warmup",
                "0",
                "--duration",
                "0.2",
                "--rounds",
                "1",
                "--concurrency",
                "1",
            ],
            1,
            &format!("calls to {url} failed; first: "),
        )
    });
    assert!(err.contains("missing authorization header"), "{err}");
    // A token that no HTTP header can carry.
    check(Refusal {
        program: BENCH,
        env: vec![("LEADSCORE_AUTH_TOKEN", "tok\u{1}en".into())],
        ..refusal(
            "leadscore-bench load: a token with a control character",
            &[
                "load",
                "--data",
                &data,
                "--id",
                "lead_id",
                "--target",
                &url,
                "--warmup",
                "0",
                "--duration",
                "0.1",
                "--rounds",
                "1",
            ],
            1,
            "the auth token has characters an HTTP header cannot carry",
        )
    });
    server.stop().await;
}
