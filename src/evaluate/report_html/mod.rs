//! The HTML report: one self-contained file (inline CSS and SVG, no scripts, nothing fetched
//! from the network) that reads in a browser and prints on paper.
//!
//! Charts: a reliability diagram with 95% intervals, the cumulative gains curve, the score
//! histogram against training, and monthly predicted against realized closure rates; with the
//! model, its picture ([`picture`]: each attribute's effect), also written alone by
//! `models show --html`.

use super::funnel::StepRow;
use super::{BandRow, Drift, Evaluation, Metrics, Mode, RateRow};
use crate::model::ModelArtifact;
use std::fmt::{self, Write as _};

/// Escapes text for HTML (labels come from the CRM's data).
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

fn opt(x: Option<f64>, digits: usize) -> String {
    x.map_or("n/a".into(), |v| format!("{v:.digits$}"))
}

const STYLE: &str = r#"
:root { --ink: #1d2433; --muted: #5b6475; --line: #d5d9e0; --accent: #1f5fbf; --warn: #c0392b;
        --ok: #1e7d46; --band: #dfe8f7; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink);
       margin: 0 auto; padding: 24px 28px 48px; max-width: 1120px; background: #fff; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 28px 0 8px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
h3 { font-size: 14px; margin: 16px 0 6px; }
p.sub, .note { color: var(--muted); margin: 2px 0 8px; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)); gap: 8px;
         margin: 12px 0; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 8px 10px; }
