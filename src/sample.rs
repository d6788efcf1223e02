//! Synthetic leads drawn from a known logistic model, for demos, tests and benchmarks.
//!
//! Every lead's log-odds of closing is `intercept + Σ effect`, with the effects in [`TRUTH`]; the
//! intercept is solved so the closure rate is [`TARGET_RATE`]. A model trained on this data
//! should recover the signs and the ranking of the effects.
//!
//! With closed dates ([`SampleOptions::closed_dates`]) the leads also close in time, as a B2B
//! pipeline does: a won lead is won, and a lost lead lost, a Weibull-distributed number of days
//! after it was created, later the larger the company ([`DELAYS`]); leads not yet decided at
//! the export date ([`EXPORT_DATE`]) are open (empty outcome, no closed date). Whether a lead is
//! ever won is drawn exactly as without dates, so the two files hold the same leads. The true
//! chance of a win within a horizon, for a lead of any age still open, is
//! [`p_win_within`] of its true P(ever won), which `--truth FILE` writes per lead.

use crate::fsutil::{AtomicFile, FileError};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp, LogNormal, Poisson};
use serde::Serialize;
use std::path::Path;

/// The closure rate the sample aims at (the cross-industry average).
pub const TARGET_RATE: f64 = 0.13;

/// Effect in log-odds of each category level (against a level with effect 0).
pub struct CategoryTruth {
    pub column: &'static str,
    pub levels: &'static [(&'static str, f64, f64)], // (label, effect, share of leads)
}

/// The true model behind `leadscore sample`.
pub struct Truth {
    pub categories: &'static [CategoryTruth],
    /// Effect per unit of each numeric column.
    pub numeric: &'static [(&'static str, f64)],
    /// Effect of `demo_requested = yes`.
    pub demo_requested: f64,
}

pub const TRUTH: Truth = Truth {
    categories: &[
        CategoryTruth {
            column: "source",
            levels: &[
                ("Web", 0.0, 0.35),
                ("Referral", 0.8, 0.15),
                ("Event", 0.4, 0.10),
                ("Paid Search", -0.2, 0.20),
                ("Cold Call", -0.9, 0.12),
                ("Partner", 0.5, 0.08),
            ],
        },
        CategoryTruth {
            column: "industry",
            levels: &[
                ("Software", 0.3, 0.25),
                ("Finance", 0.1, 0.15),
                ("Healthcare", 0.0, 0.15),
                ("Retail", -0.3, 0.15),
                ("Manufacturing", -0.1, 0.20),
                ("Education", -0.4, 0.10),
            ],
        },
        CategoryTruth {
            column: "region",
            levels: &[
                ("North America", 0.0, 0.40),
                ("EMEA", 0.0, 0.30),
                ("APAC", -0.2, 0.20),
                ("LATAM", 0.0, 0.10),
            ],
        },
        CategoryTruth {
            column: "company_size",
            levels: &[
                ("Small", -0.3, 0.40),
                ("Medium", 0.0, 0.30),
                ("Large", 0.2, 0.20),
                ("Enterprise", 0.4, 0.10),
            ],
        },
        CategoryTruth {
            column: "rep",
            levels: &[
                ("Ana Silva", 0.25, 0.125),
                ("Ben Okafor", 0.1, 0.125),
                ("Chen Wei", 0.0, 0.125),
                ("Dana Levi", 0.0, 0.125),
                ("Emil Novak", -0.1, 0.125),
                ("Fatima Khan", 0.15, 0.125),
                ("Goran Ilic", -0.25, 0.125),
                ("Hana Sato", 0.0, 0.125),
            ],
        },
    ],
    numeric: &[
        ("web_visits", 0.12),
        ("emails_opened", 0.08),
        ("days_since_last_touch", -0.04),
    ],
    demo_requested: 1.3,
};

