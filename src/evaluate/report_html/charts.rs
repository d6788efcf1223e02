//! The report's charts, drawn as inline SVG: the reliability diagram, the gains curve, the score
//! histogram, monthly predicted against realized closure rates, a horizon model's cohorts and
//! the funnel.

use super::{esc, pct};
use crate::evaluate::funnel::Funnel;
use crate::evaluate::{BandRow, Evaluation, RateRow};
use std::fmt::{self, Write as _};

/// A chart area: data coordinates mapped onto an SVG of `WIDTH` × `HEIGHT`.
pub(super) struct Plot {
    pub(super) x_min: f64,
    pub(super) x_max: f64,
    pub(super) y_min: f64,
    pub(super) y_max: f64,
    /// Tick labels of each axis ([`tick`]: percentages).
    pub(super) x_tick: fn(f64) -> String,
    pub(super) y_tick: fn(f64) -> String,
}

pub(super) const WIDTH: f64 = 480.0;
const HEIGHT: f64 = 320.0;
const LEFT: f64 = 48.0;
pub(super) const RIGHT: f64 = 22.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 40.0;

impl Plot {
    pub(super) fn x(&self, v: f64) -> f64 {
        LEFT + (v - self.x_min) / (self.x_max - self.x_min) * (WIDTH - LEFT - RIGHT)
    }

    pub(super) fn y(&self, v: f64) -> f64 {
        HEIGHT - BOTTOM - (v - self.y_min) / (self.y_max - self.y_min) * (HEIGHT - TOP - BOTTOM)
    }

    /// Opens the SVG and draws grid lines, axes and tick labels (as percentages).
    pub(super) fn open(
        &self,
        out: &mut String,
        label: &str,
        x_title: &str,
        y_title: &str,
    ) -> fmt::Result {
        write!(
            out,
            r#"<svg viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{}">"#,
            esc(label)
        )?;
        if !x_title.is_empty() {
            for fx in ticks(self.x_min, self.x_max) {
                let x = self.x(fx);
                write!(
                    out,
                    r#"<line class="grid" x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                    self.y(self.y_min),
                    self.y(self.y_max),
                    HEIGHT - BOTTOM + 14.0,
                    esc(&(self.x_tick)(fx))
                )?;
            }
        }
        for fy in ticks(self.y_min, self.y_max) {
            let y = self.y(fy);
            write!(
                out,
                r#"<line class="grid" x1="{:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
                self.x(self.x_min),
                self.x(self.x_max),
                LEFT - 5.0,
                y + 4.0,
                esc(&(self.y_tick)(fy))
            )?;
        }
        write!(
            out,
            r#"<line class="axis" x1="{LEFT}" y1="{b:.1}" x2="{r:.1}" y2="{b:.1}"/><line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{b:.1}"/>"#,
            b = HEIGHT - BOTTOM,
            r = WIDTH - RIGHT
        )?;
        write!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text><text transform="translate(12 {:.1}) rotate(-90)" text-anchor="middle">{}</text>"#,
            (LEFT + WIDTH - RIGHT) / 2.0,
            HEIGHT - 6.0,
            esc(x_title),
            (TOP + HEIGHT - BOTTOM) / 2.0,
            esc(y_title)
        )
    }

    pub(super) fn polyline(
        &self,
        out: &mut String,
        class: &str,
        points: &[(f64, f64)],
    ) -> fmt::Result {
        let path: Vec<String> = points
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", self.x(x), self.y(y)))
            .collect();
        write!(
            out,
            r#"<polyline class="{class}" points="{}"/>"#,
            path.join(" ")
        )
    }
}

/// Tick label: a percentage with as few decimals as the value needs.
pub(super) fn tick(v: f64) -> String {
    let p = v * 100.0;
    if (p - p.round()).abs() < 1e-9 {
        format!("{p:.0}%")
    } else {
        format!("{p:.1}%")
    }
}

/// Round tick values from `min` to `max`: at most six steps of 1, 2, 2.5 or 5 times a power of
/// ten (at least 0.01: 1 point on the percentage axes).
pub(super) fn ticks(min: f64, max: f64) -> Vec<f64> {
    let range = max - min;
    if !(range.is_finite() && range > 0.0) {
        return vec![min];
    }
    let mut power = 0.01;
    while range / (power * 5.0) > 6.0 + 1e-9 {
        power *= 10.0;
    }
    let step = [1.0, 2.0, 2.5, 5.0]
        .into_iter()
        .map(|m| m * power)
        .find(|&s| range / s <= 6.0 + 1e-9)
        .unwrap_or(power * 5.0);
    let first = (min / step - 1e-9).ceil() as i64;
    let last = (max / step + 1e-9).floor() as i64;
    (first..=last).map(|k| k as f64 * step).collect()
}

