//! Training: a CSV of historic leads → a validated model artifact, and its promotion.
//!
//! Architecture invariant: this is the only module that touches linfa's fitting API.
//!
//! Steps: read the CSV; parse outcomes (open rows set aside); infer column kinds; fit the
//! encoder; split a holdout (the most recent 20% by `--date`, else a stratified 20% with a fixed
//! seed); choose the L2 strength on a validation split of the training part; fit on the training
//! part and measure the holdout; refit on all rows (warm-started) and serve that fit.

use crate::data::{DataError, Table, read_csv};
use crate::encoder::{EncoderOptions, FeatureEncoder, encode_table};
use crate::metrics::{Summary, calibration_bins, log_loss, roc_auc};
use crate::model::{
    Coefficient, ColumnSummary, DataSummary, FORMAT_VERSION, HoldoutReport, Model, ModelArtifact,
    Regularisation, SolverReport, TargetSpec, grade_cutoffs, score_quantiles, sigmoid,
};
use crate::registry::{Registry, RegistryError};
use crate::schema::{
    ColumnProfile, Kind, MissingTokens, Outcome, OutcomeParser, infer_kind, parse_date,
};
use linfa::DatasetBase;
use linfa::traits::Fit as _;
use linfa_logistic::LogisticRegression;
use ndarray::{Array1, ArrayView1, ArrayView2, Axis, s};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

/// Everything `leadscore train` is told.
#[derive(Debug, Clone)]
pub struct TrainConfig {
    pub data: PathBuf,
    pub target: String,
    pub id: Option<String>,
    pub date: Option<String>,
    pub drop: Vec<String>,
    pub na: Vec<String>,
    pub positive: Option<String>,
    pub open: Vec<String>,
    pub kinds: BTreeMap<String, Kind>,
    /// Share of rows held out to measure the model.
    pub holdout_share: f64,
    pub seed: u64,
    /// Fewest won and fewest lost leads a sound model needs.
    pub min_class_rows: usize,
    pub max_iterations: u64,
    pub encoder: EncoderOptions,
    /// L2 strengths to try; the best on the validation split is used.
    pub alphas: Vec<f64>,
    /// Single-column ROC AUC at or above which a column is reported as probable leakage.
    pub leakage_auc: f64,
}

impl TrainConfig {
    pub fn new(data: impl Into<PathBuf>, target: impl Into<String>) -> TrainConfig {
        TrainConfig {
            data: data.into(),
            target: target.into(),
            id: None,
            date: None,
            drop: Vec::new(),
            na: Vec::new(),
            positive: None,
            open: Vec::new(),
            kinds: BTreeMap::new(),
            holdout_share: 0.2,
            seed: 42,
            min_class_rows: 40,
            max_iterations: 1000,
            encoder: EncoderOptions::default(),
            alphas: vec![100.0, 10.0, 1.0, 0.1],
            leakage_auc: 0.85,
        }
    }
}

/// Why training refused to produce a model. Nothing is written when any of these occurs.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(
        "{path}: column {column:?} has values that are neither won, lost nor open: {values} \
         (first at line {line}); name the winning value with --positive VALUE, or the values \
         that mean \"still open\" with --open VALUES"
    )]
    UnknownOutcome {
        path: PathBuf,
        column: String,
        values: String,
        line: u64,
    },
    #[error(
        "{path}: {wins} won and {losses} lost leads; a sound model needs at least {need} of each \
         (export a longer period, or check the --target column and --positive value)"
    )]
    TooFewOutcomes {
        path: PathBuf,
        wins: usize,
        losses: usize,
        need: usize,
    },
    #[error(
        "{path}: the {part} ({method}) has {wins} won and {losses} lost leads; it needs at least \
         {need} of each (check the --date column, or train without --date for a stratified \
         holdout)"
    )]
    UnbalancedSplit {
        path: PathBuf,
        part: &'static str,
        method: String,
        wins: usize,
        losses: usize,
        need: usize,
    },
    #[error("{path}, line {line}: column {column:?}: {value:?} is not a date (use YYYY-MM-DD)")]
    BadDate {
        path: PathBuf,
        line: u64,
        column: String,
        value: String,
    },
    #[error("{path}, line {line}: {message}")]
    BadValue {
        path: PathBuf,
        line: u64,
        message: String,
    },
    #[error("{path}: no usable feature columns remain (columns: {columns})")]
    NoFeatures { path: PathBuf, columns: String },
    #[error("--{flag} {column:?}: {reason}")]
    BadColumnChoice {
        flag: &'static str,
        column: String,
        reason: String,
    },
    #[error("the solver failed: {0}")]
    Solver(String),
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

