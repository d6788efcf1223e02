//! Scores that age (landmark training, `train --horizon --period`): on `leadscore sample` data
//! whose closing delays are known and slower the larger the company, the model's mean
//! prediction for leads open at the as-of date is within 3 points of the true P(won within the
//! next 90 days | still open at its age) in every company size × age cell; age alone, and the
//! ever-close model, miss. Older horizon models (no period) load and score as age-0 models.

use crate::horizon::{read_truth, sample_with_truth};
use crate::json_api::call;
use crate::server::{registry, score_request, start_serving};
use chrono::NaiveDate;
use leadscore::data::read_csv;
use leadscore::model::{Model, ModelArtifact};
use leadscore::sample::{SampleOptions, p_win_within};
use leadscore::score::score_table_at;
use leadscore::server::pb;
use leadscore::train::{HorizonConfig, TrainConfig, train};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

const AGES: [i64; 4] = [0, 30, 60, 120];
/// Leads within this many days of an age count in its cell.
const SPREAD: i64 = 7;
/// Fewest leads a cell needs to be judged (both sides are expectations, not realized rates, so
/// a cell's error is the model's, not sampling noise; a handful of leads is still an odd mix).
const MIN_LEADS: usize = 50;
const H: u32 = 90;

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

/// Writes `older.csv`: the leads created by `as_of`, with outcomes and closed dates as known
/// on that day (later decisions hidden, so those leads are open).
fn export_as_of(all: &Path, out: &Path, as_of: NaiveDate) {
    let mut reader = csv::Reader::from_path(all).unwrap();
    let headers = reader.headers().unwrap().clone();
    let column = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let (created, closed, outcome) = (
        column("created_at"),
        column("closed_at"),
        column("converted"),
    );
    let mut writer = csv::Writer::from_path(out).unwrap();
    writer.write_record(&headers).unwrap();
    for record in reader.records() {
        let mut cells: Vec<String> = record.unwrap().iter().map(String::from).collect();
        if day(&cells[created]) > as_of {
            continue;
        }
        if !cells[closed].is_empty() && day(&cells[closed]) > as_of {
            cells[closed].clear();
            cells[outcome].clear();
        }
        writer.write_record(&cells).unwrap();
    }
    writer.flush().unwrap();
}

/// (size, age) → (mean truth, mean prediction of each model, leads).
type Cells = BTreeMap<(String, i64), (f64, Vec<f64>, usize)>;