/// The smallest of 0.05, 0.1, 0.2, … 1.0 at or above `v` (axis ranges).
pub(super) fn nice_max(v: f64) -> f64 {
    [0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0]
        .into_iter()
        .find(|&m| m >= v - 1e-12)
        .unwrap_or(1.0)
}

/// The reliability diagram over the equal-width bands. The axes reach the highest band, however
/// few leads it holds, so that every band is drawn.
pub(super) fn reliability(out: &mut String, rows: &[BandRow]) -> fmt::Result {
    let top = rows
        .iter()
        .map(|b| b.upper.max(b.realized_rate))
        .fold(0.05, f64::max);
    let max = nice_max(top);
    let plot = Plot {
        x_min: 0.0,
        x_max: max,
        y_min: 0.0,
        y_max: max,
        x_tick: tick,
        y_tick: tick,
    };
    writeln!(out, "<figure><figcaption>Reliability diagram</figcaption>")?;
    plot.open(
        out,
        "Reliability diagram",
        "mean predicted probability",
        "realized closure rate",
    )?;
    plot.polyline(out, "ideal", &[(0.0, 0.0), (max, max)])?;
    let most = rows.iter().map(|b| b.leads).max().unwrap_or(1).max(1) as f64;
    for b in rows {
        let x = plot.x(b.mean_predicted);
        write!(
            out,
            r#"<line class="ci" x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}"/>"#,
            plot.y(b.ci_low.min(max)),
            plot.y(b.ci_high.min(max))
        )?;
        write!(
            out,
            r#"<circle class="dot{}" cx="{x:.1}" cy="{:.1}" r="{:.1}"><title>{:.3}–{:.3}: {} leads, predicted {}, realized {}</title></circle>"#,
            if b.prediction_outside { " off" } else { "" },
            plot.y(b.realized_rate.min(max)),
            3.0 + 6.0 * (b.leads as f64 / most).sqrt(),
            b.lower,
            b.upper,
            b.leads,
            pct(b.mean_predicted),
            pct(b.realized_rate)
        )?;
    }
    writeln!(out, "</svg>")?;
    writeln!(
        out,
        "<p class=\"note\">One dot per equal-width band (area ∝ leads) with its 95% interval; \
         on the dashed line predictions come true. Red: prediction outside the interval.</p></figure>"
    )
}

pub(super) fn gains(out: &mut String, e: &Evaluation) -> fmt::Result {
    let plot = Plot {
        x_min: 0.0,
        x_max: 1.0,
        y_min: 0.0,
        y_max: 1.0,
        x_tick: tick,
        y_tick: tick,
    };
    writeln!(out, "<figure><figcaption>Cumulative gains</figcaption>")?;
    plot.open(
        out,
        "Cumulative gains",
        "share of leads called, best scored first",
        "share of wins found",
    )?;
    plot.polyline(out, "ideal", &[(0.0, 0.0), (1.0, 1.0)])?;
    let base = e.metrics.realized_rate;
    if base > 0.0 {
        plot.polyline(out, "perfect", &[(0.0, 0.0), (base, 1.0), (1.0, 1.0)])?;
    }
    let mut points = vec![(0.0, 0.0)];
    points.extend(
        e.deciles
            .iter()
            .map(|d| (d.cumulative_leads_share, d.cumulative_wins_share)),
    );
    plot.polyline(out, "real", &points)?;
    for &(x, y) in &points[1..] {
        write!(
            out,
            r#"<circle class="dot" cx="{:.1}" cy="{:.1}" r="3"/>"#,
            plot.x(x),
            plot.y(y)
        )?;
    }
    writeln!(out, "</svg>")?;
    writeln!(
        out,
        "<p class=\"note\">Blue: the model, one point per decile. Dashed: calling at random. \
         Light: a perfect ranking.</p></figure>"
    )
}

