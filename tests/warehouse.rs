//! `models export --sql`: the query, run in a real PostgreSQL server and in DuckDB over 10,000
//! sample leads (with missing values, missing-value tokens, labels spelled in other cases and
//! spacings, pooled and unseen labels, out-of-range numbers, yes/no values in every spelling),
//! gives `leadscore score`'s probability within 1e-9 and its score and grade exactly; so does a
//! model that ages its scores, and a numeric shape (against the spec's formula). The other
//! dialects' text is checked against their rules.

use crate::common::{leadscore, stderr};
use crate::support::{duckdb, postgres::PgServer};
use leadscore::encoder::{Encoding, Shape};
use leadscore::model::{Coefficient, Model, ModelArtifact};
use leadscore::registry::Registry;
use leadscore::sample::SampleOptions;
use leadscore::train::{HorizonConfig, TrainConfig, train};
use leadscore::warehouse::{AgeSource, Dialect, SqlOptions, export_sql};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The table's columns and their SQL types (PostgreSQL; DuckDB's are alike): numbers of
/// three kinds, text, a date.
const COLUMNS: &[(&str, &str)] = &[
    ("lead_id", "TEXT"),
    ("created_at", "DATE"),
    ("source", "TEXT"),
    ("industry", "TEXT"),
    ("region", "TEXT"),
    ("company_size", "TEXT"),
    ("rep", "TEXT"),
    ("employees", "DOUBLE PRECISION"),
    ("web_visits", "INTEGER"),
    ("emails_opened", "BIGINT"),
    ("days_since_last_touch", "NUMERIC"),
    ("demo_requested", "TEXT"),
    ("converted", "TEXT"),
    ("closed_at", "DATE"),
];

/// (probability, score, grade) by lead id.
pub(crate) type Scores = HashMap<String, (f64, u32, String)>;

/// Sample leads with the oddities the query must read as the encoder does. Training leads
/// get a rare source (pooled) and some missing yes/no values; scored leads get everything.
/// `curved`: `days_since_last_touch` has a curved effect, which a model trained with shapes
/// learns as a spline.
pub(crate) fn leads(
    path: &Path,
    rows: usize,
    seed: u64,
    closed_dates: bool,
    training: bool,
    curved: bool,
) {
    leadscore::sample::write(
        path,
        &SampleOptions {
            rows,
            seed,
            closed_dates,
            curved,
            ..SampleOptions::default()
        },
    )
    .unwrap();
    let mut reader = csv::Reader::from_path(path).unwrap();
    let headers = reader.headers().unwrap().clone();
    let column = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let mut records: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    for (i, record) in records.iter_mut().enumerate() {
        let mut cells: Vec<String> = record.iter().map(str::to_string).collect();
        let set = |cells: &mut Vec<String>, name: &str, value: &str| {
            cells[column(name)] = value.to_string()
        };
        if training {
            match i % 600 {
                0 => set(&mut cells, "source", "Trade Show"),
                1..=20 => set(&mut cells, "demo_requested", ""),
                _ => {}
            }
        } else {
            match i % 40 {
                0 => set(&mut cells, "source", "Podcast"),
                1 => set(&mut cells, "source", "  paid   SEARCH "),
                2 => set(&mut cells, "source", "trade show"),
                3 => set(&mut cells, "industry", "NA"),
                4 => set(&mut cells, "industry", " n/a "),
                5 => set(&mut cells, "region", "Null"),
                6 => set(&mut cells, "web_visits", "5000"),
                7 => set(&mut cells, "web_visits", "-40"),
                8 => set(&mut cells, "employees", ""),
                9 => set(&mut cells, "days_since_last_touch", "99999"),
                10 => set(&mut cells, "demo_requested", "TRUE"),
                11 => set(&mut cells, "demo_requested", " f "),
                12 => set(&mut cells, "demo_requested", ""),
                13 => set(&mut cells, "demo_requested", "1.0"),
                14 => set(&mut cells, "demo_requested", "Y"),
                15 => set(&mut cells, "rep", "ANA\tsilva"),
                16 => set(&mut cells, "company_size", ""),
                17 => set(&mut cells, "emails_opened", "0"),
                _ => {}
            }
        }
        *record = csv::StringRecord::from(cells);
    }
    let mut writer = csv::Writer::from_path(path).unwrap();
    writer.write_record(&headers).unwrap();
    for record in records {
        writer.write_record(&record).unwrap();
    }
    writer.flush().unwrap();
}