.card .k { color: var(--muted); font-size: 12px; }
.card .v { font-size: 19px; font-weight: 600; }
.card .d { color: var(--muted); font-size: 11px; }
.card .m { font-size: 12px; margin-top: 4px; }
.gates { margin: 12px 0; padding: 0; list-style: none; }
.gates li { padding: 6px 10px; border-radius: 5px; margin: 4px 0; }
.gates .pass { background: #e6f4ea; color: var(--ok); }
.gates .fail { background: #fdecea; color: var(--warn); font-weight: 600; }
.insample { background: #fdecea; color: var(--warn); font-weight: 600; padding: .5em .8em; }
.charts { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; }
figure { margin: 0; border: 1px solid var(--line); border-radius: 6px; padding: 8px;
         break-inside: avoid; page-break-inside: avoid; }
figcaption { font-weight: 600; margin: 0 0 4px; }
figure .note { font-size: 12px; }
svg { width: 100%; height: auto; display: block; }
svg text { font: 11px system-ui, sans-serif; fill: var(--muted); }
svg .axis { stroke: #9aa3b2; stroke-width: 1; }
svg polyline, svg .grid { fill: none; }
svg .grid { stroke: #eceef2; stroke-width: 1; }
svg .perfect { stroke: #b8c0cc; stroke-width: 1; fill: none; }
svg .ideal { stroke: #9aa3b2; stroke-dasharray: 4 3; fill: none; }
svg .pred { stroke: #e08a1e; stroke-width: 2; fill: none; stroke-dasharray: 6 3; }
svg .real { stroke: var(--accent); stroke-width: 2; fill: none; }
svg .ci { stroke: var(--accent); stroke-width: 1.5; }
svg .band { fill: var(--band); stroke: none; }
svg .dot { fill: var(--accent); fill-opacity: .75; }
svg .dot.off { fill: var(--warn); }
svg .bar { fill: var(--accent); fill-opacity: .7; }
svg .train { stroke: #e08a1e; stroke-width: 2; fill: none; }
svg .limit { stroke: var(--warn); stroke-dasharray: 2 3; fill: none; }
td.bar { position: relative; width: 38%; min-width: 160px; }
td.bar::before { content: ""; position: absolute; left: 50%; top: 2px; bottom: 2px;
                 border-left: 1px solid #9aa3b2; }
.effect { position: absolute; top: 5px; bottom: 5px; background: var(--accent); opacity: .75; }
.effect.neg { background: var(--warn); }
.effect, td.bar::before { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
table { border-collapse: collapse; width: 100%; margin: 4px 0 8px; font-variant-numeric: tabular-nums;
        break-inside: auto; }
th, td { padding: 3px 8px; border-bottom: 1px solid #eceef2; text-align: right; white-space: nowrap; }
th { background: #f5f6f8; font-weight: 600; color: var(--ink); }
th:first-child, td:first-child { text-align: left; white-space: normal; }
tr { break-inside: avoid; page-break-inside: avoid; }
tr.flag td { background: #fff4f2; }
td.why { text-align: left; white-space: normal; }
.tag { display: inline-block; padding: 0 5px; border-radius: 3px; font-size: 11px; font-weight: 600; }
.tag.sig { background: #e8eefb; color: var(--accent); }
.tag.off { background: #fdecea; color: var(--warn); }
.legend { font-size: 12px; color: var(--muted); }
.legend span { margin-right: 14px; white-space: nowrap; }
.swatch { display: inline-block; width: 18px; height: 0; border-top: 2px solid; vertical-align: middle;
          margin-right: 4px; }
@media (max-width: 800px) { .charts { grid-template-columns: 1fr; } }
@media print {
  body { padding: 0; max-width: none; font-size: 11px; }
  .charts { grid-template-columns: 1fr 1fr; }
  h2 { break-after: avoid; page-break-after: avoid; }
  th { background: #eee !important; -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  .gates li, tr.flag td, .tag { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
@page { margin: 14mm; }
"#;

mod charts;
mod picture;

use charts::{gains, histogram, monthly, reliability};
pub use picture::{effect, render_model};

pub fn render(e: &Evaluation) -> String {
    render_with_model(e, None)
}

/// The report, with a section picturing `model` (the evaluated one) when given.
pub fn render_with_model(e: &Evaluation, model: Option<&ModelArtifact>) -> String {
    let mut out = String::with_capacity(64 * 1024);
    render_into(e, model, &mut out).expect("writing to a String cannot fail");
    out
}

fn render_into(e: &Evaluation, model: Option<&ModelArtifact>, out: &mut String) -> fmt::Result {
    head(out, e)?;
    cards(out, e)?;
    gate_list(out, e)?;
    writeln!(out, "<h2>Charts</h2><div class=\"charts\">")?;
    reliability(out, &e.calibration.equal_width)?;
    gains(out, e)?;
    histogram(out, e)?;
    monthly(out, e)?;
    charts::cohorts(out, e)?;
    if let Some(f) = &e.funnel {
        charts::funnel(out, f)?;
    }
    writeln!(out, "</div>")?;
    calibration_section(out, e)?;
    writeln!(out, "<h2>Closure rate per grade</h2>")?;
    rates(out, "grade", &e.grades, e.metrics.realized_rate)?;
    deciles(out, e)?;
    segment_sections(out, e)?;
    cohort_section(out, e)?;
    funnel_section(out, e)?;
    drift_section(out, e)?;
    feature_drift_section(out, e)?;
    inputs_section(out, e)?;
    if let Some(model) = model {
        writeln!(out, "<h2>The model</h2>")?;
        picture::model_body(out, model)?;
    }
    writeln!(
        out,
        "<p class=\"note\">Generated by leadscore {}.</p></body></html>",
        env!("CARGO_PKG_VERSION")
    )
}

/// The document head, the title and the line saying what was evaluated.
fn head(out: &mut String, e: &Evaluation) -> fmt::Result {
    let mode = match e.mode {
        Mode::Backtest => "Backtest",
        Mode::Realized => "Realized",
    };
    write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>leadscore evaluation</title><style>{STYLE}</style></head><body>\n"
    )?;
    writeln!(out, "<h1>Predicted vs realized closure rates</h1>")?;
    writeln!(
        out,
        "<p class=\"sub\">{mode} evaluation · model {} · {}</p>",
        esc(e.model_version.as_deref().unwrap_or("(none)")),
        esc(&e.coverage.describe())
    )?;
    if let Some(meaning) = &e.probability_meaning {
        writeln!(out, "<p class=\"sub\">Probability: {}</p>", esc(meaning))?;
    }
    if let Some(window) = e.window_summary() {
        writeln!(out, "<p class=\"sub\">Window: {}</p>", esc(&window))?;
    }
    if let Some(note) = e.open_leads_note() {
        writeln!(out, "<p class=\"sub\">Note: {}</p>", esc(&note))?;
    }
    if let Some(in_sample) = &e.in_sample {
        writeln!(
            out,
            "<p class=\"insample\">{}</p>",
            esc(&in_sample.message(e.metrics.leads))
        )?;
    }
    Ok(())
}

/// A headline card: the metric, its value, a detail, and what it means in plain words.
struct Card {
    name: &'static str,
    value: String,
    detail: String,
    /// One sentence a sales manager can read without knowing the metric.
    meaning: String,
}

/// The headline metrics, one card each.
fn cards(out: &mut String, e: &Evaluation) -> fmt::Result {
    writeln!(out, "<div class=\"cards\">")?;
    for card in headline_cards(&e.metrics, e.drift.as_ref()) {
        writeln!(
            out,
            "<div class=\"card\"><div class=\"k\">{}</div><div class=\"v\">{}</div><div class=\"d\">{}</div><div class=\"m\">{}</div></div>",
            esc(card.name),
            esc(&card.value),
            esc(&card.detail),
            esc(&card.meaning)
        )?;
    }
    writeln!(out, "</div>")
}

fn headline_cards(m: &Metrics, drift: Option<&Drift>) -> Vec<Card> {
    let card = |name, value, detail, meaning| Card {
        name,
        value,
        detail,
        meaning,
    };
    let mut cards = vec![
        card(
            "Leads evaluated",
            m.leads.to_string(),
            format!("{} won", m.wins),
            "Leads with both a score and a known outcome; every figure here is about them.".into(),
        ),
        card(
            "Realized closure rate",
            pct(m.realized_rate),
            "wins / leads".into(),
            format!("{} of these leads were won.", pct(m.realized_rate)),
        ),
        card(
            "Mean predicted",
            pct(m.mean_predicted),
            format!("gap {:+.1} points", m.calibration_gap * 100.0),
            format!(
                "On average the model gave these leads a {} chance; {} of them closed.",
                pct(m.mean_predicted),
                pct(m.realized_rate)
            ),
        ),
        card(
            "ROC AUC",
            opt(m.roc_auc, 3),
            "ranking; 0.5 = chance".into(),
            m.roc_auc.map_or(NOT_MEASURABLE.into(), |auc| {
                format!(
                    "Take one won and one lost lead at random: {} of the time the won one had the \
                     higher score (50% is guessing, 100% perfect).",
                    pct(auc)
                )
            }),
        ),
    ];
    cards.extend(accuracy_cards(m));
    if let Some(d) = drift {
        cards.push(card(
            "Score drift (PSI)",
            format!("{:.3}", d.psi),
            d.level.clone(),
            "How far the mix of scores has moved since training: below 0.1 hardly, 0.1–0.25 \
             somewhat, 0.25 or more a lot (the incoming leads have changed)."
                .into(),
        ));
    }
    cards
}

/// Said of the AUC when every lead had the same outcome.
const NOT_MEASURABLE: &str = "Cannot be measured on these leads (they all had the same outcome).";

/// Said of the calibration slope when it cannot be fitted (see `metrics::calibration_fit`).
const SLOPE_NOT_MEASURABLE: &str = "Cannot be measured on these leads (one outcome only, the \
                                    same score for all, or wins and losses fully separated).";

/// The cards on how close the probabilities came: Brier, log loss, ECE, calibration slope.
fn accuracy_cards(m: &Metrics) -> [Card; 4] {
    [
        Card {
            name: "Brier score",
            value: format!("{:.4}", m.brier),
            detail: format!("skill {} vs base rate", opt(m.brier_skill, 3)),
            meaning: format!(
                "The average squared miss per lead (0 is perfect). Always predicting the base \
                 rate, the overall closure rate of {}, would score {:.4}; lower is better.",
                pct(m.realized_rate),
                m.brier_reference
            ),
        },
        Card {
            name: "Log loss",
            value: format!("{:.4}", m.log_loss),
            detail: String::new(),
            meaning: "Like the Brier score, but a confident prediction that turns out wrong costs \
                      far more; lower is better. Compare it between models on the same leads."
                .into(),
        },
        Card {
            name: "ECE",
            value: format!("{:.4}", m.expected_calibration_error),
            detail: format!("max {:.3}", m.max_calibration_error),
            meaning: format!(
                "On average, predictions were off from what actually happened by {:.1} points \
                 (the worst probability band by {:.1}).",
                m.expected_calibration_error * 100.0,
                m.max_calibration_error * 100.0
            ),
        },
        Card {
            name: "Calibration slope",
            value: opt(m.calibration_slope, 3),
            detail: format!("intercept {} (ideal 1, 0)", opt(m.calibration_intercept, 3)),
            meaning: m
                .calibration_slope
                .map_or(SLOPE_NOT_MEASURABLE.into(), |_| {
                    "1: the scores are as confident as they should be; below 1 too extreme (high \
                 scores too high, low ones too low), above 1 too cautious."
                        .into()
                }),
        },
    ]
}

/// Each gate of a nightly job, passed or failed (nothing when none was set).
fn gate_list(out: &mut String, e: &Evaluation) -> fmt::Result {
    if e.gates.is_empty() {
        return Ok(());
    }
    writeln!(out, "<ul class=\"gates\">")?;
    for g in &e.gates {
        writeln!(
            out,
            "<li class=\"{}\">{} <code>{}</code> — {}</li>",
            if g.passed { "pass" } else { "fail" },
            if g.passed { "PASSED" } else { "FAILED" },
            esc(&g.gate),
            esc(&g.message)
        )?;
    }
    writeln!(out, "</ul>")
}

fn calibration_section(out: &mut String, e: &Evaluation) -> fmt::Result {
    writeln!(out, "<h2>Calibration by probability band</h2>")?;
    writeln!(
        out,
        "<p class=\"note\">Realized rate with its Wilson 95% interval; highlighted rows: the mean \
         prediction lies outside the interval.</p><h3>Equal-width bands</h3>"
    )?;
    bands(out, &e.calibration.equal_width)?;
    writeln!(out, "<h3>Equal-count bands</h3>")?;
    bands(out, &e.calibration.equal_count)
}

fn deciles(out: &mut String, e: &Evaluation) -> fmt::Result {
    writeln!(
        out,
        "<h2>Lift and gains by decile</h2><table><tr><th>decile</th><th>probability</th>\
         <th>leads</th><th>wins</th><th>realized</th><th>predicted</th><th>lift</th>\
         <th>cumulative gains</th><th>cumulative lift</th></tr>"
    )?;
    for d in &e.deciles {
        writeln!(
            out,
            "<tr><td>{}</td><td>{:.3}–{:.3}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{:.2}</td><td>{}</td><td>{:.2}</td></tr>",
            d.decile,
            d.min_probability,
            d.max_probability,
            d.leads,
            d.wins,
            pct(d.realized_rate),
            pct(d.mean_predicted),
            d.lift,
            pct(d.cumulative_wins_share),
            d.cumulative_lift
        )?;
    }
    writeln!(out, "</table>")
}

/// Closure rate per `--by` segment, then per month.
fn segment_sections(out: &mut String, e: &Evaluation) -> fmt::Result {
    let average = e.metrics.realized_rate;
    for table in &e.segments {
        writeln!(out, "<h2>Closure rate per {}</h2>", esc(&table.column))?;
        rates(out, &table.column, &table.rows, average)?;
    }
    if let Some(months) = &e.months {
        writeln!(
            out,
            "<h2>Closure rate per month of {}</h2>",
            esc(&months.column)
        )?;
        rates(out, "month", &months.rows, average)?;
    }
    Ok(())
}

/// A horizon model's cohort table.
fn cohort_section(out: &mut String, e: &Evaluation) -> fmt::Result {
    let (Some(rows), Some(days)) = (&e.cohorts, e.horizon_days) else {
        return Ok(());
    };
    writeln!(
        out,
        "<h2>Cohorts: closure within {days} days per month</h2><p class=\"note\">Maturing leads \
         (window not passed) are counted, never evaluated. <span class=\"tag off\">off</span> \
         the mean prediction lies outside the realized rate's interval.</p>"
    )?;
    writeln!(
        out,
        "<table><tr><th>month</th><th>leads</th><th>matured</th><th>maturing</th><th>won within</th>\
         <th>predicted</th><th>realized</th><th>95% interval</th><th></th></tr>"
    )?;
    let or_dash = |x: Option<f64>| x.map_or_else(|| "–".into(), pct);
    for r in rows {
        writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td></tr>",
            esc(&r.month),
            r.leads,
            r.matured,
            r.maturing,
            r.won_within,
            or_dash(r.mean_predicted),
            or_dash(r.realized_rate),
            if r.matured > 0 {
                format!("{}–{}", pct(r.ci_low), pct(r.ci_high))
            } else {
                "–".into()
            },
            if r.prediction_outside {
                "<span class=\"tag off\">off</span>"
            } else {
                ""
            }
        )?;
    }
    writeln!(out, "</table>")
}

/// `--funnel`: the steps overall, per segment and per month of entering the stage.
fn funnel_section(out: &mut String, e: &Evaluation) -> fmt::Result {
    let Some(f) = &e.funnel else {
        return Ok(());
    };
    writeln!(
        out,
        "<h2>Funnel</h2><p class=\"note\">{} leads. Days between stages by nearest rank over the \
         converted leads with both dates.</p>",
        f.leads
    )?;
    step_table(out, "", &f.steps)?;
    for table in &f.segments {
        writeln!(out, "<h3>Funnel per {}</h3>", esc(&table.column))?;
        step_table(out, &table.column, &table.rows)?;
    }
    if !f.months.is_empty() {
        writeln!(out, "<h3>Funnel per month of entering the stage</h3>")?;
        step_table(out, "month", &f.months)?;
    }
    Ok(())
}

fn step_table(out: &mut String, group: &str, rows: &[StepRow]) -> fmt::Result {
    let grouped = !group.is_empty();
    writeln!(
        out,
        "<table><tr><th>step</th>{}<th>entered</th><th>converted</th><th>rate</th>\
         <th>95% interval</th><th>median days</th><th>90th percentile days</th></tr>",
        if grouped {
            format!("<th>{}</th>", esc(group))
        } else {
            String::new()
        }
    )?;
    let days = |d: Option<i64>| d.map_or_else(|| "–".into(), |d| d.to_string());
    for r in rows {
        writeln!(
            out,
            "<tr><td>{} → {}</td>{}<td>{}</td><td>{}</td><td>{}</td><td>{}–{}</td><td>{}</td>\
             <td>{}</td></tr>",
            esc(&r.from),
            esc(&r.to),
            if grouped {
                format!("<td>{}</td>", esc(&r.group))
            } else {
                String::new()
            },
            r.entered,
            r.converted,
            pct(r.rate),
            pct(r.ci_low),
            pct(r.ci_high),
            days(r.median_days),
            days(r.p90_days)
        )?;
    }
    writeln!(out, "</table>")
}

fn drift_section(out: &mut String, e: &Evaluation) -> fmt::Result {
    let Some(d) = &e.drift else {
        return Ok(());
    };
    writeln!(
        out,
        "<h2>Score drift against training</h2><p class=\"note\">PSI {:.3}: {} \
         (&lt; 0.1 stable, 0.1–0.25 moderate, ≥ 0.25 major). Median probability {} in \
         training, {} here. Bands are the training deciles.</p>",
        d.psi,
        esc(&d.level),
        pct(d.training_median),
        pct(d.evaluated_median)
    )?;
    writeln!(
        out,
        "<table><tr><th>band</th><th>training share</th><th>evaluated share</th><th>PSI term</th></tr>"
    )?;
    for b in &d.bands {
        writeln!(
            out,
            "<tr><td>{:.3}–{:.3}</td><td>{}</td><td>{}</td><td>{:.4}</td></tr>",
            b.lower,
            b.upper,
            pct(b.expected_share),
            pct(b.actual_share),
            b.psi
        )?;
    }
    writeln!(out, "</table>")
}

/// The per-attribute drift table, worst first, flagged rows marked.
fn feature_drift_section(out: &mut String, e: &Evaluation) -> fmt::Result {
    let Some(d) = &e.feature_drift else {
        return Ok(());
    };
    writeln!(out, "<h2>Drift per attribute against training</h2>")?;
    if let Some(why) = &d.unavailable {
        return writeln!(out, "<p class=\"note\">Not measured: {}.</p>", esc(why));
    }
    writeln!(
        out,
        "<p class=\"note\">{} of {} attributes flagged: PSI ≥ {} (bins: a number's training \
         deciles, a category's levels, unseen labels and missing values), or at least {:.0}% of \
         the numbers outside the training range or of the labels never seen in training. Worst \
         first. Below, above and unseen are shares of the values present; missing is of all \
         leads, training in brackets.</p>",
        d.flagged().count(),
        d.attributes.len(),
        crate::evaluate::drift::PSI_MAJOR,
        crate::evaluate::feature_drift::FLAG_SHARE * 100.0
    )?;
    writeln!(
        out,
        "<table><tr><th>attribute</th><th>kind</th><th>PSI</th><th>level</th>\
         <th>missing (training)</th><th>below range</th><th>above range</th><th>unseen</th>\
         <th>reason</th></tr>"
    )?;
    let share = |x: Option<f64>| x.map_or("–".to_string(), pct);
    for a in &d.attributes {
        writeln!(
            out,
            "<tr{}><td>{}</td><td>{}</td><td>{:.3}</td><td>{}</td><td>{} ({})</td><td>{}</td>\
             <td>{}</td><td>{}</td><td class=\"why\">{}{}</td></tr>",
            if a.flagged { " class=\"flag\"" } else { "" },
            esc(&a.attribute),
            a.kind,
            a.psi,
            esc(&a.level),
            pct(a.missing_share),
            pct(a.training_missing_share),
            share(a.below_range_share),
            share(a.above_range_share),
            share(a.unseen_share),
            if a.flagged {
                "<span class=\"tag off\">flagged</span> "
            } else {
                ""
            },
            esc(a.reason.as_deref().unwrap_or(""))
        )?;
    }
    writeln!(out, "</table>")
}

/// Where every input row went, and the model columns a backtest file lacked.
fn inputs_section(out: &mut String, e: &Evaluation) -> fmt::Result {
    let c = &e.coverage;
    writeln!(
        out,
        "<h2>Inputs</h2><table><tr><th>count</th><th>leads</th></tr>"
    )?;
    for (k, v) in input_counts(e) {
        writeln!(out, "<tr><td>{}</td><td>{v}</td></tr>", esc(k))?;
    }
    writeln!(out, "</table>")?;
    if !c.absent_columns.is_empty() {
        writeln!(
            out,
            "<p class=\"note\">Model columns absent from the file (imputed as missing): {}</p>",
            esc(&c.absent_columns.join(", "))
        )?;
    }
    Ok(())
}

/// The rows of the inputs table: realized mode adds the join's counts.
fn input_counts(e: &Evaluation) -> Vec<(&'static str, u64)> {
    let c = &e.coverage;
    let mut counts: Vec<(&str, u64)> = vec![
        ("outcome rows read", c.outcome_rows),
        ("evaluated (prediction and known outcome)", c.evaluated),
        ("still open (not evaluated)", c.open),
    ];
    if let Some(n) = c.prediction_records {
        counts.push(("prediction records read", n));
    }
    if let Some(n) = c.predicted_leads {
        counts.push(("distinct predicted leads", n));
    }
    if e.mode == Mode::Realized {
        counts.extend([
            (
                "predicted leads without an outcome",
                c.predictions_without_outcome,
            ),
            (
                "outcomes without a prediction",
                c.outcomes_without_prediction,
            ),
            (
                "scored only after their outcome",
                c.scored_only_after_outcome,
            ),
            ("superseded earlier predictions", c.superseded_predictions),
            (
                "predictions made after the outcome (not used)",
                c.predictions_after_outcome,
            ),
            (
                "evaluated without an outcome-time check",
                c.evaluated_without_cutoff,
            ),
        ]);
    }
    counts.push(("evaluated leads without a date", c.without_month));
    counts
}

fn bands(out: &mut String, rows: &[BandRow]) -> fmt::Result {
    writeln!(
        out,
        "<table><tr><th>band</th><th>leads</th><th>wins</th><th>mean predicted</th>\
         <th>realized</th><th>95% interval</th><th></th></tr>"
    )?;
    for b in rows {
        writeln!(
            out,
            "<tr{}><td>{:.3}–{:.3}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}–{}</td><td>{}</td></tr>",
            if b.prediction_outside {
                " class=\"flag\""
            } else {
                ""
            },
            b.lower,
            b.upper,
            b.leads,
            b.wins,
            pct(b.mean_predicted),
            pct(b.realized_rate),
            pct(b.ci_low),
            pct(b.ci_high),
            if b.prediction_outside {
                "<span class=\"tag off\">off</span>"
            } else {
                ""
            }
        )?;
    }
    writeln!(out, "</table>")
}

fn rates(out: &mut String, column: &str, rows: &[RateRow], average: f64) -> fmt::Result {
    writeln!(
        out,
        "<p class=\"note\">Company average {}. <span class=\"tag sig\">sig</span> the \
         difference is significant at 95%; <span class=\"tag off\">off</span> the mean \
         prediction lies outside the realized rate's interval.</p>",
        pct(average)
    )?;
    writeln!(
        out,
        "<table><tr><th>{}</th><th>leads</th><th>wins</th><th>realized</th><th>95% interval</th>\
         <th>predicted</th><th>vs average</th><th>interval (points)</th><th></th></tr>",
        esc(column)
    )?;
    for r in rows {
        writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}–{}</td><td>{}</td>\
             <td>{:+.1}</td><td>{:+.1} to {:+.1}</td><td>{}{}</td></tr>",
            esc(&r.label),
            r.leads,
            r.wins,
            pct(r.realized_rate),
            pct(r.ci_low),
            pct(r.ci_high),
            pct(r.mean_predicted),
            r.difference * 100.0,
            r.difference_low * 100.0,
            r.difference_high * 100.0,
            if r.significant {
                "<span class=\"tag sig\">sig</span> "
            } else {
                ""
            },
            if r.prediction_outside {
                "<span class=\"tag off\">off</span>"
            } else {
                ""
            }
        )?;
    }
    writeln!(out, "</table>")
}

#[cfg(test)]
mod tests;