/// A column that predicts the outcome suspiciously well on its own.
#[derive(Debug, Clone, Serialize)]
pub struct LeakageWarning {
    pub column: String,
    /// Single-column ROC AUC over all training rows.
    pub auc: f64,
    /// Single-column ROC AUC over the rows where the column is filled in.
    pub auc_where_present: Option<f64>,
}

impl std::fmt::Display for LeakageWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "probable leakage: column {:?} alone predicts the outcome with ROC AUC {:.3}",
            self.column, self.auc
        )?;
        if let Some(present) = self.auc_where_present {
            write!(f, " ({present:.3} where it is filled in)")?;
        }
        write!(
            f,
            "; if it is filled in after the outcome is known, drop it with --drop {:?}",
            self.column
        )
    }
}

/// Wall-clock time of each stage, in seconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Timings {
    pub read: f64,
    pub encode: f64,
    pub select_alpha: f64,
    pub holdout_fit: f64,
    pub final_fit: f64,
    pub total: f64,
}

/// A trained model and what training learned along the way.
#[derive(Debug, Clone)]
pub struct Trained {
    pub artifact: ModelArtifact,
    pub leakage: Vec<LeakageWarning>,
    pub warnings: Vec<String>,
    pub timings: Timings,
    /// Table rows of the holdout, their outcomes, and the holdout fit's probabilities, to
    /// compare with the serving model.
    pub holdout_rows: Vec<usize>,
    pub holdout_won: Vec<bool>,
    pub holdout_probabilities: Vec<f64>,
    pub table: Table,
}

/// Progress lines for long runs (the CLI prints them on stderr).
pub type Progress<'a> = &'a mut dyn FnMut(&str);

