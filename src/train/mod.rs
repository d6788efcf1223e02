//! Training: a CSV or Parquet file of historic leads → a validated model artifact, and its promotion.
//!
//! Architecture invariant: this is the only module that touches linfa's fitting API, and
//! within it only `solver` does.
//!
//! [`train`] runs the steps in order; each lives in its own file:
//! - `outcomes`: parse the target column (open rows set aside); enough wins and losses?
//! - `horizon`: with `--horizon`, relabel as won within the horizon; maturing leads set aside;
//!   with a period, the landmark rows (each lead at every age it was still open);
//! - `columns`: the role of every column (target, id, date, dropped, feature) and its kind;
//! - `holdout`: the most recent 20% by `--date`, else a stratified 20% with a fixed seed, and
//!   the fit without it that the reported metrics come from;
//! - `features`: fit the encoder and encode the rows in the holdout's order;
//! - `drift`: with `--date`, each attribute of the holdout against the training part;
//! - `labels`: category labels that differ only by spacing or punctuation, reported;
//! - `leakage`: columns that predict the outcome suspiciously well on their own;
//! - `shapes`: with `--shapes auto`, the numeric attributes that keep a curved effect, chosen
//!   on a validation split of the training part (the machinery of `selection`);
//! - `aging`: with landmark rows, the age terms and the age interactions chosen by validation;
//! - `regularisation`: the L2 strength, chosen on a validation split of the training part;
//! - `solver`: linfa-logistic, oriented, with a scaled tolerance and a convergence check;
//! - `artifact`: the model artifact and its version name;
//! - `promotion`: writing the version and deciding whether it goes into service.
//!
//! Reading is `sampling`'s: above the row cap (`--max-rows`, else the memory budget) it keeps a
//! sample chosen while reading, and corrects the fits' intercepts for it.
//!
//! `config` holds the settings, `error` the refusals, `progress` the progress lines and timings.
//! The served model is refit on all rows, warm-started from the holdout fit.

mod aging;
mod artifact;
mod columns;
mod config;
mod drift;
mod error;
mod features;
mod holdout;
mod horizon;
mod labels;
mod leakage;
mod outcomes;
mod progress;
mod promotion;
mod regularisation;
mod sampling;
mod selection;
mod shapes;
mod solver;

pub use artifact::top_coefficients;
pub use config::{HorizonConfig, MaxRows, Shapes, TrainConfig, WonWithoutDate};
pub use error::TrainError;
pub use leakage::{LeakageRule, LeakageWarning, SettlingValue};
pub use progress::{Progress, Timings};
pub use promotion::{PromotePolicy, Promotion, save_and_promote};
pub use sampling::memory_budget_rows;

use crate::data::{Table, read_leads};
use crate::model::ModelArtifact;
use crate::schema::MissingTokens;
use columns::Roles;
use outcomes::Outcomes;
use progress::timed;
use solver::Solver;
use std::time::Instant;

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
    /// The age in days each holdout row was scored at (0 for a model that does not age).
    pub holdout_ages: Vec<f64>,
    pub holdout_probabilities: Vec<f64>,
    /// With `--date`: each attribute of the holdout (the newest leads) against the training
    /// part, worst first.
    pub holdout_drift: Option<crate::evaluate::FeatureDrift>,
    pub table: Table,
}