/// The leads as a table file for `COPY`: every column of [`COLUMNS`] (an absent one empty),
/// numbers' missing-value tokens as empty fields (NULL), text as it is.
pub(crate) fn table_csv(leads: &Path, out: &Path) {
    let mut reader = csv::Reader::from_path(leads).unwrap();
    let headers = reader.headers().unwrap().clone();
    let mut writer = csv::Writer::from_path(out).unwrap();
    writer.write_record(COLUMNS.iter().map(|c| c.0)).unwrap();
    for record in reader.records() {
        let record = record.unwrap();
        let row: Vec<String> = COLUMNS
            .iter()
            .map(|(name, kind)| {
                let cell = headers
                    .iter()
                    .position(|h| h == *name)
                    .map_or("", |i| &record[i]);
                let number = !matches!(*kind, "TEXT" | "DATE");
                if number && cell == "NA" { "" } else { cell }.to_string()
            })
            .collect();
        writer.write_record(&row).unwrap();
    }
    writer.flush().unwrap();
}

pub(crate) fn create_table(name: &str, duck: bool) -> String {
    let columns: Vec<String> = COLUMNS
        .iter()
        .map(|(c, kind)| {
            let kind = match (*kind, duck) {
                ("DOUBLE PRECISION", true) => "DOUBLE",
                ("NUMERIC", true) => "DECIMAL(12, 2)",
                ("TEXT", true) => "VARCHAR",
                (kind, _) => kind,
            };
            format!("\"{c}\" {kind}")
        })
        .collect();
    format!("CREATE TABLE {name} ({})", columns.join(", "))
}

/// Trains on `training` (with shapes when `shapes`) and puts the model in service in `models`.
fn trained(training: &Path, models: &Path, horizon: Option<HorizonConfig>, shapes: bool) -> Model {
    let mut config = TrainConfig::new(training, "converted");
    config.encoder.shapes = shapes;
    config.id = Some("lead_id".into());
    config.date = Some("created_at".into());
    config.horizon = horizon;
    let artifact = train(&config, &mut |_| {}).unwrap().artifact;
    let registry = Registry::new(models);
    registry.write_version(&artifact).unwrap();
    registry.promote(&artifact.model_version).unwrap();
    Model::new(artifact).unwrap()
}

/// `leadscore score`'s numbers for every lead of `data`.
pub(crate) fn scored(models: &Path, data: &Path, extra: &[&str]) -> Scores {
    let out = data.with_extension("scored.csv");
    let mut args = vec!["score", "--data", path(data), "--models", path(models)];
    args.extend(["--out", path(&out), "--explain", "0"]);
    args.extend(extra);
    let output = leadscore(&args);
    assert!(output.status.success(), "{}", stderr(&output));
    read_scores(&std::fs::read_to_string(&out).unwrap(), "lead_id")
}

pub(crate) fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Rows of a CSV with the id column, `probability`, `score` and `grade`; NULL (empty)
/// probabilities are left out.
pub(crate) fn read_scores(text: &str, id: &str) -> Scores {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader.headers().unwrap().clone();
    let at = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no column {name} in {headers:?}"))
    };
    let (i, p, s, g) = (at(id), at("probability"), at("score"), at("grade"));
    reader
        .records()
        .map(|r| r.unwrap())
        .filter(|r| !r[p].is_empty())
        .map(|r| {
            (
                r[i].to_string(),
                (
                    r[p].parse().unwrap(),
                    r[s].parse().unwrap(),
                    r[g].to_string(),
                ),
            )
        })
        .collect()
}