/// Trains a model from a CSV file. Writes nothing.
pub fn train(config: &TrainConfig, progress: Progress<'_>) -> Result<Trained, TrainError> {
    let started = Instant::now();
    let mut timings = Timings::default();
    progress(&format!("reading {}", config.data.display()));
    let table = read_csv(&config.data)?;
    timings.read = started.elapsed().as_secs_f64();
    progress(&format!(
        "read {} rows × {} columns in {:.2} s",
        table.rows(),
        table.headers.len(),
        timings.read
    ));
    let missing = MissingTokens::with_extra(&config.na);

    // Outcomes.
    let target = table.column_index(&config.target)?;
    let parser = OutcomeParser::new(config.positive.as_deref(), &config.open, missing.clone());
    let (rows, won) = parse_outcomes(&table, target, &parser, &config.target)?;
    // Columns and their roles.
    let id = config
        .id
        .as_deref()
        .map(|c| table.column_index(c))
        .transpose()?;
    let date = config
        .date
        .as_deref()
        .map(|c| table.column_index(c))
        .transpose()?;
    for (flag, column) in [("id", id), ("date", date)] {
        if column == Some(target) {
            return Err(TrainError::BadColumnChoice {
                flag,
                column: table.headers[target].clone(),
                reason: "is the --target column".into(),
            });
        }
    }
    let mut dropped = Vec::new();
    for name in &config.drop {
        dropped.push(table.column_index(name)?);
    }
    for name in config.kinds.keys() {
        table.column_index(name)?;
    }
    let wins = won.iter().filter(|&&w| w).count();
    let losses = won.len() - wins;
    if wins < config.min_class_rows || losses < config.min_class_rows {
        return Err(TrainError::TooFewOutcomes {
            path: table.path.clone(),
            wins,
            losses,
            need: config.min_class_rows,
        });
    }

    let mut profiles: Vec<ColumnProfile> = Vec::new();
    let mut features: Vec<(usize, Kind)> = Vec::new();
    let mut column_summaries = Vec::new();
    for (c, name) in table.headers.iter().enumerate() {
        let mut profile = infer_kind(name, table.column(c), &missing);
        if let Some((_, &kind)) = config
            .kinds
            .iter()
            .find(|(n, _)| table.column_index(n).ok() == Some(c))
        {
            profile.kind = kind;
            profile.reason = "set with --kind".into();
        }
        let role = if c == target {
            "target".to_string()
        } else if Some(c) == id {
            "id".to_string()
        } else if Some(c) == date {
            "date (orders the holdout)".to_string()
        } else if dropped.contains(&c) {
            "dropped (--drop)".to_string()
        } else if profile.kind.is_feature() {
            features.push((c, profile.kind));
            "feature".to_string()
        } else {
            format!("not a feature: {} ({})", profile.kind, profile.reason)
        };
        column_summaries.push(ColumnSummary {
            name: name.clone(),
            kind: profile.kind,
            role,
            missing: profile.missing as u64,
            distinct: profile.distinct as u64,
        });
        profiles.push(profile);
    }
    if features.is_empty() {
        return Err(TrainError::NoFeatures {
            path: table.path.clone(),
            columns: column_summaries
                .iter()
                .map(|c| format!("{} ({})", c.name, c.role))
                .collect::<Vec<_>>()
                .join(", "),
        });
    }

    // The holdout split decides the row order of the training matrix: training rows (shuffled)
    // first, holdout rows last, so both parts are views of one column-major matrix.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(config.seed);
    let (date_range, mut order, n_holdout, method) = match date {
        Some(d) => {
            let (order, n_holdout, range) =
                split_by_date(&table, d, &rows, config.holdout_share, &missing)?;
            let method = format!(
                "the most recent {:.0}% of leads by {:?}",
                config.holdout_share * 100.0,
                table.headers[d]
            );
            (range, order, n_holdout, method)
        }
        None => {
            let (order, n_holdout) = split_stratified(&won, config.holdout_share, &mut rng);
            let method = format!(
                "a stratified random {:.0}% of leads (seed {})",
                config.holdout_share * 100.0,
                config.seed
            );
            (None, order, n_holdout, method)
        }
    };
    let n_train = order.len() - n_holdout;
    order[..n_train].shuffle(&mut rng);
    let ordered_rows: Vec<usize> = order.iter().map(|&i| rows[i]).collect();
    let y: Vec<bool> = order.iter().map(|&i| won[i]).collect();
    // Both parts need both outcomes: a holdout of a handful of leads measures nothing, and a
    // training part without wins cannot be fitted.
    for (part, ys, need) in [
        ("training part", &y[..n_train], config.min_class_rows / 2),
        ("holdout", &y[n_train..], 10),
    ] {
        let part_wins = ys.iter().filter(|&&w| w).count();
        if part_wins < need || ys.len() - part_wins < need {
            return Err(TrainError::UnbalancedSplit {
                path: table.path.clone(),
                part,
                method: method.clone(),
                wins: part_wins,
                losses: ys.len() - part_wins,
                need,
            });
        }
    }

    // Encoding (fitted on every row with an outcome: it is unsupervised apart from the
    // closure rates kept for explanations).
    let t = Instant::now();
    let encoder = FeatureEncoder::fit(
        features
            .iter()
            .map(|&(c, kind)| (table.headers[c].as_str(), kind, table.column(c))),
        &rows,
        &won,
        &missing,
        &config.encoder,
    )
    .map_err(|(row, e)| TrainError::BadValue {
        path: table.path.clone(),
        line: table.lines[row],
        message: e.to_string(),
    })?;
    let feature_columns: Vec<usize> = features.iter().map(|&(c, _)| c).collect();
    let x =
        encode_table(&encoder, &table, &feature_columns, &ordered_rows).map_err(|(row, e)| {
            TrainError::BadValue {
                path: table.path.clone(),
                line: table.lines[row],
                message: e.to_string(),
            }
        })?;
    timings.encode = t.elapsed().as_secs_f64();
    progress(&format!(
        "encoded {} leads into {} features in {:.2} s",
        x.nrows(),
        x.ncols(),
        timings.encode
    ));

    // The training rows come first and are shuffled, so the first rows are a random sample;
    // 200,000 leads pin a single-column AUC down to about ±0.002.
    let leak_rows = n_train.min(200_000);
    let leakage = detect_leakage(
        &encoder,
        x.slice(s![..leak_rows, ..]),
        &y[..leak_rows],
        config.leakage_auc,
    );

    // Regularisation: candidates on a validation split of (a sample of) the training part.
    let t = Instant::now();
    let solver = Solver {
        max_iterations: config.max_iterations,
    };
    let sample = n_train.min(50_000);
    let n_fit = sample * 4 / 5;
    let (fit_x, val_x) = (x.slice(s![..n_fit, ..]), x.slice(s![n_fit..sample, ..]));
    let (fit_y, val_y) = (&y[..n_fit], &y[n_fit..sample]);
    let mut candidates = Vec::new();
    let mut warm: Option<Fit> = None;
    let mut best: Option<(f64, f64, Fit)> = None;
    for &alpha in &config.alphas {
        let fit = solver.fit(fit_x, fit_y, alpha, warm.as_ref())?;
        let loss = log_loss(&fit.probabilities(val_x).to_vec(), val_y);
        progress(&format!(
            "  alpha {alpha:>7}: validation log loss {loss:.5}"
        ));
        candidates.push((alpha, loss));
        if best.as_ref().is_none_or(|b| loss < b.1) {
            best = Some((alpha, loss, fit.clone()));
        }
        warm = Some(fit);
    }
    let (alpha, _, alpha_fit) = best.expect("at least one alpha candidate");
    timings.select_alpha = t.elapsed().as_secs_f64();

    // Holdout fit and metrics.
    let t = Instant::now();
    let (train_x, holdout_x) = (x.slice(s![..n_train, ..]), x.slice(s![n_train.., ..]));
    let holdout_fit = solver.fit(train_x, &y[..n_train], alpha, Some(&alpha_fit))?;
    let holdout_p = holdout_fit.probabilities(holdout_x).to_vec();
    let holdout_y = &y[n_train..];
    let holdout_metrics = Summary::compute(&holdout_p, holdout_y);
    timings.holdout_fit = t.elapsed().as_secs_f64();
    progress(&format!(
        "holdout ({} leads): ROC AUC {}, log loss {:.4}, Brier {:.4} ({:.2} s)",
        holdout_p.len(),
        holdout_metrics
            .roc_auc
            .map_or("n/a".into(), |a| format!("{a:.4}")),
        holdout_metrics.log_loss,
        holdout_metrics.brier,
        timings.holdout_fit
    ));

    // Served model: refit on every row, warm-started from the holdout fit.
    let t = Instant::now();
    let final_fit = solver.fit(x.view(), &y, alpha, Some(&holdout_fit))?;
    timings.final_fit = t.elapsed().as_secs_f64();
    progress(&format!(
        "refit on all {} leads in {:.2} s",
        x.nrows(),
        timings.final_fit
    ));
    let mut warnings = Vec::new();
    for (what, fit) in [("holdout fit", &holdout_fit), ("final fit", &final_fit)] {
        if !fit.converged {
            warnings.push(format!(
                "{what}: the solver stopped (iteration limit {} or no further progress) with \
                 gradient norm {:.3e}, above the tolerance {:.3e}; raise --max-iterations, \
                 or look for extreme values or columns that duplicate each other",
                config.max_iterations, fit.gradient_norm, fit.tolerance
            ));
        }
    }

    let train_p = final_fit.probabilities(x.view()).to_vec();
    let quantiles = score_quantiles(&train_p);
    let means = x.mean_axis(Axis(0)).expect("rows exist");
    let coefficients = encoder
        .column_names()
        .into_iter()
        .zip(final_fit.weights.iter().zip(means.iter()))
        .map(|(feature, (&weight, &mean))| Coefficient {
            feature,
            weight,
            mean,
        })
        .collect::<Vec<_>>();
    let trained_at = chrono::Utc::now();
    let model_version = format!(
        "{}-{}",
        trained_at.format("%Y%m%d-%H%M%S"),
        &table.sha256[..6]
    );
    let artifact = ModelArtifact {
        format_version: FORMAT_VERSION,
        model_version,
        trained_at: trained_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        trained_by: format!("leadscore {}", env!("CARGO_PKG_VERSION")),
        data: DataSummary {
            file: table.path.display().to_string(),
            sha256: table.sha256.clone(),
            rows_read: table.rows() as u64,
            training_rows: rows.len() as u64,
            wins: wins as u64,
            losses: losses as u64,
            open_rows: (table.rows() - rows.len()) as u64,
            base_rate: wins as f64 / rows.len() as f64,
            date_column: date.map(|d| table.headers[d].clone()),
            date_range,
            columns: column_summaries,
        },
        target: TargetSpec {
            column: table.headers[target].clone(),
            id_column: id.map(|c| table.headers[c].clone()),
            positive: config.positive.clone(),
            open_values: config.open.clone(),
        },
        encoder,
        coefficients,
        intercept: final_fit.intercept,
        regularisation: Regularisation { alpha, candidates },
        solver: SolverReport {
            solver: "linfa-logistic L-BFGS".into(),
            gradient_tolerance: final_fit.tolerance,
            max_iterations: config.max_iterations,
            final_gradient_norm: final_fit.gradient_norm,
            converged: final_fit.converged,
        },
        holdout: HoldoutReport {
            method,
            calibration: calibration_bins(&holdout_p, holdout_y, 10),
            metrics: holdout_metrics,
            note: "metrics of the fit without the holdout; the served model is refit on all rows"
                .into(),
        },
        grades: grade_cutoffs(&quantiles),
        score_quantiles: quantiles,
    };
    timings.total = started.elapsed().as_secs_f64();
    Ok(Trained {
        artifact,
        leakage,
        warnings,
        timings,
        holdout_rows: ordered_rows[n_train..].to_vec(),
        holdout_won: holdout_y.to_vec(),
        holdout_probabilities: holdout_p,
        table,
    })
}

