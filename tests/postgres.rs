//! Postgres in and out against a real server the tests start: a query's rows train the same
//! model as the CSV export of the same rows and score the same; types map as documented and an
//! unsupported one is refused naming its column; passwords come from PGPASSWORD or a password
//! file and never show; scores are written in one transaction that a type clash or a server
//! stopped mid-write leaves unwritten.

use crate::common::{run_to_exit, stderr};
use crate::support::postgres::PgServer;
use crate::warehouse::{Scores, create_table, leads, path, read_scores, scored, table_csv};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// `leadscore` with the server's password in PGPASSWORD (unless `env` says otherwise).
fn leadscore_pg(server: &PgServer, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_leadscore"));
    command
        .args(args)
        .env("RUST_LOG", "warn")
        .env("PGPASSWORD", &server.password)
        .env_remove("PGPASSFILE");
    for (key, value) in env {
        command.env(key, value);
    }
    run_to_exit(&format!("leadscore {}", args.join(" ")), command)
}

struct Loaded {
    dir: tempfile::TempDir,
    server: PgServer,
    training: PathBuf,
}

/// A server holding the sample training leads in table `leads` (typed columns).
fn loaded() -> Loaded {
    let dir = tempfile::tempdir().unwrap();
    let training = dir.path().join("training.csv");
    leads(&training, 6_000, 21, false, true, false);
    let table = dir.path().join("table.csv");
    table_csv(&training, &table);
    let server = PgServer::start();
    server.psql(&create_table("leads", false));
    server.psql(&format!(
        "\\copy leads FROM '{}' WITH (FORMAT csv, HEADER true)",
        table.display()
    ));
    Loaded {
        dir,
        server,
        training,
    }
}

fn train(models: &Path, data: &str, query: Option<&str>, server: &PgServer) -> Output {
    let mut args = vec!["train", "--data", data, "--target", "converted", "--id"];
    args.extend(["lead_id", "--date", "created_at"]);
    args.extend(["--models", path(models)]);
    if let Some(query) = query {
        args.extend(["--query", query]);
    }
    leadscore_pg(server, &args, &[])
}

fn model_json(models: &Path) -> serde_json::Value {
    let registry = leadscore::registry::Registry::new(models);
    let model = registry.load_current().unwrap();
    serde_json::to_value(&model.artifact).unwrap()
}

#[test]
fn a_query_trains_and_scores_as_its_csv_export() {
    let l = loaded();
    let (from_csv, from_pg) = (l.dir.path().join("csv"), l.dir.path().join("pg"));
    let output = train(&from_csv, path(&l.training), None, &l.server);
    assert!(output.status.success(), "{}", stderr(&output));
    let query = "SELECT * FROM leads ORDER BY lead_id;";
    let output = train(&from_pg, &l.server.url(), Some(query), &l.server);
    assert!(output.status.success(), "{}", stderr(&output));
    let (a, b) = (model_json(&from_csv), model_json(&from_pg));
    // The same model: every weight, the encoder, the holdout; only the data's name differs.
    for key in ["coefficients", "intercept", "encoder", "holdout", "grades"] {
        assert_eq!(a[key], b[key], "{key}");
    }
    assert_eq!(b["data"]["file"], l.server.url());
    assert_eq!(a["data"]["rows_read"], b["data"]["rows_read"]);

    // Types map: booleans, timestamps with a time zone (taken in UTC), varchar, real numbers,
    // bigints, NULLs — the scores are those of the CSV.
    let typed = "SELECT lead_id, created_at::timestamptz + interval '23 hours' AS created_at, \
                 source::varchar(40) AS source, industry, region, company_size::char(12) AS \
                 company_size, rep, employees, web_visits::bigint AS web_visits, \
                 emails_opened::numeric(10, 2) AS emails_opened, days_since_last_touch, \
                 CASE lower(demo_requested) WHEN 'yes' THEN true WHEN 'no' THEN false END AS \
                 demo_requested FROM leads";
    let expected = scored(&from_csv, &l.training, &[]);
    let url = l.server.url();
    let from_query = |command: &str, query: &str| {
        let args = [command, "--data", &url, "--query", query, "--models"];
        leadscore_pg(&l.server, &[&args[..], &[path(&from_csv)]].concat(), &[])
    };
    // A column whose name has more semicolons than the header has commas is read too.
    let typed = typed.replace(
        " FROM leads",
        r#", 1 AS "a;b;c;d;e;f;g;h;i;j;k;l;m;n;o" FROM leads"#,
    );
    let output = from_query("score", &typed);
    assert!(output.status.success(), "{}", stderr(&output));
    let got: Scores = read_scores(&String::from_utf8(output.stdout).unwrap(), "lead_id");
    assert_eq!(got, expected);

    // evaluate reads a query too.
    let output = from_query("evaluate", query);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(String::from_utf8_lossy(&output.stdout).contains("AUC"));
}

