//! The terminal report: headline numbers, then each table, aligned for a fixed-width terminal.

use super::funnel::StepRow;
use super::{BandRow, Evaluation, FeatureDrift, Mode, RateRow};
use std::fmt::{self, Write as _};

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

fn opt(x: Option<f64>, digits: usize) -> String {
    x.map_or("n/a".into(), |v| format!("{v:.digits$}"))
}

/// `[low, high]` of a rate interval, in percent.
fn interval(low: f64, high: f64) -> String {
    format!("[{:.1}, {:.1}]", low * 100.0, high * 100.0)
}

/// A difference in percentage points with its interval.
fn points(x: f64) -> String {
    format!("{:+.1}", x * 100.0)
}

pub fn render(e: &Evaluation) -> String {
    let mut out = String::new();
    render_into(e, &mut out).expect("writing to a String cannot fail");
    out
}

fn render_into(e: &Evaluation, out: &mut String) -> fmt::Result {
    coverage(out, e)?;
    if let Some(in_sample) = &e.in_sample {
        writeln!(out, "WARNING    {}", in_sample.message(e.metrics.leads))?;
    }
    writeln!(out)?;
    headline(out, e)?;
    if let Some(drift) = &e.feature_drift {
        writeln!(out)?;
        feature_drift(out, drift)?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "calibration by probability band (equal width; * = prediction outside the 95% interval)"
    )?;
    bands(out, &e.calibration.equal_width)?;
    writeln!(out)?;
    writeln!(out, "calibration by equal-count band")?;
    bands(out, &e.calibration.equal_count)?;

    writeln!(out)?;
    writeln!(out, "closure rate per grade")?;
    rates(out, "grade", &e.grades)?;

    writeln!(out)?;
    deciles(out, e)?;
    segment_tables(out, e)?;
    cohorts(out, e)?;
    funnel(out, e)?;
    gate_lines(out, e)
}