/// Rows with a known outcome and whether each was won.
fn parse_outcomes(
    table: &Table,
    target: usize,
    parser: &OutcomeParser,
    name: &str,
) -> Result<(Vec<usize>, Vec<bool>), TrainError> {
    let mut rows = Vec::with_capacity(table.rows());
    let mut won = Vec::with_capacity(table.rows());
    let mut unknown: BTreeMap<&str, (usize, u64)> = BTreeMap::new();
    let column = table.column(target);
    for row in 0..table.rows() {
        match parser.parse(column.get(row)) {
            Some(Outcome::Won) => {
                rows.push(row);
                won.push(true);
            }
            Some(Outcome::Lost) => {
                rows.push(row);
                won.push(false);
            }
            Some(Outcome::Open) => {}
            None => {
                unknown
                    .entry(column.get(row))
                    .or_insert((0, table.lines[row]))
                    .0 += 1;
            }
        }
    }
    if let Some(line) = unknown.values().map(|v| v.1).min() {
        let mut values: Vec<_> = unknown.iter().collect();
        values.sort_by_key(|v| std::cmp::Reverse(v.1.0));
        return Err(TrainError::UnknownOutcome {
            path: table.path.clone(),
            column: name.to_string(),
            values: values
                .iter()
                .take(5)
                .map(|(v, (n, _))| format!("{v:?} ({n} rows)"))
                .collect::<Vec<_>>()
                .join(", "),
            line,
        });
    }
    Ok((rows, won))
}