#[test]
fn refusals_name_the_column_and_never_show_the_password() {
    let l = loaded();
    let url = l.server.url();
    let models = l.dir.path().join("models");
    let args = |query: &'static str| {
        vec![
            "train".to_string(),
            "--data".into(),
            url.clone(),
            "--target".into(),
            "converted".into(),
            "--models".into(),
            path(&models).into(),
            "--query".into(),
            query.into(),
        ]
    };
    let run = |args: &[String], env: &[(&str, &str)]| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        leadscore_pg(&l.server, &args, env)
    };

    // An unsupported type: refused before reading, naming the column and its type.
    let output = run(
        &args("SELECT lead_id, converted, '{\"a\": 1}'::jsonb AS payload FROM leads"),
        &[],
    );
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert!(
        message.contains("column \"payload\"") && message.contains("jsonb"),
        "{message}"
    );

    // A query that would change data cannot: it runs read-only.
    let output = run(&args("DELETE FROM leads RETURNING lead_id, converted"), &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("read-only"), "{}", stderr(&output));
    assert_eq!(l.server.psql("SELECT count(*) FROM leads").trim(), "6000");

    // A wrong password: refused by the server, and not in the message.
    let secret = "not-the-password-7f3a";
    let output = run(&args("SELECT * FROM leads"), &[("PGPASSWORD", secret)]);
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert!(
        message.contains("password authentication failed"),
        "{message}"
    );
    assert!(!message.contains(secret), "{message}");

    // A password in the URL: refused, and not shown.
    let with_password = url.replace("@", &format!(":{secret}@"));
    let mut in_url = args("SELECT * FROM leads");
    in_url[2] = with_password;
    let output = run(&in_url, &[]);
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert!(
        message.contains("holds a password") && !message.contains(secret),
        "{message}"
    );

    // The password file: used when PGPASSWORD is not set; ignored when others can read it.
    let pgpass = l.dir.path().join("pgpass");
    std::fs::write(
        &pgpass,
        format!(
            "# leadscore tests\nother:1:*:*:wrong\n127.0.0.1:{}:postgres:{}:{}\n",
            l.server.port,
            crate::support::postgres::USER,
            l.server.password
        ),
    )
    .unwrap();
    let mode = |m| {
        std::fs::set_permissions(&pgpass, std::os::unix::fs::PermissionsExt::from_mode(m)).unwrap()
    };
    mode(0o600);
    let env = [("PGPASSWORD", ""), ("PGPASSFILE", path(&pgpass))];
    let output = run(&args("SELECT * FROM leads"), &env);
    assert!(output.status.success(), "{}", stderr(&output));
    mode(0o644);
    let output = run(&args("SELECT * FROM leads"), &env);
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert!(message.contains("readable by others"), "{message}");
    assert!(!message.contains(&l.server.password), "{message}");
}