/// Trains a model from a CSV file. Writes nothing.
pub fn train(config: &TrainConfig, progress: Progress<'_>) -> Result<Trained, TrainError> {
    let started = Instant::now();
    let mut timings = Timings::default();
    progress(&format!("reading {}", config.data.display()));
    // A query's rows come whole (no sampling: a query can do its own, e.g. TABLESAMPLE); a
    // file is streamed and sampled above the row cap.
    let sampling::SampledTable { table, sampled } = timed(&mut timings.read, || {
        if config.query.is_some() || crate::postgres::url_of(&config.data).is_some() {
            read_leads(&config.data, config.query.as_deref())
                .map(|table| sampling::SampledTable {
                    table,
                    sampled: None,
                })
                .map_err(TrainError::from)
        } else {
            sampling::read(config)
        }
    })?;
    progress::read(progress, &table, timings.read);
    if let Some(s) = &sampled {
        progress::sampled(progress, &s.record);
    }
    let missing = MissingTokens::with_extra(&config.na);

    let target = table.column_index(&config.target)?;
    let outcomes = Outcomes::parse(&table, target, config, &missing)?;
    let roles = Roles::resolve(&table, config, target)?;
    let (outcomes, horizon, landmarks) =
        match horizon::label(&table, config, &roles, &outcomes, &missing)? {
            Some(l) => (l.outcomes, Some(l.horizon), l.landmarks),
            None => (outcomes, None, None),
        };
    outcomes.require(&table, config.min_class_rows)?;
    let columns = columns::assign_roles(&table, config, &roles, &missing)?;
    let holdout = match (&landmarks, &horizon) {
        (Some(l), Some(h)) => holdout::split_landmarks(&table, config, l, &h.created_column)?,
        _ => holdout::split(&table, config, roles.date, &outcomes, &missing)?,
    };

    let (mut encoder, x) = timed(&mut timings.encode, || {
        features::encode(&table, config, &columns, &outcomes, &holdout.rows, &missing)
    })?;
    let solver = Solver {
        max_iterations: config.max_iterations,
    };
    // With shapes: the ones that help, chosen on the training part; the others dropped from the
    // encoder and the matrix before anything else sees them.
    let (x, shape_choice) = if config.encoder.shapes {
        let n = holdout.n_train;
        let started = Instant::now();
        let base_terms = match (&landmarks, &horizon) {
            (Some(l), Some(h)) => Some(
                crate::aging::AgeTerms::new(&encoder, h.days, l.max_age_days, &[])
                    .map_err(TrainError::Solver)?,
            ),
            _ => None,
        };
        let ages = match (&base_terms, &holdout.ages) {
            (Some(terms), Some(ages)) => Some(shapes::Ages {
                ages: &ages[..n],
                terms,
            }),
            _ => None,
        };
        // The choice fits a sample of the training part: should a fit fail there (a sample
        // without wins, say), the numbers stay linear rather than the training failing.
        let selection = shapes::select(
            &solver,
            &encoder,
            x.slice(ndarray::s![..n, ..]),
            ages,
            &holdout.won[..n],
            &holdout.rows[..n],
            progress,
        )
        .unwrap_or_else(|e| {
            progress(&format!("shapes: not chosen ({e}); every number linear"));
            selection::Selection {
                chosen: Vec::new(),
                tried: Vec::new(),
            }
        });
        let x = shapes::keep(&mut encoder, &selection.chosen, x);
        timings.shapes = started.elapsed().as_secs_f64();
        (x, Some(shapes::record(selection)))
    } else {
        (x, None)
    };
    // Landmark rows: the age terms, with the interactions chosen on the training part.
    let (x, aging) = match (&landmarks, &horizon, &holdout.ages) {
        (Some(l), Some(h), Some(ages)) => {
            let n = holdout.n_train;
            let started = Instant::now();
            let selection = aging::select(
                &solver,
                &encoder,
                h.days,
                l.max_age_days,
                x.slice(ndarray::s![..n, ..]),
                &ages[..n],
                &holdout.won[..n],
                &holdout.rows[..n],
                config.horizon.as_ref().is_none_or(|h| h.age_interactions),
                progress,
            )?;
            let terms =
                crate::aging::AgeTerms::new(&encoder, h.days, l.max_age_days, &selection.chosen)
                    .map_err(TrainError::Solver)?;
            let widened = aging::widen(x.view(), ages, &terms);
            // The encoder's matrix is in the widened one: free it before the fits.
            drop(x);
            timings.age_terms = started.elapsed().as_secs_f64();
            let record = crate::aging::Aging {
                max_age_days: l.max_age_days,
                interactions: selection.chosen,
                landmark_rows: l.rows.len() as u64,
                selection: selection.tried,
            };
            (widened, Some((record, terms)))
        }
        _ => (x, None),
    };
    progress::encoded(progress, &x, timings.encode);
    let holdout_drift = match roles.date {
        Some(_) => Some(drift::holdout_drift(
            &table, config, &columns, &holdout, &missing,
        )?),
        None => None,
    };
    let (train_x, train_y) = holdout.training(x.view());
    let encoded = train_x.slice_move(ndarray::s![.., ..encoder.width()]);
    let leakage = leakage::check(&encoder, encoded, train_y, config.leakage_auc);
    let choice = timed(&mut timings.select_alpha, || {
        regularisation::choose_alpha(&solver, train_x, train_y, &config.alphas, progress)
    })?;
    let mut measured = timed(&mut timings.holdout_fit, || {
        holdout::measure(&solver, x.view(), &holdout, choice.alpha, &choice.fit)
    })?;
    if let Some(s) = &sampled {
        s.correct_measured(&mut measured, x.view(), &holdout);
    }
    progress::holdout_measured(progress, &measured.metrics, timings.holdout_fit);
    // The served model: refit on every row, warm-started from the holdout fit.
    let mut final_fit = timed(&mut timings.final_fit, || {
        solver.fit(x.view(), &holdout.won, choice.alpha, Some(&measured.fit))
    })?;
    if let Some(s) = &sampled {
        s.correct(&mut final_fit);
    }
    progress::refitted(progress, x.nrows(), timings.final_fit);
    let mut warnings =
        labels::probable_duplicates(&table, &columns.features, &outcomes.rows, &missing);
    warnings.extend(
        [("holdout fit", &measured.fit), ("final fit", &final_fit)]
            .into_iter()
            .filter_map(|(what, fit)| fit.convergence_warning(what, config.max_iterations)),
    );

    let artifact = artifact::assemble(artifact::Learned {
        config,
        table: &table,
        outcomes: &outcomes,
        roles: &roles,
        columns: &columns,
        holdout: &holdout,
        encoder,
        x: x.view(),
        choice: &choice,
        measured: &measured,
        final_fit: &final_fit,
        horizon,
        aging,
        shapes: shape_choice,
        sampling: sampled.map(|s| {
            let rows = s.population_rows(&holdout);
            (s.record, rows)
        }),
    });
    timings.total = started.elapsed().as_secs_f64();
    Ok(Trained {
        artifact,
        leakage,
        warnings,
        timings,
        holdout_rows: measured.held.iter().map(|&i| holdout.rows[i]).collect(),
        holdout_won: measured.won.clone(),
        holdout_ages: match &holdout.ages {
            Some(ages) => measured.held.iter().map(|&i| ages[i].into()).collect(),
            None => vec![0.0; measured.held.len()],
        },
        holdout_probabilities: measured.probabilities,
        holdout_drift,
        table,
    })
}