/// Row order (indexes into the outcome rows), holdout size, and first/last date.
type DateSplit = (Vec<usize>, usize, Option<(String, String)>);

/// Orders outcome rows (indexes into `rows`) by date and holds out the most recent share.
/// Rows without a date are always training rows.
#[allow(clippy::type_complexity)]
fn split_by_date(
    table: &Table,
    date: usize,
    rows: &[usize],
    share: f64,
    missing: &MissingTokens,
) -> Result<DateSplit, TrainError> {
    let column = table.column(date);
    let mut dated = Vec::new();
    let mut undated = Vec::new();
    for (i, &row) in rows.iter().enumerate() {
        let cell = column.get(row);
        if missing.is_missing(cell) {
            undated.push(i);
            continue;
        }
        let d = parse_date(cell).ok_or_else(|| TrainError::BadDate {
            path: table.path.clone(),
            line: table.lines[row],
            column: table.headers[date].clone(),
            value: cell.to_string(),
        })?;
        dated.push((d, i));
    }
    dated.sort();
    let range = dated
        .first()
        .zip(dated.last())
        .map(|(a, b)| (a.0.to_string(), b.0.to_string()));
    let n_holdout = (dated.len() as f64 * share).round() as usize;
    let mut order = undated;
    order.extend(dated.iter().map(|&(_, i)| i));
    Ok((order, n_holdout, range))
}

/// Stratified split: the same share of won and of lost leads is held out.
fn split_stratified(
    won: &[bool],
    share: f64,
    rng: &mut rand_chacha::ChaCha8Rng,
) -> (Vec<usize>, usize) {
    let mut train = Vec::new();
    let mut holdout = Vec::new();
    for class in [true, false] {
        let mut members: Vec<usize> = (0..won.len()).filter(|&i| won[i] == class).collect();
        members.shuffle(rng);
        let n = (members.len() as f64 * share).round() as usize;
        holdout.extend_from_slice(&members[..n]);
        train.extend_from_slice(&members[n..]);
    }
    let n_holdout = holdout.len();
    train.extend(holdout);
    (train, n_holdout)
}