/// The largest |Δp| between the engine's and `leadscore score`'s numbers, after checking
/// that every lead is there with the same score and grade.
fn compare(engine: &str, got: &Scores, expected: &Scores) -> f64 {
    assert_eq!(got.len(), expected.len(), "{engine}: leads scored");
    let mut worst: f64 = 0.0;
    for (id, (p, score, grade)) in expected {
        let (q, s, g) = got
            .get(id)
            .unwrap_or_else(|| panic!("{engine}: lead {id} missing"));
        worst = worst.max((p - q).abs());
        assert!(
            (p - q).abs() <= 1e-9,
            "{engine}: lead {id}: {q} against {p}"
        );
        assert_eq!((s, g), (score, grade), "{engine}: lead {id} (p = {p})");
    }
    worst
}

fn export(models: &Path, dialect: &str, extra: &[&str]) -> String {
    let mut args = vec!["models", "export", "--sql", "--dialect", dialect];
    args.extend(["--table", "leads", "--models", path(models)]);
    args.extend(extra);
    let output = leadscore(&args);
    assert!(output.status.success(), "{}", stderr(&output));
    String::from_utf8(output.stdout).unwrap()
}

/// Loads the table file into a fresh PostgreSQL table `leads` and runs `sql` over it.
fn in_postgres(server: &PgServer, table: &Path, sql: &str) -> String {
    server.psql("DROP TABLE IF EXISTS leads");
    server.psql(&create_table("leads", false));
    server.psql(&format!(
        "\\copy leads FROM '{}' WITH (FORMAT csv, HEADER true)",
        table.display()
    ));
    server.psql(&format!(
        "COPY ({}) TO STDOUT WITH (FORMAT csv, HEADER true)",
        sql.trim_end()
    ))
}

fn in_duckdb(dir: &Path, table: &Path, sql: &str) -> String {
    duckdb::query(
        dir,
        &format!(
            "{};\nCOPY leads FROM '{}' (HEADER true);\n{}",
            create_table("leads", true),
            table.display(),
            sql.trim_end()
        ),
    )
}

struct Fixture {
    dir: tempfile::TempDir,
    models: PathBuf,
    scoring: PathBuf,
    table: PathBuf,
    model: Model,
}

/// Training and scoring leads, and a model trained on the first; `shaped`: leads with a curved
/// effect and a model trained with shapes (it must hold at least one).
fn fixture(closed_dates: bool, horizon: Option<HorizonConfig>, shaped: bool) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let training = dir.path().join("training.csv");
    leads(&training, 6_000, 11, closed_dates, true, shaped);
    let scoring = dir.path().join("scoring.csv");
    leads(&scoring, 10_000, 12, closed_dates, false, shaped);
    let table = dir.path().join("table.csv");
    table_csv(&scoring, &table);
    let models = dir.path().join("models");
    let model = trained(&training, &models, horizon, shaped);
    assert_eq!(model.encoder().has_shapes(), shaped, "shapes in the model");
    Fixture {
        dir,
        models,
        scoring,
        table,
        model,
    }
}

