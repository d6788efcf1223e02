//! Scores that age (landmark training, `train --horizon --period`): on `leadscore sample` data
//! whose closing delays are known and slower the larger the company, the model's mean
//! prediction for leads open at the as-of date is within 3 points of the true P(won within the
//! next 90 days | still open at its age) in every company size × age cell; age alone, and the
//! ever-close model, miss. Older horizon models (no period) load and score as age-0 models.

use chrono::NaiveDate;
use leadscore::data::read_csv;
use leadscore::model::Model;
use leadscore::sample::{SampleOptions, p_win_within};
use leadscore::score::score_table_at;
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
    let (all, truth) = (dir.path().join("all.csv"), dir.path().join("truth.csv"));
    leadscore::sample::write(
        &all,
        &SampleOptions {
            rows: 40_000,
            seed: 11,
            closed_dates: true,
            truth: Some(truth.clone()),
        },
    )
    .unwrap();
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

    let p_won: HashMap<String, (String, f64)> = csv::Reader::from_path(&truth)
        .unwrap()
        .records()
        .map(|r| {
            let r = r.unwrap();
            (r[0].to_string(), (r[1].to_string(), r[2].parse().unwrap()))
        })
        .collect();
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