/// Single-column ROC AUC of each attribute, scoring each lead by the training closure rate of
/// its value (categories, flags) or by the value itself (numbers, either direction).
fn detect_leakage(
    encoder: &FeatureEncoder,
    x: ArrayView2<'_, f64>,
    y: &[bool],
    threshold: f64,
) -> Vec<LeakageWarning> {
    use crate::encoder::Encoding;
    let mut warnings = Vec::new();
    for attribute in &encoder.attributes {
        let cols = x.slice(s![
            ..,
            attribute.offset..attribute.offset + attribute.width()
        ]);
        let (scores, present): (Vec<f64>, Vec<bool>) = match &attribute.encoding {
            Encoding::Numeric {
                missing_indicator, ..
            }
            | Encoding::Boolean {
                missing_indicator, ..
            } => cols
                .rows()
                .into_iter()
                .map(|r| (r[0], !(*missing_indicator && r[1] == 1.0)))
                .unzip(),
            Encoding::Categorical {
                level_rates,
                other_rate,
                missing_rate,
                ..
            } => {
                // Training rows always set one column: rare and missing rows have theirs.
                let mut rates: Vec<f64> = level_rates
                    .iter()
                    .map(|r| r.rate().unwrap_or(0.0))
                    .collect();
                if attribute.other_slot().is_some() {
                    rates.push(other_rate.rate().unwrap_or(0.0));
                }
                if attribute.missing_slot().is_some() {
                    rates.push(missing_rate.rate().unwrap_or(0.0));
                }
                let missing_slot = attribute.missing_slot();
                cols.rows()
                    .into_iter()
                    .map(|r| {
                        let hot = r.iter().position(|&v| v == 1.0);
                        (
                            hot.map_or(0.0, |h| rates[h]),
                            hot.is_some() && hot != missing_slot,
                        )
                    })
                    .unzip()
            }
        };
        let oriented = |a: Option<f64>| a.map(|a| a.max(1.0 - a));
        let auc = oriented(roc_auc(&scores, y)).unwrap_or(0.5);
        let n_present = present.iter().filter(|&&p| p).count();
        let auc_where_present = if n_present < y.len() && n_present * 10 >= y.len() {
            let (s, w): (Vec<f64>, Vec<bool>) = scores
                .iter()
                .zip(y)
                .zip(&present)
                .filter(|(_, p)| **p)
                .map(|((s, w), _)| (*s, *w))
                .unzip();
            oriented(roc_auc(&s, &w))
        } else {
            None
        };
        if auc.max(auc_where_present.unwrap_or(0.0)) >= threshold {
            warnings.push(LeakageWarning {
                column: attribute.name.clone(),
                auc,
                auc_where_present,
            });
        }
    }
    warnings
}

/// linfa-logistic with the settings and checks it needs to be trusted.
struct Solver {
    max_iterations: u64,
}

/// A fitted logistic regression oriented so that positive weights raise P(won).
#[derive(Debug, Clone)]
struct Fit {
    weights: Array1<f64>,
    intercept: f64,
    gradient_norm: f64,
    tolerance: f64,
    converged: bool,
}

impl Fit {
    fn probabilities(&self, x: ArrayView2<'_, f64>) -> Array1<f64> {
        (x.dot(&self.weights) + self.intercept).mapv(sigmoid)
    }
}

impl Solver {
    /// Fits `P(won | x)`, optionally warm-started. The gradient tolerance scales with the row
    /// count, because linfa-logistic's loss is a sum over rows, not a mean: `1e-4 × rows` on the
    /// gradient's Euclidean norm is at least as strict as scikit-learn's default stopping rule
    /// (`tol = 1e-4` on the largest component of the mean gradient).
    fn fit(
        &self,
        x: ArrayView2<'_, f64>,
        won: &[bool],
        alpha: f64,
        warm: Option<&Fit>,
    ) -> Result<Fit, TrainError> {
        let n = x.nrows() as f64;
        let tolerance = 1e-4 * n;
        // linfa-logistic labels the more frequent class positive (ties: the first row's).
        let won_is_positive = {
            let wins = won.iter().filter(|&&w| w).count();
            let losses = won.len() - wins;
            wins > losses || (wins == losses && won.first() == Some(&true))
        };
        let sign = if won_is_positive { 1.0 } else { -1.0 };
        let mut params = LogisticRegression::default()
            .alpha(alpha)
            .max_iterations(self.max_iterations)
            .gradient_tolerance(tolerance);
        if let Some(w) = warm {
            let mut init = Array1::zeros(x.ncols() + 1);
            init.slice_mut(s![..x.ncols()]).assign(&(&w.weights * sign));
            init[x.ncols()] = w.intercept * sign;
            params = params.initial_params(init);
        }
        let targets = Array1::from_iter(won.iter().copied());
        let dataset = DatasetBase::new(x, targets);
        let fitted = params
            .fit(&dataset)
            .map_err(|e| TrainError::Solver(e.to_string()))?;
        if fitted.labels().pos.class != won_is_positive {
            return Err(TrainError::Solver(
                "linfa-logistic chose an unexpected positive class".into(),
            ));
        }
        let weights = fitted.params() * sign;
        let intercept = fitted.intercept() * sign;
        let gradient_norm = gradient_norm(x, won, alpha, weights.view(), intercept);
        Ok(Fit {
            weights,
            intercept,
            gradient_norm,
            tolerance,
            // linfa-logistic stops silently at its iteration limit: check the gradient here.
            converged: gradient_norm <= tolerance * 1.000_001,
        })
    }
}