#[test]
fn the_sql_scores_as_leadscore_score_in_postgres_and_duckdb() {
    let f = fixture(false, None, true);
    // The oddities are in the model: a pooled source, missing indicators of each kind.
    let encoder = f.model.encoder();
    let source = encoder
        .attributes
        .iter()
        .find(|a| a.name == "source")
        .unwrap();
    let Encoding::Categorical { pooled, .. } = &source.encoding else {
        panic!("source is a category")
    };
    assert_eq!(pooled, &["trade show".to_string()]);
    let demo = encoder
        .attributes
        .iter()
        .find(|a| a.name == "demo_requested")
        .unwrap();
    assert_eq!(demo.width(), 2, "yes/no with a missing indicator");

    let expected = scored(&f.models, &f.scoring, &[]);
    assert_eq!(expected.len(), 10_000);

    let server = PgServer::start();
    let sql = export(&f.models, "postgres", &[]);
    let got = read_scores(&in_postgres(&server, &f.table, &sql), "lead_id");
    let worst_pg = compare("PostgreSQL", &got, &expected);

    // A BOOLEAN column reads as its text does.
    server.psql(
        "CREATE TABLE flags AS SELECT * FROM leads WHERE lower(trim(demo_requested)) IN ('yes', 'no');
         ALTER TABLE flags ALTER COLUMN demo_requested TYPE boolean
             USING lower(trim(demo_requested)) = 'yes'",
    );
    let flags = sql.replace("FROM \"leads\"", "FROM \"flags\"");
    let out = server.psql(&format!(
        "COPY ({}) TO STDOUT WITH (FORMAT csv, HEADER true)",
        flags.trim_end()
    ));
    let flagged = read_scores(&out, "lead_id");
    assert!(flagged.len() > 8_000, "{}", flagged.len());
    for (id, numbers) in &flagged {
        assert_eq!(Some(numbers), got.get(id), "{id}");
    }

    // A yes/no value that is neither: that lead's numbers are NULL, the others' unchanged.
    server.psql("UPDATE leads SET demo_requested = 'maybe' WHERE lead_id = 'L0000100'");
    let out = server.psql(&format!(
        "COPY ({}) TO STDOUT WITH (FORMAT csv, HEADER true)",
        sql.trim_end()
    ));
    let line = out.lines().find(|l| l.starts_with("L0000100,")).unwrap();
    assert_eq!(line, "L0000100,,,");
    assert_eq!(read_scores(&out, "lead_id").len(), 9_999);
    drop(server);

    let duck = export(&f.models, "duckdb", &[]);
    let got = read_scores(&in_duckdb(f.dir.path(), &f.table, &duck), "lead_id");
    let worst_duck = compare("DuckDB", &got, &expected);
    eprintln!(
        "parity on 10,000 leads: max |Δp| PostgreSQL {worst_pg:.3e}, DuckDB {worst_duck:.3e}"
    );
}

/// A model that ages its scores: the age from the created date against `--as-of` (both
/// engines) or from an `age_days` column (DuckDB), as `score --as-of` reads it.
#[test]
fn the_sql_ages_scores_as_leadscore_score() {
    let mut horizon = HorizonConfig::new(90, "closed_at");
    horizon.period_days = Some(30);
    let f = fixture(true, Some(horizon), true);
    assert!(f.model.ages());
    let expected = scored(&f.models, &f.scoring, &["--as-of", "2025-12-31"]);

    let server = PgServer::start();
    let sql = export(&f.models, "postgres", &["--as-of", "2025-12-31"]);
    assert!(sql.contains("CAST('2025-12-31' AS DATE)"));
    let worst_pg = compare(
        "PostgreSQL",
        &read_scores(&in_postgres(&server, &f.table, &sql), "lead_id"),
        &expected,
    );
    drop(server);
    let duck = export(&f.models, "duckdb", &["--as-of", "2025-12-31"]);
    let worst_duck = compare(
        "DuckDB",
        &read_scores(&in_duckdb(f.dir.path(), &f.table, &duck), "lead_id"),
        &expected,
    );

    // Ages given as days: `score` reads an age_days column first; so does `--age age-days`.
    let aged = f.dir.path().join("aged.csv");
    let text = std::fs::read_to_string(&f.scoring).unwrap();
    let mut lines = text.lines();
    let mut with_age = format!("{},age_days\n", lines.next().unwrap());
    for (i, line) in lines.enumerate() {
        with_age.push_str(&format!("{line},{}\n", (i * 7) % 400));
    }
    std::fs::write(&aged, with_age).unwrap();
    let expected_aged = scored(&f.models, &aged, &["--as-of", "2025-12-31"]);
    let duck = export(&f.models, "duckdb", &["--age", "age-days"]);
    assert!(!duck.contains("CURRENT_DATE") && duck.contains("\"age_days\""));
    let table = f.dir.path().join("aged-table.csv");
    table_csv(&f.scoring, &table);
    let mut rows = String::new();
    for (i, line) in std::fs::read_to_string(&table).unwrap().lines().enumerate() {
        let age = if i == 0 {
            "age_days".to_string()
        } else {
            ((i - 1) * 7 % 400).to_string()
        };
        rows.push_str(&format!("{line},{age}\n"));
    }
    std::fs::write(&table, rows).unwrap();
    let script = format!(
        "{};\nALTER TABLE leads ADD COLUMN age_days INTEGER;\nCOPY leads FROM '{}' (HEADER true);\n{}",
        create_table("leads", true),
        table.display(),
        duck.trim_end()
    );
    let worst_days = compare(
        "DuckDB (age_days)",
        &read_scores(&duckdb::query(f.dir.path(), &script), "lead_id"),
        &expected_aged,
    );
    // The ages matter: the same leads at other ages score differently.
    let moved = expected
        .iter()
        .filter(|(id, (p, ..))| (expected_aged[*id].0 - p).abs() > 1e-6)
        .count();
    assert!(moved > 5_000, "{moved}");
    eprintln!(
        "aging parity: max |Δp| PostgreSQL {worst_pg:.3e}, DuckDB {worst_duck:.3e}, \
         DuckDB with age_days {worst_days:.3e}"
    );
}