#[test]
fn aging_scores_match_the_truth_per_company_size_and_age() {
    let dir = tempfile::tempdir().unwrap();
    let (all, truth) = sample_with_truth(dir.path());
    // Time-ordered: trained on the export as known on the as-of date, checked on the leads
    // open on that date.
    let as_of = day("2025-10-31");
    let older = dir.path().join("older.csv");
    export_as_of(&all, &older, as_of);

    let mut config = TrainConfig::new(&older, "converted");
    config.id = Some("lead_id".into());
    config.date = Some("created_at".into());
    config.drop = vec!["closed_at".into()];
    let plain = Model::new(train(&config, &mut |_| {}).unwrap().artifact).unwrap();
    config.drop.clear();
    let mut horizon = HorizonConfig::new(H, "closed_at");
    horizon.period_days = Some(30);
    config.horizon = Some(horizon.clone());
    let aging = Model::new(train(&config, &mut |_| {}).unwrap().artifact).unwrap();
    horizon.age_interactions = false;
    config.horizon = Some(horizon);
    let additive = Model::new(train(&config, &mut |_| {}).unwrap().artifact).unwrap();

    let record = aging.artifact.aging.as_ref().expect("an aging model");
    assert!(
        record.interactions.iter().any(|a| a == "company_size"),
        "the pace setter is chosen: {:?}",
        record.selection
    );
    assert_eq!(
        aging.artifact.horizon.as_ref().unwrap().period_days,
        Some(30)
    );
    assert!(
        additive
            .artifact
            .aging
            .as_ref()
            .unwrap()
            .interactions
            .is_empty()
    );

    let p_won = read_truth(&truth);
    let table = read_csv(&older).unwrap();
    let ids = table.column(table.column_index("lead_id").unwrap());
    let created = table.column(table.column_index("created_at").unwrap());
    let outcome = table.column(table.column_index("converted").unwrap());
    // Each model's probability per lead id, every lead as old as it is on the as-of date.
    let models = [&aging, &additive, &plain];
    let scores: Vec<HashMap<String, f64>> = models
        .iter()
        .map(|m| {
            score_table_at(m, &table, None, 0, as_of)
                .unwrap()
                .rows
                .into_iter()
                .map(|r| (r.lead_id, r.scored.probability))
                .collect()
        })
        .collect();
    let mut cells: Cells = BTreeMap::new();
    for row in 0..table.rows() {
        if !outcome.get(row).is_empty() {
            continue;
        }
        let age = (as_of - day(created.get(row))).num_days();
        let Some(&target) = AGES.iter().find(|&&a| (age - a).abs() <= SPREAD) else {
            continue;
        };
        let id = ids.get(row);
        let (size, p) = &p_won[id];
        let cell = cells
            .entry((size.clone(), target))
            .or_insert((0.0, vec![0.0; models.len()], 0));
        cell.0 += p_win_within(*p, size, age as f64, f64::from(H)).unwrap();
        for (sum, s) in cell.1.iter_mut().zip(&scores) {
            *sum += s[id];
        }
        cell.2 += 1;
    }

    let mut report = String::from(
        "size        age  leads  true   landmark+interactions  age alone  ever-close\n",
    );
    let (mut judged, mut worst) = (0, [0.0f64; 3]);
    for ((size, age), (truth, predicted, leads)) in &cells {
        let n = *leads as f64;
        let truth = truth / n;
        let p: Vec<f64> = predicted.iter().map(|s| s / n).collect();
        report.push_str(&format!(
            "{size:<10} {age:>4} {leads:>6} {:>5.1}% {:>12.1}% {:>18.1}% {:>10.1}%\n",
            truth * 100.0,
            p[0] * 100.0,
            p[1] * 100.0,
            p[2] * 100.0
        ));
        if *leads >= MIN_LEADS {
            judged += 1;
            for (w, q) in worst.iter_mut().zip(&p) {
                *w = w.max((q - truth).abs());
            }
        }
    }
    println!("{report}");
    println!(
        "worst cell: landmark+interactions {:.1} points, age alone {:.1}, ever-close {:.1}",
        worst[0] * 100.0,
        worst[1] * 100.0,
        worst[2] * 100.0
    );
    assert!(judged >= 14, "cells with enough leads: {judged}\n{report}");
    assert!(worst[0] < 0.03, "{report}");
    assert!(
        worst[1] > worst[0],
        "the interactions chosen by validation help: {report}"
    );
    assert!(worst[2] > 0.10, "the ever-close model misses: {report}");
}

/// A small aging model trained on sample leads as known on 2025-10-31, and that export.
fn small_aging_model(dir: &Path) -> (ModelArtifact, std::path::PathBuf) {
    let all = dir.join("all.csv");
    leadscore::sample::write(
        &all,
        &SampleOptions {
            rows: 8_000,
            seed: 3,
            closed_dates: true,
            truth: None,
            curved: false,
        },
    )
    .unwrap();
    let older = dir.join("older.csv");
    export_as_of(&all, &older, day("2025-10-31"));
    let mut config = TrainConfig::new(&older, "converted");
    config.id = Some("lead_id".into());
    config.date = Some("created_at".into());
    let mut horizon = HorizonConfig::new(H, "closed_at");
    horizon.period_days = Some(30);
    config.horizon = Some(horizon);
    (train(&config, &mut |_| {}).unwrap().artifact, older)
}