/// A horizon model's cohort table: per month, matured against maturing leads and predicted
/// against realized closure within H.
fn cohorts(out: &mut String, e: &Evaluation) -> fmt::Result {
    let (Some(rows), Some(days)) = (&e.cohorts, e.horizon_days) else {
        return Ok(());
    };
    writeln!(out)?;
    writeln!(
        out,
        "cohorts: closure within {days} days per month (* = prediction outside the 95% interval; \
         maturing leads are counted, never evaluated)"
    )?;
    writeln!(
        out,
        "  {:<7} {:>8} {:>8} {:>8} {:>7} {:>9} {:>9} {:>14}",
        "month", "leads", "matured", "maturing", "won", "predicted", "realized", "95% interval"
    )?;
    for r in rows {
        let known = r.matured > 0;
        let line = format!(
            "  {:<7} {:>8} {:>8} {:>8} {:>7} {:>9} {:>9} {:>14} {}",
            printable(&r.month, 7),
            r.leads,
            r.matured,
            r.maturing,
            r.won_within,
            r.mean_predicted.map_or_else(|| "–".into(), pct),
            r.realized_rate.map_or_else(|| "–".into(), pct),
            if known {
                interval(r.ci_low, r.ci_high)
            } else {
                "–".into()
            },
            if r.prediction_outside { "*" } else { "" }
        );
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

/// `--funnel`: each step overall, then per segment and per month of entering its first stage.
fn funnel(out: &mut String, e: &Evaluation) -> fmt::Result {
    let Some(f) = &e.funnel else {
        return Ok(());
    };
    writeln!(out)?;
    let reached: Vec<String> = f
        .stages
        .iter()
        .zip(&f.reached)
        .map(|(s, n)| format!("{} {n}", printable(s, 40)))
        .collect();
    writeln!(
        out,
        "funnel over {} leads (reached: {}); days by nearest rank over converted leads with both \
         dates (median, p90: days)",
        f.leads,
        reached.join(" → ")
    )?;
    step_rows(out, "step", &f.steps)?;
    for table in &f.segments {
        writeln!(out)?;
        writeln!(out, "funnel per {}", printable(&table.column, 40))?;
        step_rows(out, &table.column, &table.rows)?;
    }
    if !f.months.is_empty() {
        writeln!(out)?;
        writeln!(out, "funnel per month of entering the stage")?;
        step_rows(out, "month", &f.months)?;
    }
    Ok(())
}

fn step_rows(out: &mut String, group: &str, rows: &[StepRow]) -> fmt::Result {
    let step_width = rows
        .iter()
        .map(|r| r.from.chars().count() + r.to.chars().count() + 3)
        .chain([4])
        .max()
        .unwrap_or(4)
        .min(50);
    let overall = rows.iter().all(|r| r.group == "all");
    let group_width = if overall {
        0
    } else {
        rows.iter()
            .map(|r| r.group.chars().count())
            .chain([group.chars().count(), 5])
            .max()
            .unwrap_or(5)
            .min(30)
    };
    let header_group = if overall { "" } else { group };
    writeln!(
        out,
        "  {:<step_width$} {:<group_width$} {:>8} {:>9} {:>9} {:>14} {:>7} {:>7}",
        "step", header_group, "entered", "converted", "rate", "95% interval", "median", "p90"
    )?;
    for r in rows {
        let step = printable(&format!("{} → {}", r.from, r.to), step_width);
        let days = |d: Option<i64>| d.map_or_else(|| "–".into(), |d| d.to_string());
        writeln!(
            out,
            "  {:<step_width$} {:<group_width$} {:>8} {:>9} {:>9} {:>14} {:>7} {:>7}",
            step,
            if overall {
                String::new()
            } else {
                printable(&r.group, group_width)
            },
            r.entered,
            r.converted,
            pct(r.rate),
            interval(r.ci_low, r.ci_high),
            days(r.median_days),
            days(r.p90_days)
        )?;
    }
    Ok(())
}

/// What was evaluated, where every input row went, and the warnings about the inputs.
fn coverage(out: &mut String, e: &Evaluation) -> fmt::Result {
    let c = &e.coverage;
    let mode = match e.mode {
        Mode::Backtest => "backtest",
        Mode::Realized => "realized",
    };
    writeln!(
        out,
        "evaluation  {mode}, model {}",
        e.model_version.as_deref().unwrap_or("(none)")
    )?;
    if let Some(meaning) = &e.probability_meaning {
        writeln!(out, "probability {meaning}")?;
    }
    if let Some(window) = e.window_summary() {
        writeln!(out, "window      {window}")?;
    }
    if let Some(note) = e.open_leads_note() {
        writeln!(out, "note        {note}")?;
    }
    writeln!(out, "leads       {}", c.describe())?;
    if c.superseded_predictions > 0 {
        writeln!(
            out,
            "            {} earlier predictions of re-scored leads superseded by later ones",
            c.superseded_predictions
        )?;
    }
    if c.predictions_after_outcome > 0 {
        writeln!(
            out,
            "            {} predictions made after their lead's outcome was known: not used",
            c.predictions_after_outcome
        )?;
    }
    if c.evaluated_without_cutoff > 0 {
        writeln!(
            out,
            "WARNING     {} leads evaluated without checking that their prediction came before \
             the outcome (give --outcome-date; predictions need times): a prediction made after \
             the outcome may flatter the model",
            c.evaluated_without_cutoff
        )?;
    }
    if c.without_month > 0 {
        writeln!(
            out,
            "            {} evaluated leads have no valid date (not in the monthly table)",
            c.without_month
        )?;
    }
    if !c.absent_columns.is_empty() {
        writeln!(
            out,
            "WARNING     model columns absent from the file, imputed as missing: {}",
            c.absent_columns.join(", ")
        )?;
    }
    if c.model_versions.len() > 1 {
        let versions: Vec<String> = c
            .model_versions
            .iter()
            .map(|(v, n)| format!("{v} ({n})"))
            .collect();
        writeln!(
            out,
            "            predictions from several models: {}",
            versions.join(", ")
        )?;
    }
    Ok(())
}

/// The headline metrics, one line per question, and the drift.
fn headline(out: &mut String, e: &Evaluation) -> fmt::Result {
    let m = &e.metrics;
    writeln!(
        out,
        "closure     {} won of {} leads: realized {}, mean predicted {} (gap {:+.1} points)",
        m.wins,
        m.leads,
        pct(m.realized_rate),
        pct(m.mean_predicted),
        m.calibration_gap * 100.0
    )?;
    writeln!(out, "ranking     ROC AUC {}", opt(m.roc_auc, 4))?;
    writeln!(
        out,
        "accuracy    log loss {:.4}  Brier {:.4} (base rate {:.4}, skill {})",
        m.log_loss,
        m.brier,
        m.brier_reference,
        opt(m.brier_skill, 3)
    )?;
    writeln!(
        out,
        "calibration ECE {:.4}  max CE {:.4}  slope {}  intercept {}  (ideal 0, 0, 1, 0)",
        m.expected_calibration_error,
        m.max_calibration_error,
        opt(m.calibration_slope, 3),
        opt(m.calibration_intercept, 3)
    )?;
    if let Some(d) = &e.drift {
        writeln!(
            out,
            "drift       PSI {:.3} ({}; < 0.1 stable, 0.1–0.25 moderate, ≥ 0.25 major); median \
             probability {} in training, {} here",
            d.psi,
            d.level,
            pct(d.training_median),
            pct(d.evaluated_median)
        )?;
        let versions = &e.coverage.model_versions;
        if let Some(model) = &e.model_version
            && !versions.is_empty()
            && versions.keys().any(|v| v != model)
        {
            writeln!(
                out,
                "            (drift is measured against model {model}'s training; the predictions \
                 came from {})",
                versions
                    .iter()
                    .map(|(v, n)| format!("{v} ({n})"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )?;
        }
    }
    Ok(())
}

/// The per-attribute drift table, every attribute, worst first.
fn feature_drift(out: &mut String, drift: &FeatureDrift) -> fmt::Result {
    if let Some(why) = &drift.unavailable {
        return writeln!(out, "drift per attribute: not measured: {why}");
    }
    let flagged = drift.flagged().count();
    writeln!(
        out,
        "drift per attribute against training, worst first ({flagged} of {} flagged !: {})",
        drift.attributes.len(),
        crate::evaluate::feature_drift::flag_rule()
    )?;
    feature_drift_table(out, drift, false)
}

/// The rows of a per-attribute drift table (worst first): every attribute, or with `notable`
/// only those flagged or at least moderate. Shares outside the range and unseen are of the
/// values present; missing is of all leads, beside the training share.
pub fn feature_drift_table(out: &mut String, drift: &FeatureDrift, notable: bool) -> fmt::Result {
    let rows: Vec<_> = drift
        .attributes
        .iter()
        .filter(|a| !notable || a.reason.is_some())
        .collect();
    let width = rows
        .iter()
        .map(|a| a.attribute.chars().count())
        .chain([9])
        .max()
        .unwrap_or(9)
        .min(40);
    writeln!(
        out,
        "  {:<width$} {:<11} {:>7} {:<8} {:>15} {:>7} {:>7} {:>7}  reason",
        "attribute", "kind", "PSI", "level", "missing (train)", "below", "above", "unseen"
    )?;
    let share = |x: Option<f64>| x.map_or("-".to_string(), pct);
    for a in rows {
        let name = printable(&a.attribute, width);
        let line = format!(
            "  {:<width$} {:<11} {:>7.3} {:<8} {:>15} {:>7} {:>7} {:>7} {} {}",
            name,
            a.kind.to_string(),
            a.psi,
            a.level,
            format!(
                "{} ({})",
                pct(a.missing_share),
                pct(a.training_missing_share)
            ),
            share(a.below_range_share),
            share(a.above_range_share),
            share(a.unseen_share),
            if a.flagged { "!" } else { " " },
            a.reason.as_deref().unwrap_or("")
        );
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

fn deciles(out: &mut String, e: &Evaluation) -> fmt::Result {
    writeln!(out, "lift and gains by decile (1 = highest scored)")?;
    writeln!(
        out,
        "  {:>6} {:>15} {:>8} {:>7} {:>9} {:>9} {:>6} {:>8} {:>8}",
        "decile",
        "probability",
        "leads",
        "wins",
        "realized",
        "predicted",
        "lift",
        "gains",
        "cum.lift"
    )?;
    for d in &e.deciles {
        writeln!(
            out,
            "  {:>6} {:>15} {:>8} {:>7} {:>9} {:>9} {:>6.2} {:>8} {:>8.2}",
            d.decile,
            format!("{:.3}–{:.3}", d.min_probability, d.max_probability),
            d.leads,
            d.wins,
            pct(d.realized_rate),
            pct(d.mean_predicted),
            d.lift,
            pct(d.cumulative_wins_share),
            d.cumulative_lift
        )?;
    }
    Ok(())
}

/// Closure rate per `--by` segment, then per month.
fn segment_tables(out: &mut String, e: &Evaluation) -> fmt::Result {
    for table in e.segments.iter().chain(e.months.as_ref()) {
        writeln!(out)?;
        let what = if Some(table) == e.months.as_ref() {
            format!("per month of {}", table.column)
        } else {
            format!("per {}", table.column)
        };
        writeln!(
            out,
            "closure rate {what} against the company average {} (! = significant at 95% for \
             the row alone, so about 1 row in 20 by chance; * = prediction outside the interval)",
            pct(e.metrics.realized_rate)
        )?;
        rates(out, &table.column, &table.rows)?;
    }
    Ok(())
}

fn gate_lines(out: &mut String, e: &Evaluation) -> fmt::Result {
    if !e.gates.is_empty() {
        writeln!(out)?;
        for g in &e.gates {
            writeln!(
                out,
                "gate {}  {} {}",
                if g.passed { "PASSED" } else { "FAILED" },
                g.gate,
                g.message
            )?;
        }
    }
    Ok(())
}

fn bands(out: &mut String, rows: &[BandRow]) -> fmt::Result {
    writeln!(
        out,
        "  {:>13} {:>8} {:>7} {:>9} {:>9} {:>14}",
        "band", "leads", "wins", "predicted", "realized", "95% interval"
    )?;
    for b in rows {
        writeln!(
            out,
            "  {:>13} {:>8} {:>7} {:>9} {:>9} {:>14} {}",
            format!("{:.3}–{:.3}", b.lower, b.upper),
            b.leads,
            b.wins,
            pct(b.mean_predicted),
            pct(b.realized_rate),
            interval(b.ci_low, b.ci_high),
            if b.prediction_outside { "*" } else { "" }
        )?;
    }
    Ok(())
}

fn rates(out: &mut String, column: &str, rows: &[RateRow]) -> fmt::Result {
    let width = rows
        .iter()
        .map(|r| r.label.chars().count())
        .chain([column.chars().count(), 5])
        .max()
        .unwrap_or(5)
        .min(40);
    writeln!(
        out,
        "  {:<width$} {:>8} {:>7} {:>9} {:>14} {:>9} {:>8} {:>16}",
        column,
        "leads",
        "wins",
        "realized",
        "95% interval",
        "predicted",
        "vs avg",
        "interval (pts)"
    )?;
    for r in rows {
        let label = printable(&r.label, width);
        writeln!(
            out,
            "  {:<width$} {:>8} {:>7} {:>9} {:>14} {:>9} {:>8} {:>16} {}{}",
            label,
            r.leads,
            r.wins,
            pct(r.realized_rate),
            interval(r.ci_low, r.ci_high),
            pct(r.mean_predicted),
            points(r.difference),
            format!(
                "[{}, {}]",
                points(r.difference_low),
                points(r.difference_high)
            ),
            if r.significant { "!" } else { " " },
            if r.prediction_outside { "*" } else { "" }
        )?;
    }
    Ok(())
}

/// CRM text (a label, a column name) printed as data: at most `width` characters, control
/// characters (escape sequences) as '?'.
fn printable(text: &str, width: usize) -> String {
    text.chars()
        .take(width)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}