pub(super) fn histogram(out: &mut String, e: &Evaluation) -> fmt::Result {
    writeln!(out, "<figure><figcaption>Score distribution</figcaption>")?;
    let Some(d) = &e.drift else {
        return writeln!(
            out,
            "<p class=\"note\">No model to compare with: the distribution is not shown.</p></figure>"
        );
    };
    let top = d
        .histogram
        .iter()
        .map(|h| h.evaluated_share.max(h.training_share))
        .fold(0.0, f64::max);
    let plot = Plot {
        x_min: 0.0,
        x_max: 1.0,
        y_min: 0.0,
        y_max: nice_max(top),
        x_tick: tick,
        y_tick: tick,
    };
    plot.open(
        out,
        "Score distribution",
        "predicted probability",
        "share of leads",
    )?;
    for h in &d.histogram {
        let title = format!(
            "{:.2}–{:.2}: {} of evaluated, {} of training",
            h.lower,
            h.upper,
            pct(h.evaluated_share),
            pct(h.training_share)
        );
        bar(out, &plot, h.lower, h.upper, h.evaluated_share, &title)?;
    }
    let mut steps = Vec::new();
    for h in &d.histogram {
        steps.push((h.lower, h.training_share));
        steps.push((h.upper, h.training_share));
    }
    plot.polyline(out, "train", &steps)?;
    writeln!(out, "</svg>")?;
    writeln!(
        out,
        "<p class=\"legend\"><span><span class=\"swatch\" style=\"border-color:#1f5fbf\"></span>evaluated leads</span>\
         <span><span class=\"swatch\" style=\"border-color:#e08a1e\"></span>training leads</span> PSI {:.3} ({})</p></figure>",
        d.psi,
        esc(&d.level)
    )
}

/// A bar from `lower` to `upper` on the x axis, `value` high, with `title` on hover.
pub(super) fn bar(
    out: &mut String,
    plot: &Plot,
    lower: f64,
    upper: f64,
    value: f64,
    title: &str,
) -> fmt::Result {
    let (x0, x1) = (plot.x(lower) + 1.0, plot.x(upper) - 1.0);
    let y = plot.y(value);
    write!(
        out,
        r#"<rect class="bar" x="{x0:.1}" y="{y:.1}" width="{:.1}" height="{:.1}"><title>{}</title></rect>"#,
        (x1 - x0).max(0.5),
        plot.y(plot.y_min) - y,
        esc(title)
    )
}

pub(super) fn monthly(out: &mut String, e: &Evaluation) -> fmt::Result {
    let title = "Monthly predicted vs realized";
    writeln!(out, "<figure><figcaption>{title}</figcaption>")?;
    let rows = match &e.months {
        Some(m) if !m.rows.is_empty() => &m.rows,
        _ => {
            return writeln!(
                out,
                "<p class=\"note\">No date column: name one with <code>--date COL</code>.</p></figure>"
            );
        }
    };
    predicted_against_realized(out, title, "closure rate", rows)
}

/// A horizon model's cohorts: predicted against realized closure within H per month, over the
/// matured leads (months where none has matured are left out of the chart, not the table).
pub(super) fn cohorts(out: &mut String, e: &Evaluation) -> fmt::Result {
    let (Some(_), Some(days)) = (&e.cohorts, e.horizon_days) else {
        return Ok(());
    };
    let title = format!("Cohorts: closure within {days} days");
    writeln!(out, "<figure><figcaption>{}</figcaption>", esc(&title))?;
    // The cohorts with matured leads are the evaluation's monthly rows, in the same order.
    let rows = e.months.as_ref().map_or(&[][..], |m| &m.rows[..]);
    if rows.is_empty() {
        return writeln!(
            out,
            "<p class=\"note\">No cohort has matured yet.</p></figure>"
        );
    }
    predicted_against_realized(out, &title, &format!("closure within {days} days"), rows)
}