/// gRPC, JSON and `score` give the same numbers for a lead at its age (`age_days`), and the
/// age changes the probability; a lead without age or created date is scored as new, saying so.
#[tokio::test]
async fn server_and_score_agree_on_aged_leads() {
    let dir = tempfile::tempdir().unwrap();
    let (artifact, older) = small_aging_model(dir.path());
    let model = Model::new(artifact.clone()).unwrap();
    // The export with an age per lead (the created date is kept, and loses to age_days).
    let table = read_csv(&older).unwrap();
    let mut text = format!("{},age_days\n", table.headers.join(","));
    let leads = 60;
    for row in 0..leads {
        let cells: Vec<&str> = (0..table.headers.len())
            .map(|c| table.column(c).get(row))
            .collect();
        text.push_str(&format!("{},{}\n", cells.join(","), (row * 7) % 200));
    }
    let aged = crate::common::write(dir.path(), "aged.csv", &text);
    let aged = read_csv(&aged).unwrap();
    let scored = score_table_at(&model, &aged, None, 3, day("2030-01-01")).unwrap();
    let by_id: HashMap<&str, &leadscore::model::Scored> = scored
        .rows
        .iter()
        .map(|r| (r.lead_id.as_str(), &r.scored))
        .collect();
    let distinct: std::collections::BTreeSet<u64> = scored
        .rows
        .iter()
        .map(|r| r.scored.probability.to_bits())
        .collect();
    assert!(distinct.len() > leads / 2, "ages change the probability");

    let version = artifact.model_version.clone();
    let models = registry(&[&artifact], Some(&version));
    let server = start_serving(models.path(), |_| {}).await;
    let mut client = server.client().await;
    let id = aged.column_index("lead_id").unwrap();
    for row in 0..leads {
        let lead_id = aged.column(id).get(row).to_string();
        let fields: HashMap<String, pb::FieldValue> = aged
            .headers
            .iter()
            .enumerate()
            .filter(|&(c, _)| c != id)
            .map(|(c, name)| (name.clone(), text_value(aged.column(c).get(row))))
            .collect();
        let expected = by_id[lead_id.as_str()];
        let got = client
            .score_lead(score_request(
                pb::Lead {
                    lead_id: lead_id.clone(),
                    fields: fields.clone(),
                },
                3,
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(got.probability, expected.probability, "{lead_id}: gRPC");
        assert_eq!(got.percentile, expected.percentile, "{lead_id}");
        let factor_fields: Vec<&str> = expected.factors.iter().map(|f| f.field.as_str()).collect();
        let got_fields: Vec<&str> = got.factors.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(got_fields, factor_fields, "{lead_id}: factors");
        // JSON, with the age as a number.
        let mut json_fields = serde_json::Map::new();
        for (c, name) in aged.headers.iter().enumerate().filter(|&(c, _)| c != id) {
            let cell = aged.column(c).get(row);
            json_fields.insert(
                name.clone(),
                if name == "age_days" {
                    serde_json::json!(cell.parse::<f64>().unwrap())
                } else {
                    serde_json::json!(cell)
                },
            );
        }
        let answer = call(
            server.addr,
            "POST",
            "/v1/leads:score",
            &serde_json::json!({"lead_id": lead_id, "fields": json_fields, "explain": 3}),
        )
        .await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(
            answer.body["probability"].as_f64().unwrap(),
            expected.probability,
            "{lead_id}: JSON"
        );
    }

    // Neither age nor created date: scored as new, with a warning naming both.
    let bare = call(
        server.addr,
        "POST",
        "/v1/leads:score",
        &serde_json::json!({"lead_id": "B1", "fields": {"company_size": "Large"}}),
    )
    .await;
    let at_zero = call(
        server.addr,
        "POST",
        "/v1/leads:score",
        &serde_json::json!({"lead_id": "B2", "fields": {"company_size": "Large", "age_days": 0}}),
    )
    .await;
    assert_eq!(bare.body["probability"], at_zero.body["probability"]);
    let warnings = bare.body["warnings"].to_string();
    assert!(
        warnings.contains("neither age_days nor the created date \\\"created_at\\\""),
        "{warnings}"
    );
    // A bad age is refused, naming the field.
    let refused = call(
        server.addr,
        "POST",
        "/v1/leads:score",
        &serde_json::json!({"lead_id": "B3", "fields": {"company_size": "Large", "age_days": -3}}),
    )
    .await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(
        refused.body.to_string().contains("age_days"),
        "{}",
        refused.body
    );
    server.stop().await;
}

fn text_value(value: &str) -> pb::FieldValue {
    crate::server::text(value)
}

/// A horizon model without a period (as every horizon model before scores aged) loads and
/// scores as an age-0 model: the age changes nothing and draws no warning; the artifact has
/// no aging record.
#[test]
fn a_horizon_model_without_a_period_scores_as_new_leads() {
    let dir = tempfile::tempdir().unwrap();
    let all = dir.path().join("all.csv");
    leadscore::sample::write(
        &all,
        &SampleOptions {
            rows: 6_000,
            seed: 5,
            closed_dates: true,
            truth: None,
            curved: false,
        },
    )
    .unwrap();
    let mut config = TrainConfig::new(&all, "converted");
    config.id = Some("lead_id".into());
    config.date = Some("created_at".into());
    config.horizon = Some(HorizonConfig::new(H, "closed_at"));
    let artifact = train(&config, &mut |_| {}).unwrap().artifact;
    let json = serde_json::to_string(&artifact).unwrap();
    assert!(!json.contains("\"aging\"") && !json.contains("period_days"));
    let model = Model::from_json(&json).unwrap();
    assert!(!model.ages() && model.created_column().is_none());
    let table = read_csv(&all).unwrap();
    let early = score_table_at(&model, &table, None, 3, day("2025-01-01")).unwrap();
    let late = score_table_at(&model, &table, None, 3, day("2027-01-01")).unwrap();
    for (a, b) in early.rows.iter().zip(&late.rows) {
        assert_eq!(a.scored, b.scored);
        assert!(a.scored.warnings.iter().all(|w| !w.starts_with("age")));
    }
}