/// The spline columns of a shape, straight from the spec (the shared SPLINE spec: Harrell's
/// restricted cubic spline), for the winsorised value `v`.
fn spline_reference(knots: &[f64], v: f64) -> Vec<f64> {
    let k = knots.len();
    let p = |u: f64| u.max(0.0);
    let (t1, tk1, tk) = (knots[0], knots[k - 2], knots[k - 1]);
    (0..k - 2)
        .map(|j| {
            let tj = knots[j];
            (p(v - tj).powi(3) - p(v - tk1).powi(3) * (tk - tj) / (tk - tk1)
                + p(v - tk).powi(3) * (tk1 - tj) / (tk - tk1))
                / ((tk - t1) * (tk - t1))
        })
        .collect()
}

/// A numeric shape (not yet fitted by this branch's encoder: built by hand into a trained
/// model) scores in both engines as the spec's formula does.
#[test]
fn the_sql_of_a_numeric_shape_follows_the_spec() {
    let f = fixture(false, None, false);
    let linear = &f.model;
    let table = leadscore::data::read_csv(&f.scoring).unwrap();
    let columns = table.attribute_columns(linear.fields()).unwrap();
    let a = linear
        .encoder()
        .attributes
        .iter()
        .position(|a| a.name == "web_visits")
        .unwrap();
    let Encoding::Numeric {
        lower_limit,
        upper_limit,
        min,
        max,
        missing_indicator,
        ..
    } = linear.encoder().attributes[a].encoding
    else {
        panic!("web_visits is a number")
    };
    assert!(missing_indicator);
    let (low, high) = (lower_limit.unwrap_or(min), upper_limit.unwrap_or(max));
    let knots = vec![1.0, 3.0, 4.0, 5.0, 8.0];
    let weights = [0.4, -0.3, 0.2];
    let values: Vec<Option<f64>> = (0..table.rows())
        .map(|row| {
            let cell = table.column(columns[a].unwrap()).get(row);
            leadscore::schema::parse_number(cell).map(|v| v.clamp(low, high))
        })
        .collect();
    let splines: Vec<Vec<f64>> = values
        .iter()
        .flatten()
        .map(|&v| spline_reference(&knots, v))
        .collect();
    let n = splines.len() as f64;
    let centers: Vec<f64> = (0..3)
        .map(|j| splines.iter().map(|r| r[j]).sum::<f64>() / n)
        .collect();
    let scales: Vec<f64> = (0..3)
        .map(|j| {
            let var = splines
                .iter()
                .map(|r| (r[j] - centers[j]).powi(2))
                .sum::<f64>()
                / n;
            if var > 0.0 && var.is_finite() {
                var.sqrt()
            } else {
                1.0
            }
        })
        .collect();

    // The artifact with the shape: three spline columns after web_visits' missing indicator.
    let mut artifact: ModelArtifact = linear.artifact.clone();
    let shape = Shape {
        knots: knots.clone(),
        centers: centers.clone(),
        scales: scales.clone(),
    };
    let attribute = &mut artifact.encoder.attributes[a];
    let Encoding::Numeric { shape: slot, .. } = &mut attribute.encoding else {
        unreachable!()
    };
    *slot = Some(shape);
    let at = attribute.offset + 2;
    for (j, w) in weights.iter().enumerate() {
        artifact.coefficients.insert(
            at + j,
            Coefficient {
                feature: format!("web_visits (shape {})", j + 1),
                weight: *w,
                mean: 0.0,
            },
        );
    }
    for later in &mut artifact.encoder.attributes[a + 1..] {
        later.offset += 3;
    }
    // The shape is in the artifact as the spec spells it.
    let json = serde_json::to_value(&artifact).unwrap();
    assert_eq!(
        json["encoder"]["attributes"][a]["encoding"]["shape"]["knots"],
        serde_json::json!(knots)
    );

    // The reference: the linear model's log-odds plus the spline terms, by the spec.
    let mut expected = Scores::new();
    let ids = table.column(table.column_index("lead_id").unwrap());
    for (row, value) in values.iter().enumerate() {
        let mut features = vec![0.0; linear.encoder().width()];
        let mut readings = Vec::new();
        linear
            .encoder()
            .encode_row(
                |i| match columns[i] {
                    Some(c) => leadscore::encoder::RawValue::Text(table.column(c).get(row)),
                    None => leadscore::encoder::RawValue::Missing,
                },
                &mut features,
                &mut readings,
            )
            .unwrap();
        let mut logit = linear.logit(&features);
        if let Some(v) = *value {
            let r = spline_reference(&knots, v);
            for j in 0..3 {
                logit += weights[j] * ((r[j] - centers[j]) / scales[j]);
            }
        }
        let p = leadscore::model::sigmoid(logit);
        let score = (p * 100.0).round().clamp(1.0, 99.0) as u32;
        expected.insert(
            ids.get(row).to_string(),
            (p, score, linear.grade(p).to_string()),
        );
    }
    // The shape moves probabilities: the check below is not the linear model's.
    let plain = scored(&f.models, &f.scoring, &[]);
    assert!(
        expected
            .iter()
            .filter(|(id, v)| (plain[*id].0 - v.0).abs() > 1e-4)
            .count()
            > 1_000
    );

    let options = |dialect| SqlOptions {
        dialect,
        table: "leads".into(),
        id_column: None,
        as_of: None,
        age: AgeSource::Created,
    };
    let server = PgServer::start();
    let sql = export_sql(&artifact, &options(Dialect::Postgres)).unwrap();
    assert_eq!(
        sql.matches("POWER(GREATEST(").count(),
        9,
        "three cubes per column"
    );
    let worst_pg = compare(
        "PostgreSQL",
        &read_scores(&in_postgres(&server, &f.table, &sql), "lead_id"),
        &expected,
    );
    drop(server);
    let sql = export_sql(&artifact, &options(Dialect::Duckdb)).unwrap();
    let worst_duck = compare(
        "DuckDB",
        &read_scores(&in_duckdb(f.dir.path(), &f.table, &sql), "lead_id"),
        &expected,
    );
    eprintln!("shape parity: max |Δp| PostgreSQL {worst_pg:.3e}, DuckDB {worst_duck:.3e}");
}