/// Realized rates with their 95% band against mean predictions, one point per row, closing
/// the figure opened by the caller.
fn predicted_against_realized(
    out: &mut String,
    title: &str,
    y_title: &str,
    rows: &[RateRow],
) -> fmt::Result {
    let n = rows.len();
    let top = rows
        .iter()
        .map(|r| r.ci_high.max(r.mean_predicted))
        .fold(0.0, f64::max);
    let plot = Plot {
        x_min: -0.5,
        x_max: n as f64 - 0.5,
        y_min: 0.0,
        y_max: nice_max(top),
        x_tick: tick,
        y_tick: tick,
    };
    plot.open(out, title, "", y_title)?;
    monthly_band(out, &plot, rows)?;
    let realized: Vec<(f64, f64)> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| (i as f64, r.realized_rate))
        .collect();
    let predicted: Vec<(f64, f64)> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| (i as f64, r.mean_predicted))
        .collect();
    plot.polyline(out, "real", &realized)?;
    plot.polyline(out, "pred", &predicted)?;
    monthly_points(out, &plot, rows)?;
    writeln!(out, "</svg>")?;
    writeln!(
        out,
        "<p class=\"legend\"><span><span class=\"swatch\" style=\"border-color:#1f5fbf\"></span>realized (band: 95% interval)</span>\
         <span><span class=\"swatch\" style=\"border-color:#e08a1e;border-top-style:dashed\"></span>mean predicted</span>\
         red dots: prediction outside the interval</p></figure>"
    )
}

/// `--funnel`: one bar per stage, as long as the leads that reached it, each step's rate and
/// interval written between the bars.
pub(super) fn funnel(out: &mut String, f: &Funnel) -> fmt::Result {
    writeln!(out, "<figure><figcaption>Funnel</figcaption>")?;
    let most = f.reached.iter().copied().max().unwrap_or(0).max(1) as f64;
    let stages = f.stages.len().max(1) as f64;
    let slot = (HEIGHT - TOP - BOTTOM) / stages;
    let bar = slot * 0.55;
    write!(
        out,
        r#"<svg viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="Funnel">"#
    )?;
    let span = WIDTH - LEFT - RIGHT;
    for (i, (stage, &n)) in f.stages.iter().zip(&f.reached).enumerate() {
        let width = (n as f64 / most * span).max(1.0);
        let x = LEFT + (span - width) / 2.0;
        let y = TOP + i as f64 * slot;
        write!(
            out,
            r#"<rect class="bar" x="{x:.1}" y="{y:.1}" width="{width:.1}" height="{bar:.1}"><title>{}: {n} leads</title></rect><text x="{:.1}" y="{:.1}" text-anchor="middle">{} · {n}</text>"#,
            esc(stage),
            WIDTH / 2.0,
            y + bar / 2.0 + 4.0,
            esc(stage)
        )?;
        if let Some(step) = f.steps.get(i) {
            write!(
                out,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">↓ {} [{}, {}]{}</text>"#,
                WIDTH / 2.0,
                y + bar + (slot - bar) / 2.0 + 4.0,
                pct(step.rate),
                pct(step.ci_low),
                pct(step.ci_high),
                step.median_days
                    .map_or_else(String::new, |d| format!(", median {d} days"))
            )?;
        }
    }
    writeln!(out, "</svg>")?;
    writeln!(
        out,
        "<p class=\"legend\">bars: leads that reached each stage; between them: the step's \
         conversion with its 95% interval</p></figure>"
    )
}

/// The realized rate's 95% interval as a shaded band behind the monthly lines.
fn monthly_band(out: &mut String, plot: &Plot, rows: &[RateRow]) -> fmt::Result {
    let mut band: Vec<String> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| format!("{:.1},{:.1}", plot.x(i as f64), plot.y(r.ci_high)))
        .collect();
    band.extend(
        rows.iter()
            .enumerate()
            .rev()
            .map(|(i, r)| format!("{:.1},{:.1}", plot.x(i as f64), plot.y(r.ci_low))),
    );
    write!(
        out,
        r#"<polygon class="band" points="{}"/>"#,
        band.join(" ")
    )
}

/// A dot per month (with its figures on hover) and a label under at most six of them.
fn monthly_points(out: &mut String, plot: &Plot, rows: &[RateRow]) -> fmt::Result {
    let every = rows.len().div_ceil(6).max(1);
    for (i, r) in rows.iter().enumerate() {
        write!(
            out,
            r#"<circle class="dot{}" cx="{:.1}" cy="{:.1}" r="3"><title>{}: {} leads, realized {} [{}, {}], predicted {}</title></circle>"#,
            if r.prediction_outside { " off" } else { "" },
            plot.x(i as f64),
            plot.y(r.realized_rate),
            esc(&r.label),
            r.leads,
            pct(r.realized_rate),
            pct(r.ci_low),
            pct(r.ci_high),
            pct(r.mean_predicted)
        )?;
        if i % every == 0 {
            write!(
                out,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                plot.x(i as f64),
                HEIGHT - BOTTOM + 14.0,
                esc(&r.label)
            )?;
        }
    }
    Ok(())
}