#[test]
fn scores_are_written_in_one_transaction() {
    let l = loaded();
    let models = l.dir.path().join("models");
    let output = train(&models, path(&l.training), None, &l.server);
    assert!(output.status.success(), "{}", stderr(&output));
    let expected = scored(&models, &l.training, &[]);
    let url = l.server.url();
    let score_into = |server: &PgServer, table: &str| {
        leadscore_pg(
            server,
            &[
                "score",
                "--data",
                path(&l.training),
                "--models",
                path(&models),
                "--out",
                &url,
                "--table",
                table,
            ],
            &[],
        )
    };

    // Created when absent; every lead, with the model version and one scoring time.
    let output = score_into(&l.server, "scores");
    assert!(output.status.success(), "{}", stderr(&output));
    let rows = l.server.psql(
        "COPY (SELECT lead_id, probability, score, grade FROM scores) TO STDOUT \
         WITH (FORMAT csv, HEADER true)",
    );
    assert_eq!(read_scores(&rows, "lead_id"), expected);
    let version = model_json(&models)["model_version"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        l.server
            .psql("SELECT count(DISTINCT model_version) || ' ' || min(model_version) || ' ' || count(DISTINCT scored_at) FROM scores")
            .trim(),
        format!("1 {version} 1")
    );

    // A type clash with an existing table: refused by the server, nothing written.
    l.server.psql(
        "CREATE TABLE clash (lead_id integer, probability double precision, score integer, \
         grade text, model_version text, scored_at timestamptz); \
         INSERT INTO clash VALUES (1, 0.5, 50, 'B', 'old', now())",
    );
    let output = score_into(&l.server, "clash");
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert!(
        message.contains("nothing was written") && message.contains("lead_id"),
        "{message}"
    );
    assert_eq!(l.server.psql("SELECT count(*) FROM clash").trim(), "1");

    // The server stopped mid-write (the last lead's INSERT held by a trigger, the batches
    // before it sent): after a restart the table holds nothing of it.
    let last = expected
        .iter()
        .min_by(|a, b| a.1.0.total_cmp(&b.1.0))
        .map(|(id, _)| id.clone())
        .unwrap();
    l.server.psql(&format!(
        "CREATE TABLE held (lead_id text NOT NULL, probability double precision NOT NULL, \
         score integer NOT NULL, grade text NOT NULL, model_version text NOT NULL, \
         scored_at timestamptz NOT NULL); \
         CREATE FUNCTION hold() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
         IF NEW.lead_id = '{last}' THEN PERFORM pg_sleep(300); END IF; RETURN NEW; END $$; \
         CREATE TRIGGER hold BEFORE INSERT ON held FOR EACH ROW EXECUTE FUNCTION hold()"
    ));
    let mut child = Command::new(env!("CARGO_BIN_EXE_leadscore"))
        .args([
            "score",
            "--data",
            path(&l.training),
            "--models",
            path(&models),
        ])
        .args(["--out", &url, "--table", "held"])
        .env("PGPASSWORD", &l.server.password)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while l
        .server
        .psql("SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep'")
        .trim()
        != "1"
    {
        assert!(
            Instant::now() < deadline,
            "the write never reached the held lead"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    l.server.stop();
    let status = child.wait().unwrap();
    let mut message = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut message).unwrap();
    assert_eq!(status.code(), Some(1), "{message}");
    assert!(message.contains("nothing was written"), "{message}");
    l.server.restart();
    assert_eq!(l.server.psql("SELECT count(*) FROM held").trim(), "0");
}

/// The flags' refusals that need no server: each says what to give instead.
#[test]
fn database_flags_are_refused_when_incomplete() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("leads.csv");
    leads(&data, 600, 5, false, false, false);
    let models = dir.path().join("models");
    let m = path(&models);
    // Trained without --id: the SQL export needs to be told the id column.
    let output = crate::common::leadscore(&[
        "train",
        "--data",
        path(&data),
        "--target",
        "converted",
        "--models",
        m,
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let d = path(&data);
    let cases: &[(&[&str], i32, &str)] = &[
        (
            &[
                "score",
                "--data",
                d,
                "--models",
                m,
                "--out",
                "postgres://u@127.0.0.1/db",
            ],
            1,
            "name the table to write with --table",
        ),
        (
            &["score", "--data", d, "--models", m, "--table", "t"],
            1,
            "--table names a table of --out postgres://",
        ),
        (
            &[
                "train",
                "--data",
                "postgres://u@127.0.0.1/db",
                "--target",
                "c",
            ],
            1,
            "give the rows to read with --query",
        ),
        (
            &["score", "--data", d, "--models", m, "--query", "SELECT 1"],
            1,
            "is a file: give --data postgres://",
        ),
        (
            &[
                "score",
                "--data",
                "postgres://u@127.0.0.1:1/db",
                "--query",
                "SELECT 1",
                "--models",
                m,
            ],
            1,
            "cannot connect to postgres://u@127.0.0.1:1/db",
        ),
        (&["models", "export", "--models", m], 2, "--sql"),
        (
            &[
                "models",
                "export",
                "--sql",
                "--dialect",
                "oracle",
                "--models",
                m,
            ],
            2,
            "oracle",
        ),
        (
            &["models", "export", "--sql", "--models", m],
            1,
            "has no id column (it was trained without --id); name the table's lead id column with --id",
        ),
    ];
    for (args, code, message) in cases {
        let output = crate::common::leadscore(args);
        assert_eq!(
            output.status.code(),
            Some(*code),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(
            stderr(&output).contains(message),
            "{args:?}: {}",
            stderr(&output)
        );
    }
    // With --id it is written, to a file atomically.
    let out = dir.path().join("score.sql");
    let output = crate::common::leadscore(&[
        "models",
        "export",
        "--sql",
        "--models",
        m,
        "--id",
        "lead_id",
        "--out",
        path(&out),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        std::fs::read_to_string(&out)
            .unwrap()
            .contains("\"lead_id\" AS ls_id")
    );
}