/// How a dialect writes text and quoted names (the rules checked below).
struct Rules {
    dialect: Dialect,
    /// Inside '…': a backslash escapes the next character.
    backslash_in_text: bool,
    /// Inside '…': '' is a quote.
    doubled_quote_in_text: bool,
    /// The quote around names, and whether a backslash (else a doubled quote) escapes it.
    name_quote: char,
    backslash_in_name: bool,
    /// Every function the query may call, and every type it may cast to.
    functions: &'static [&'static str],
    types: &'static [&'static str],
}

/// Reads `sql` by `rules`: each literal and quoted name must end, parentheses must pair,
/// nothing may be quoted with a character the dialect does not quote with; returns the text
/// literals, the names and the words called as functions or named as CAST types.
fn lex(sql: &str, rules: &Rules) -> (Vec<String>, Vec<String>, Vec<String>, Vec<String>) {
    let (mut texts, mut names, mut calls, mut types) = (vec![], vec![], vec![], vec![]);
    let chars: Vec<char> = sql.chars().collect();
    let (mut i, mut depth) = (0, 0i32);
    let mut last_word = String::new();
    let mut words: Vec<String> = Vec::new();
    while i < chars.len() {
        let c = chars[i];
        if c == '-' && chars.get(i + 1) == Some(&'-') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            continue;
        }
        if c == '\'' || c == rules.name_quote {
            let quote = c;
            let (backslash, doubled) = if c == '\'' {
                (rules.backslash_in_text, rules.doubled_quote_in_text)
            } else {
                (rules.backslash_in_name, !rules.backslash_in_name)
            };
            let mut value = String::new();
            i += 1;
            loop {
                let Some(&d) = chars.get(i) else {
                    panic!("{:?}: unterminated {quote} literal", rules.dialect)
                };
                if backslash && d == '\\' {
                    value.push(chars[i + 1]);
                    i += 2;
                } else if d == quote && doubled && chars.get(i + 1) == Some(&quote) {
                    value.push(quote);
                    i += 2;
                } else if d == quote {
                    i += 1;
                    break;
                } else {
                    value.push(d);
                    i += 1;
                }
            }
            if quote == '\'' {
                &mut texts
            } else {
                &mut names
            }
            .push(value);
            last_word.clear();
            continue;
        }
        assert!(
            !matches!(c, '"' | '`'),
            "{:?}: {c} is not a quote in this dialect",
            rules.dialect
        );
        assert!(
            !(c == ':' && chars.get(i + 1) == Some(&':')),
            "{:?}: a :: cast",
            rules.dialect
        );
        if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            last_word = chars[start..i].iter().collect();
            // A type follows AS in a CAST; the query's own aliases are lower-case.
            let upper = last_word.chars().all(|c| !c.is_ascii_lowercase());
            if upper && words.last().is_some_and(|w| w == "AS") {
                types.push(last_word.clone());
            }
            words.push(last_word.clone());
            continue;
        }
        match c {
            '(' => {
                depth += 1;
                if !last_word.is_empty()
                    && !matches!(
                        last_word.as_str(),
                        "IN" | "AND" | "FROM" | "THEN" | "ELSE" | "WHEN" | "AS"
                    )
                {
                    calls.push(last_word.clone());
                }
            }
            ')' => depth -= 1,
            _ => {}
        }
        assert!(depth >= 0, "{:?}: unbalanced parentheses", rules.dialect);
        if !c.is_whitespace() {
            last_word.clear();
            words.push(c.to_string());
        }
        i += 1;
    }
    assert_eq!(depth, 0, "{:?}: unbalanced parentheses", rules.dialect);
    (texts, names, calls, types)
}