/// What `leadscore sample` wrote.
#[derive(Debug, Clone, Serialize)]
pub struct SampleSummary {
    pub rows: usize,
    /// Leads ever won (with closed dates, some of them still open at the export date).
    pub wins: usize,
    pub closure_rate: f64,
    pub intercept: f64,
    /// Leads still open at the export date, when written with closed dates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub open: Option<usize>,
}

/// What `leadscore sample` writes.
#[derive(Debug, Clone, Default)]
pub struct SampleOptions {
    pub rows: usize,
    pub seed: u64,
    /// Add a `closed_at` column and leave the leads not yet decided at [`EXPORT_DATE`] open.
    pub closed_dates: bool,
    /// Also write each lead's true P(ever won) here (`lead_id,company_size,p_won`), for tests
    /// that compare a model with the truth (see [`p_win_within`]).
    pub truth: Option<std::path::PathBuf>,
    /// Give `days_since_last_touch` the curved effect [`curved_touch`] instead of its straight
    /// line, for tests and benchmarks of numeric shapes. The leads drawn are the same; only
    /// their chances (so the outcomes) change.
    pub curved: bool,
}

/// The curved effect of `days_since_last_touch` on the log-odds with `--curved`: leads touched
/// a week or two ago close best, fresher and older ones less (rising by 0.68 to its peak near
/// 12 days, then falling towards the straight line's slope, 0.04 a day).
pub fn curved_touch(days: f64) -> f64 {
    -0.04 * days + 1.5 * (1.0 - (-days / 8.0).exp())
}

/// The last day of the export written with closed dates: leads are created on the 365 days of
/// 2025 and only decisions made by this day are known.
pub const EXPORT_DATE: (i32, u32, u32) = (2025, 12, 31);

