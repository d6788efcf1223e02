//! Benchmark of `leadscore evaluate` on a million scored leads (BENCHMARKS.md, "Evaluation").
//!
//!     cargo bench --bench evaluate -- SCORED.csv LEADS.csv MODELS_DIR [RUNS]
//!
//! SCORED.csv is written by `leadscore score --explain 0`, LEADS.csv is the labelled file it
//! scored (`leadscore sample`). Times, each as the median of RUNS runs:
//! - evaluation: every metric, table and drift (`evaluate`) plus the HTML, JSON and terminal
//!   reports, from leads already joined: the work scikit-learn's three calls are compared with;
//! - inputs: reading both CSVs and joining them by lead id.

use leadscore::data::read_csv;
use leadscore::evaluate::{
    Gates, InputOptions, TableOptions, evaluate, inputs, report_html, report_json, report_terminal,
};
use leadscore::registry::Registry;
use std::path::Path;
use std::time::Instant;

fn median(mut times: Vec<f64>) -> f64 {
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if args.len() < 3 {
        eprintln!("usage: cargo bench --bench evaluate -- SCORED.csv LEADS.csv MODELS_DIR [RUNS]");
        std::process::exit(2);
    }
    let runs: usize = args
        .get(3)
        .map_or(7, |r| r.parse().expect("RUNS is a number"));
    let model = Registry::new(&args[2])
        .load_current()
        .expect("a model in MODELS_DIR");
    let options = InputOptions {
        target: Some("converted".into()),
        by: vec!["source".into(), "region".into()],
        date: Some("created_at".into()),
        ..InputOptions::default()
    };
    let mut input_times = Vec::new();
    let mut joined = None;
    for _ in 0..runs {
        let start = Instant::now();
        let predictions = inputs::read_predictions(Path::new(&args[0])).unwrap();
        let outcomes = read_csv(Path::new(&args[1])).unwrap();
        let result = inputs::realized(&predictions, &outcomes, Some(&model), &options).unwrap();
        input_times.push(start.elapsed().as_secs_f64());
        joined = Some(result);
    }
    let (leads, coverage) = joined.expect("at least one run");
    let mut eval_times = Vec::new();
    let mut html_bytes = 0;
    for _ in 0..runs {
        let start = Instant::now();
        let evaluation = evaluate(
            &leads,
            coverage.clone(),
            Some(model.version().to_string()),
            Some(&model.artifact.score_quantiles),
            &TableOptions::default(),
            &Gates::default(),
        )
        .unwrap();
        let html = report_html::render(&evaluation);
        let json = report_json::render(&evaluation);
        let text = report_terminal::render(&evaluation);
        eval_times.push(start.elapsed().as_secs_f64());
        html_bytes = html.len() + json.len() + text.len();
    }
    println!(
        "{} leads; evaluation runs (s): {}",
        leads.len(),
        eval_times
            .iter()
            .map(|t| format!("{t:.3}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "evaluation (metrics, tables, drift, HTML + JSON + terminal reports; {html_bytes} bytes): median {:.3} s",
        median(eval_times)
    );
    println!(
        "inputs (read both CSVs, join by lead id): median {:.3} s",
        median(input_times)
    );
}