/// BigQuery, Spark SQL and Snowflake (no engine here): the text follows each one's rules for
/// quoting text and names, calls only functions each one has (with its argument order for the
/// day difference and no `g` flag), and casts only to each one's type names.
#[test]
fn the_other_dialects_follow_their_rules() {
    let f = fixture(
        true,
        {
            let mut h = HorizonConfig::new(90, "closed_at");
            h.period_days = Some(30);
            Some(h)
        },
        true,
    );
    // Names and labels that need escaping in every dialect.
    let mut artifact = f.model.artifact.clone();
    let rep = artifact
        .encoder
        .attributes
        .iter_mut()
        .find(|a| a.name == "rep")
        .unwrap();
    rep.name = "Rep's `name` \"x\" \\".into();
    if let Encoding::Categorical { levels, .. } = &mut rep.encoding {
        levels[0] = "o'brien \\ \"jr\"".into();
    }
    if let Some(aging) = &mut artifact.aging {
        aging.interactions = aging
            .interactions
            .iter()
            .map(|i| {
                if i == "rep" {
                    "Rep's `name` \"x\" \\".to_string()
                } else {
                    i.clone()
                }
            })
            .collect();
    }
    let common = [
        "CAST",
        "LEAST",
        "GREATEST",
        "EXP",
        "FLOOR",
        "LOWER",
        "TRIM",
        "REGEXP_REPLACE",
        "POWER",
    ];
    let dialects = [
        (
            Rules {
                dialect: Dialect::Bigquery,
                backslash_in_text: true,
                doubled_quote_in_text: false,
                name_quote: '`',
                backslash_in_name: true,
                functions: &["DATE_DIFF"],
                types: &["FLOAT64", "STRING", "INT64", "DATE"],
            },
            "DATE_DIFF(CAST('2025-12-31' AS DATE), CAST(`created_at` AS DATE), DAY)",
        ),
        (
            Rules {
                dialect: Dialect::Spark,
                backslash_in_text: true,
                doubled_quote_in_text: false,
                name_quote: '`',
                backslash_in_name: false,
                functions: &["DATEDIFF"],
                types: &["DOUBLE", "STRING", "INTEGER", "DATE"],
            },
            "DATEDIFF(CAST('2025-12-31' AS DATE), CAST(`created_at` AS DATE))",
        ),
        (
            Rules {
                dialect: Dialect::Snowflake,
                backslash_in_text: true,
                doubled_quote_in_text: true,
                name_quote: '"',
                backslash_in_name: false,
                functions: &["DATEDIFF"],
                types: &["DOUBLE", "VARCHAR", "INTEGER", "DATE"],
            },
            "DATEDIFF(day, CAST(\"created_at\" AS DATE), CAST('2025-12-31' AS DATE))",
        ),
    ];
    for (rules, day_difference) in dialects {
        let sql = export_sql(
            &artifact,
            &SqlOptions {
                dialect: rules.dialect,
                table: "crm.leads".into(),
                id_column: None,
                as_of: Some(chrono::NaiveDate::from_ymd_opt(2025, 12, 31).unwrap()),
                age: AgeSource::Created,
            },
        )
        .unwrap();
        let (texts, names, calls, types) = lex(&sql, &rules);
        for call in &calls {
            assert!(
                common.contains(&call.as_str()) || rules.functions.contains(&call.as_str()),
                "{:?} calls {call}",
                rules.dialect
            );
        }
        for t in &types {
            assert!(
                rules.types.contains(&t.as_str()),
                "{:?} casts to {t}",
                rules.dialect
            );
        }
        assert!(sql.contains(day_difference), "{:?}: {sql}", rules.dialect);
        // Every name read back is a column of the model (or the table's parts), spelled
        // exactly; every label is in the text as it is.
        assert!(
            names.contains(&"Rep's `name` \"x\" \\".to_string()),
            "{:?}",
            rules.dialect
        );
        assert!(names.contains(&"crm".to_string()) && names.contains(&"leads".to_string()));
        assert!(
            texts.contains(&"o'brien \\ \"jr\"".to_string()),
            "{:?}",
            rules.dialect
        );
        // Whitespace folded by a regular expression \s+, replacing every match (no flag).
        assert!(texts.contains(&"\\s+".to_string()), "{:?}", rules.dialect);
        assert!(!sql.contains("'g')"), "{:?}", rules.dialect);
        // The numbers are cast from text to the dialect's 64-bit float.
        let double = rules.types[0];
        assert!(
            sql.contains(&format!("CAST('30' AS {double})")),
            "{:?}",
            rules.dialect
        );
        assert!(sql.contains("CASE WHEN ls_p IS NULL THEN NULL WHEN ls_p >= "));
    }
}