/// How long leads take to be decided: Weibull with this shape and, per company size (in the
/// order of `company_size` in [`TRUTH`]), the scale in days of the time to a win and to a loss.
/// Median time to a win: 23, 39, 70 and 117 days from Small to Enterprise.
pub struct Delays {
    pub shape: f64,
    pub win_scale: [(&'static str, f64); 4],
    pub loss_scale: [(&'static str, f64); 4],
}

pub const DELAYS: Delays = Delays {
    shape: 1.5,
    win_scale: [
        ("Small", 30.0),
        ("Medium", 50.0),
        ("Large", 90.0),
        ("Enterprise", 150.0),
    ],
    loss_scale: [
        ("Small", 40.0),
        ("Medium", 60.0),
        ("Large", 100.0),
        ("Enterprise", 160.0),
    ],
};

impl Delays {
    /// P(not yet decided after `days`) for a decision with this `scale`.
    fn survival(&self, scale: f64, days: f64) -> f64 {
        (-(days.max(0.0) / scale).powf(self.shape)).exp()
    }

    fn scales(&self, company_size: &str) -> Option<(f64, f64)> {
        let i = self
            .win_scale
            .iter()
            .position(|(size, _)| size.eq_ignore_ascii_case(company_size))?;
        Some((self.win_scale[i].1, self.loss_scale[i].1))
    }

    /// Days from creation to the decision: the lead closes on its created date plus the
    /// ceiling, so "closed within H days" has exactly the continuous probability at whole H.
    fn draw(&self, scale: f64, rng: &mut ChaCha8Rng) -> u64 {
        // 1 − U lies in (0, 1], so the logarithm is finite.
        let u = 1.0 - rng.random::<f64>();
        (scale * (-u.ln()).powf(1.0 / self.shape)).ceil() as u64
    }
}

/// The true P(won within the next `horizon_days` | still open at `age_days`) of a sample lead
/// whose true P(ever won) is `p_won` (from the `--truth` file), or `None` for a company size the
/// sample does not have. At age 0 it is `p_won · P(win delay ≤ H)`; later, the leads already
/// decided are out of the picture: `p_won · (S_win(a) − S_win(a + H)) / (p_won · S_win(a) +
/// (1 − p_won) · S_loss(a))`, with S the chance a decision is still to come.
pub fn p_win_within(
    p_won: f64,
    company_size: &str,
    age_days: f64,
    horizon_days: f64,
) -> Option<f64> {
    let (win, loss) = DELAYS.scales(company_size)?;
    let d = &DELAYS;
    let open = p_won * d.survival(win, age_days) + (1.0 - p_won) * d.survival(loss, age_days);
    if open <= 0.0 {
        return Some(0.0);
    }
    Some(
        p_won * (d.survival(win, age_days) - d.survival(win, age_days + horizon_days.max(0.0)))
            / open,
    )
}

/// One generated lead before it is written.
struct Lead {
    levels: Vec<usize>,
    employees: Option<f64>,
    web_visits: Option<u64>,
    emails_opened: u64,
    days_since_last_touch: u64,
    demo_requested: bool,
    day: u32,
}

/// Writes `rows` synthetic leads to `out` (atomically), deterministic for `seed`.
pub fn write_sample(out: &Path, rows: usize, seed: u64) -> Result<SampleSummary, FileError> {
    write(
        out,
        &SampleOptions {
            rows,
            seed,
            ..SampleOptions::default()
        },
    )
}

/// Writes the leads `options` asks for to `out` (and the truth file), atomically, deterministic
/// for the seed.
pub fn write(out: &Path, options: &SampleOptions) -> Result<SampleSummary, FileError> {
    let (rows, seed) = (options.rows, options.seed);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // Delays come from their own stream, so the leads and outcomes are the same with or
    // without dates.
    let mut delay_rng = ChaCha8Rng::seed_from_u64(seed);
    delay_rng.set_stream(1);
    let export_day = chrono::NaiveDate::from_ymd_opt(EXPORT_DATE.0, EXPORT_DATE.1, EXPORT_DATE.2)
        .expect("valid date");
    let visits = Poisson::new(4.0).expect("valid rate");
    let emails = Poisson::new(3.0).expect("valid rate");
    let touch = Exp::new(1.0 / 20.0).expect("valid rate");
    let employees = LogNormal::new(4.5, 1.2).expect("valid parameters");
    let size_scale: [f64; 4] = [0.3, 1.0, 4.0, 20.0];
    let mut leads = Vec::with_capacity(rows);
    let mut partial_logits = Vec::with_capacity(rows);
    for _ in 0..rows {
        let levels: Vec<usize> = TRUTH
            .categories
            .iter()
            .map(|c| pick(&mut rng, c.levels))
            .collect();
        let lead = Lead {
            employees: (rng.random::<f64>() >= 0.06).then(|| {
                (employees.sample(&mut rng) * size_scale[levels[3]])
                    .round()
                    .max(1.0)
            }),
            web_visits: (rng.random::<f64>() >= 0.03).then(|| visits.sample(&mut rng) as u64),
            emails_opened: emails.sample(&mut rng) as u64,
            days_since_last_touch: (touch.sample(&mut rng) as u64).min(365),
            demo_requested: rng.random::<f64>() < 0.2,
            day: rng.random_range(0..365),
            levels,
        };
        partial_logits.push(partial_logit(&lead, options.curved));
        leads.push(lead);
    }
    let intercept = solve_intercept(&partial_logits, TARGET_RATE);
    leads.sort_by_key(|l| l.day);
    let start = chrono::NaiveDate::from_ymd_opt(2025, 1, 1).expect("valid date");

    let mut file = AtomicFile::create(out)?;
    let io = |source| FileError {
        path: out.to_path_buf(),
        source,
    };
    let mut writer = csv::Writer::from_writer(&mut file);
    let mut header = vec!["lead_id", "created_at"];
    header.extend(TRUTH.categories.iter().map(|c| c.column));
    header.extend([
        "employees",
        "web_visits",
        "emails_opened",
        "days_since_last_touch",
        "demo_requested",
        "converted",
    ]);
    if options.closed_dates {
        header.push("closed_at");
    }
    writer.write_record(&header).map_err(|e| io(e.into()))?;
    let mut truth = options
        .truth
        .as_deref()
        .map(TruthFile::create)
        .transpose()?;
    let (mut wins, mut open) = (0, 0);
    for (i, lead) in leads.iter().enumerate() {
        let p = crate::model::sigmoid(intercept + partial_logit(lead, options.curved));
        let won = rng.random::<f64>() < p;
        wins += won as usize;
        let id = format!("L{:07}", i + 1);
        let created = start + chrono::Days::new(lead.day as u64);
        let size = TRUTH.categories[3].levels[lead.levels[3]].0;
        if let Some(truth) = &mut truth {
            truth.write(&id, size, p)?;
        }
        let mut record: Vec<String> = vec![id, created.to_string()];
        for (c, &level) in TRUTH.categories.iter().zip(&lead.levels) {
            // Industry is sometimes left blank by the form.
            let missing = c.column == "industry" && rng.random::<f64>() < 0.04;
            record.push(if missing {
                String::new()
            } else {
                c.levels[level].0.to_string()
            });
        }
        record.push(lead.employees.map_or(String::new(), |e| format!("{e}")));
        record.push(lead.web_visits.map_or("NA".into(), |v| v.to_string()));
        record.push(lead.emails_opened.to_string());
        record.push(lead.days_since_last_touch.to_string());
        record.push(if lead.demo_requested { "yes" } else { "no" }.into());
        let outcome = if won { "1" } else { "0" };
        if options.closed_dates {
            let (win, loss) = DELAYS.scales(size).unwrap_or((1.0, 1.0));
            let delay = DELAYS.draw(if won { win } else { loss }, &mut delay_rng);
            match created.checked_add_days(chrono::Days::new(delay)) {
                Some(closed) if closed <= export_day => {
                    record.push(outcome.into());
                    record.push(closed.to_string());
                }
                _ => {
                    open += 1;
                    record.extend([String::new(), String::new()]);
                }
            }
        } else {
            record.push(outcome.into());
        }
        writer.write_record(&record).map_err(|e| io(e.into()))?;
    }
    writer.flush().map_err(io)?;
    drop(writer);
    if let Some(truth) = truth {
        truth.commit()?;
    }
    file.commit()?;
    Ok(SampleSummary {
        rows,
        wins,
        closure_rate: wins as f64 / rows.max(1) as f64,
        intercept,
        open: options.closed_dates.then_some(open),
    })
}

/// The `--truth` file: each lead's true P(ever won), beside its company size (which sets its
/// pace), so a test can compute its true chance of a win within any horizon at any age.
struct TruthFile {
    path: std::path::PathBuf,
    writer: csv::Writer<AtomicFile>,
}

impl TruthFile {
    fn create(path: &Path) -> Result<TruthFile, FileError> {
        let mut truth = TruthFile {
            path: path.to_path_buf(),
            writer: csv::Writer::from_writer(AtomicFile::create(path)?),
        };
        truth.record(&["lead_id", "company_size", "p_won"])?;
        Ok(truth)
    }

    fn write(&mut self, id: &str, company_size: &str, p_won: f64) -> Result<(), FileError> {
        self.record(&[id, company_size, &p_won.to_string()])
    }

    fn record(&mut self, fields: &[&str]) -> Result<(), FileError> {
        self.writer.write_record(fields).map_err(|e| FileError {
            path: self.path.clone(),
            source: e.into(),
        })
    }

    fn commit(self) -> Result<(), FileError> {
        let path = self.path;
        let file = self.writer.into_inner().map_err(|e| FileError {
            path: path.clone(),
            source: e.into_error(),
        })?;
        file.commit()
    }
}

fn pick(rng: &mut ChaCha8Rng, levels: &[(&str, f64, f64)]) -> usize {
    let mut u = rng.random::<f64>();
    for (i, level) in levels.iter().enumerate() {
        if u < level.2 {
            return i;
        }
        u -= level.2;
    }
    levels.len() - 1
}

/// The lead's log-odds without the intercept. Missing web visits count as the average (4).
/// `curved`: `days_since_last_touch` acts through [`curved_touch`].
fn partial_logit(lead: &Lead, curved: bool) -> f64 {
    let categories: f64 = TRUTH
        .categories
        .iter()
        .zip(&lead.levels)
        .map(|(c, &l)| c.levels[l].1)
        .sum();
    let values = [
        lead.web_visits.unwrap_or(4) as f64,
        lead.emails_opened as f64,
        lead.days_since_last_touch as f64,
    ];
    let numeric: f64 = TRUTH
        .numeric
        .iter()
        .zip(values)
        .map(|(&(name, effect), v)| {
            if curved && name == "days_since_last_touch" {
                curved_touch(v)
            } else {
                effect * v
            }
        })
        .sum();
    categories
        + numeric
        + if lead.demo_requested {
            TRUTH.demo_requested
        } else {
            0.0
        }
}

/// The intercept at which the mean probability equals `rate` (bisection; the mean is
/// increasing in the intercept).
fn solve_intercept(partial: &[f64], rate: f64) -> f64 {
    let mean_at = |b: f64| {
        partial
            .iter()
            .map(|&z| crate::model::sigmoid(b + z))
            .sum::<f64>()
            / partial.len().max(1) as f64
    };
    let (mut lo, mut hi) = (-20.0, 20.0);
    for _ in 0..100 {
        let mid = (lo + hi) / 2.0;
        if mean_at(mid) < rate {
            lo = mid
        } else {
            hi = mid
        }
    }
    (lo + hi) / 2.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_file_and_about_13_percent() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.csv"), dir.path().join("b.csv"));
        let sa = write_sample(&a, 5000, 7).unwrap();
        write_sample(&b, 5000, 7).unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
        assert!(
            (sa.closure_rate - TARGET_RATE).abs() < 0.02,
            "{}",
            sa.closure_rate
        );
        let c = dir.path().join("c.csv");
        write_sample(&c, 5000, 8).unwrap();
        assert_ne!(std::fs::read(&a).unwrap(), std::fs::read(&c).unwrap());
    }

    /// `--curved` draws the same leads; only outcomes move, at the same closure rate, and the
    /// curve peaks between a week and two.
    #[test]
    fn curved_leads_are_the_same_leads_with_other_outcomes() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.csv"), dir.path().join("b.csv"));
        write_sample(&a, 5000, 7).unwrap();
        let options = SampleOptions {
            rows: 5000,
            seed: 7,
            curved: true,
            ..SampleOptions::default()
        };
        let curved = write(&b, &options).unwrap();
        assert!((curved.closure_rate - TARGET_RATE).abs() < 0.02);
        let (plain, bent) = (rows(&a), rows(&b));
        let outcome = plain[0].len() - 1;
        let mut differ = 0;
        for (p, c) in plain.iter().zip(&bent) {
            assert_eq!(p[..outcome], c[..outcome]);
            differ += (p[outcome] != c[outcome]) as usize;
        }
        assert!(differ > 100, "{differ}");
        let peak =
            (0..60).max_by(|&x, &y| curved_touch(x as f64).total_cmp(&curved_touch(y as f64)));
        assert!((7..=14).contains(&peak.unwrap()));
    }

    /// Reads a written sample: each row's cells.
    fn rows(path: &Path) -> Vec<Vec<String>> {
        csv::Reader::from_path(path)
            .unwrap()
            .records()
            .map(|r| r.unwrap().iter().map(String::from).collect())
            .collect()
    }

    fn date(s: &str) -> chrono::NaiveDate {
        chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn closed_dates_keep_the_leads_and_only_hide_undecided_outcomes() {
        let dir = tempfile::tempdir().unwrap();
        let (plain, dated) = (dir.path().join("p.csv"), dir.path().join("d.csv"));
        write_sample(&plain, 3000, 5).unwrap();
        let options = SampleOptions {
            rows: 3000,
            seed: 5,
            closed_dates: true,
            truth: None,
            curved: false,
        };
        let summary = write(&dated, &options).unwrap();
        let export = date("2025-12-31");
        let (mut open, mut slow, mut fast) = (0, Vec::new(), Vec::new());
        for (p, d) in rows(&plain).iter().zip(rows(&dated)) {
            assert_eq!(p[..12], d[..12], "same lead");
            if d[12].is_empty() {
                open += 1;
                assert!(d[13].is_empty());
                continue;
            }
            assert_eq!(p[12], d[12], "same outcome");
            let days = (date(&d[13]) - date(&d[1])).num_days();
            assert!(days >= 0 && date(&d[13]) <= export);
            if d[12] == "1" {
                match d[5].as_str() {
                    "Small" => fast.push(days),
                    "Enterprise" => slow.push(days),
                    _ => {}
                }
            }
        }
        assert_eq!(summary.open, Some(open));
        assert!(open > 0);
        let median = |v: &mut Vec<i64>| {
            v.sort();
            v[v.len() / 2]
        };
        assert!(
            median(&mut slow) > 2 * median(&mut fast),
            "larger companies close later"
        );
    }

    /// The true probabilities the truth file gives match what the generator wrote: per company
    /// size, the share of leads won within 90 days of creation, and of the leads still open at
    /// 30 days, the share won in the next 90 (the cells aging scores will be tested on).
    #[test]
    fn p_win_within_is_the_generated_rate_at_creation_and_at_30_days() {
        let dir = tempfile::tempdir().unwrap();
        let (data, truth) = (dir.path().join("d.csv"), dir.path().join("t.csv"));
        let options = SampleOptions {
            rows: 60_000,
            seed: 9,
            closed_dates: true,
            truth: Some(truth.clone()),
            curved: false,
        };
        write(&data, &options).unwrap();
        let export = date("2025-12-31");
        // size → [leads, won, true sum] at age 0 and at age 30.
        let mut cells: std::collections::HashMap<(String, u32), [f64; 3]> = Default::default();
        for (lead, t) in rows(&data).iter().zip(rows(&truth)) {
            assert_eq!(lead[0], t[0]);
            let p: f64 = t[2].parse().unwrap();
            let created = date(&lead[1]);
            // Only leads whose windows have passed by the export date.
            if (export - created).num_days() < 120 {
                continue;
            }
            let decided = (!lead[13].is_empty()).then(|| (date(&lead[13]) - created).num_days());
            for age in [0u32, 30] {
                if decided.is_some_and(|d| d <= i64::from(age)) {
                    continue; // not open at this age
                }
                let won = lead[12] == "1" && decided.is_some_and(|d| d <= i64::from(age) + 90);
                let cell = cells.entry((t[1].clone(), age)).or_default();
                cell[0] += 1.0;
                cell[1] += f64::from(u8::from(won));
                cell[2] += p_win_within(p, &t[1], f64::from(age), 90.0).unwrap();
            }
        }
        assert_eq!(cells.len(), 8);
        for ((size, age), [leads, won, truth]) in &cells {
            let (observed, expected) = (won / leads, truth / leads);
            // Three standard errors of the observed share.
            let tolerance = 3.0 * (expected * (1.0 - expected) / leads).sqrt();
            assert!(
                (observed - expected).abs() < tolerance,
                "{size} at {age} days: {leads} leads, observed {observed:.4}, true {expected:.4}"
            );
        }
        assert_eq!(p_win_within(0.5, "Giant", 0.0, 90.0), None);
    }

    #[test]
    fn intercept_hits_the_rate() {
        let partial = [-1.0, 0.0, 2.0];
        let b = solve_intercept(&partial, 0.3);
        let mean: f64 = partial
            .iter()
            .map(|z| crate::model::sigmoid(b + z))
            .sum::<f64>()
            / 3.0;
        assert!((mean - 0.3).abs() < 1e-9);
    }
}