/// Norm of the gradient of Σ log-loss + α/2 ‖w‖² (the objective linfa-logistic minimises).
fn gradient_norm(
    x: ArrayView2<'_, f64>,
    won: &[bool],
    alpha: f64,
    weights: ArrayView1<'_, f64>,
    intercept: f64,
) -> f64 {
    let mut residual = x.dot(&weights) + intercept;
    for (r, &w) in residual.iter_mut().zip(won) {
        *r = sigmoid(*r) - w as u8 as f64;
    }
    let grad_w = x.t().dot(&residual) + &weights * alpha;
    let grad_b = residual.sum();
    (grad_w.dot(&grad_w) + grad_b * grad_b).sqrt()
}

/// What `train` decided about promotion, for the summary.
#[derive(Debug, Clone, Serialize)]
pub struct Promotion {
    pub promoted: bool,
    pub previous: Option<String>,
    /// Log loss of the serving model on the compared leads, when there was a comparison.
    pub serving_log_loss: Option<f64>,
    /// Log loss of the new model (fitted without the holdout) on the same leads.
    pub new_log_loss: Option<f64>,
    /// Which leads the two models were compared on.
    pub compared_on: Option<String>,
    pub reason: String,
}

/// When a newly trained version goes into service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PromotePolicy {
    /// Only when its holdout log loss is no worse than the serving model's on the same leads.
    Auto,
    Always,
    Never,
}

/// Writes the trained version to the registry and promotes it per `policy`. The version name
/// may gain a suffix (see [`write_new_version`]), which `trained` then carries.
pub fn save_and_promote(
    registry: &Registry,
    trained: &mut Trained,
    policy: PromotePolicy,
) -> Result<(PathBuf, Promotion), TrainError> {
    // Decide before writing, so the comparison cannot see a half-made registry.
    let previous = registry.current_version()?;
    let mut promotion = Promotion {
        promoted: true,
        previous: previous.clone(),
        serving_log_loss: None,
        new_log_loss: None,
        compared_on: None,
        reason: String::new(),
    };
    match (policy, &previous) {
        (PromotePolicy::Never, _) => {
            promotion.promoted = false;
            promotion.reason = "--promote never".into();
        }
        (PromotePolicy::Always, _) => promotion.reason = "--promote always".into(),
        (PromotePolicy::Auto, None) => promotion.reason = "no model was in service".into(),
        (PromotePolicy::Auto, Some(version)) => match registry.load(version) {
            Err(e) => {
                promotion.reason = format!("the serving model {version} cannot be loaded ({e})")
            }
            Ok(serving) => match compare_with_serving(&serving, trained) {
                Err(why) => {
                    promotion.reason =
                        format!("the serving model {version} cannot score this data: {why}")
                }
                Ok(c) => {
                    promotion.promoted = c.new_loss <= c.serving_loss;
                    promotion.reason = format!(
                        "log loss {:.5} against {:.5} of {version} on {}{}",
                        c.new_loss,
                        c.serving_loss,
                        c.scope,
                        if promotion.promoted {
                            ""
                        } else {
                            " (kept the serving model; --promote always overrides)"
                        }
                    );
                    promotion.serving_log_loss = Some(c.serving_loss);
                    promotion.new_log_loss = Some(c.new_loss);
                    promotion.compared_on = Some(c.scope);
                }
            },
        },
    }
    let path = write_new_version(registry, &mut trained.artifact)?;
    if promotion.promoted {
        registry.promote(&trained.artifact.model_version)?;
    }
    Ok((path, promotion))
}

/// Most suffixes tried for a version name already taken.
const MAX_VERSION_SUFFIX: u32 = 99;

/// Writes `artifact` as a new version. Versions are named by the second and the data's hash, so
/// two trainings of the same file within one second (or racing nightly jobs) would collide: the
/// later one takes the next free name `NAME-2`, `NAME-3`, ... (later in `models list` order)
/// rather than failing after the work of training.
fn write_new_version(
    registry: &Registry,
    artifact: &mut ModelArtifact,
) -> Result<PathBuf, RegistryError> {
    let base = artifact.model_version.clone();
    let mut suffix = 1;
    loop {
        match registry.write_version(artifact) {
            Err(RegistryError::Io { source, .. })
                if suffix < MAX_VERSION_SUFFIX
                    && matches!(
                        source.kind(),
                        std::io::ErrorKind::AlreadyExists | std::io::ErrorKind::DirectoryNotEmpty
                    ) =>
            {
                suffix += 1;
                artifact.model_version = format!("{base}-{suffix}");
            }
            other => return other,
        }
    }
}

/// Log losses of the new model (its fit without the holdout) and the serving model on the
/// same holdout leads.
struct Comparison {
    new_loss: f64,
    serving_loss: f64,
    scope: String,
}

/// Fewest newer leads (with both outcomes) worth comparing on.
const MIN_NEWER_LEADS: usize = 50;

/// Compares on the holdout leads dated after the serving model's training data when there are
/// enough of them: the serving model was refit on all of its data, so on leads it has seen it
/// would look better than it is. Otherwise on the whole holdout, saying so.
fn compare_with_serving(serving: &Model, trained: &Trained) -> Result<Comparison, String> {
    let table = &trained.table;
    let holdout = &trained.holdout_rows;
    let mut chosen: Vec<usize> = (0..holdout.len()).collect();
    let mut scope = format!("the whole holdout ({} leads)", holdout.len());
    let serving_data = &serving.artifact.data;
    if let (Some(column), Some((_, last))) = (&serving_data.date_column, &serving_data.date_range)
        && let (Ok(c), Ok(last)) = (
            table.column_index(column),
            chrono::NaiveDate::parse_from_str(last, "%Y-%m-%d"),
        )
    {
        let newer: Vec<usize> = (0..holdout.len())
            .filter(|&i| parse_date(table.column(c).get(holdout[i])).is_some_and(|d| d > last))
            .collect();
        let wins = newer.iter().filter(|&&i| trained.holdout_won[i]).count();
        if newer.len() >= MIN_NEWER_LEADS && wins > 0 && wins < newer.len() {
            scope = format!(
                "the {} holdout leads dated after {last}, where the serving model's data ends",
                newer.len()
            );
            chosen = newer;
        } else {
            scope.push_str(&format!(
                ", as fewer than {MIN_NEWER_LEADS} are dated after {last} where the serving \
                 model's data ends: it may have trained on some of them"
            ));
        }
    } else {
        scope.push_str(": the serving model may have trained on some of these leads");
    }
    let columns: Vec<Option<usize>> = serving
        .encoder()
        .attributes
        .iter()
        .map(|a| table.column_index(&a.name).ok())
        .collect();
    let mut serving_p = Vec::with_capacity(chosen.len());
    for &i in &chosen {
        let row = holdout[i];
        let scored = serving
            .score(
                |a| match columns[a] {
                    Some(c) => crate::encoder::RawValue::Text(table.column(c).get(row)),
                    None => crate::encoder::RawValue::Missing,
                },
                0,
            )
            .map_err(|e| format!("line {}: {e}", table.lines[row]))?;
        serving_p.push(scored.probability);
    }
    let won: Vec<bool> = chosen.iter().map(|&i| trained.holdout_won[i]).collect();
    let new_p: Vec<f64> = chosen
        .iter()
        .map(|&i| trained.holdout_probabilities[i])
        .collect();
    Ok(Comparison {
        new_loss: log_loss(&new_p, &won),
        serving_loss: log_loss(&serving_p, &won),
        scope,
    })
}

/// The top `k` coefficients by absolute weight, for summaries.
pub fn top_coefficients(artifact: &ModelArtifact, k: usize) -> Vec<(String, f64)> {
    let mut all: Vec<(String, f64)> = artifact
        .coefficients
        .iter()
        .map(|c| (c.feature.clone(), c.weight))
        .collect();
    all.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()));
    all.truncate(k);
    all
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    #[test]
    fn stratified_split_holds_out_the_same_share_of_each_class() {
        let won: Vec<bool> = (0..1000).map(|i| i % 10 == 0).collect();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let (order, n_holdout) = split_stratified(&won, 0.2, &mut rng);
        assert_eq!(n_holdout, 200);
        let holdout_wins = order[order.len() - n_holdout..]
            .iter()
            .filter(|&&i| won[i])
            .count();
        assert_eq!(holdout_wins, 20);
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(sorted, (0..1000).collect::<Vec<_>>(), "a permutation");
    }

    #[test]
    fn gradient_is_zero_only_at_the_optimum() {
        // One feature, symmetric data: the optimum has intercept 0.
        let x = Array2::from_shape_vec((4, 1), vec![-1.0, -1.0, 1.0, 1.0]).unwrap();
        let won = [false, true, true, false];
        let g = gradient_norm(x.view(), &won, 1.0, Array1::zeros(1).view(), 0.0);
        assert!(g < 1e-12);
        let g = gradient_norm(x.view(), &won, 1.0, Array1::zeros(1).view(), 1.0);
        assert!(g > 0.1);
    }
}
