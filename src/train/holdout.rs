//! The holdout: which leads are set aside to measure the model (the most recent share by
//! `--date`, else a stratified share with a fixed seed), and the fit without them that the
//! reported metrics come from. Measuring on leads the fit never saw is what makes the metrics
//! honest, so the split also decides the row order of the training matrix.

use super::horizon::Landmarks;
use super::solver::{Fit, Solver};
use super::{TrainConfig, TrainError, outcomes::Outcomes};
use crate::data::Table;
use crate::metrics::Summary;
use crate::schema::{MissingTokens, parse_date};
use ndarray::{ArrayView2, s};
use rand::SeedableRng;
use rand::seq::SliceRandom;

/// The outcome rows in the training matrix's order: training rows (shuffled) first, holdout
/// rows last, so both parts are views of one column-major matrix.
pub(super) struct Holdout {
    /// Table rows in matrix order.
    pub rows: Vec<usize>,
    /// Whether each of `rows` was won.
    pub won: Vec<bool>,
    /// How many of `rows` are training rows; the rest are the holdout.
    pub n_train: usize,
    /// How the holdout was chosen, for the report.
    pub method: String,
    /// First and last date of the dated rows, when split by date.
    pub date_range: Option<(String, String)>,
    /// With landmark rows: each row's landmark age in days, in matrix order.
    pub ages: Option<Vec<u32>>,
}

impl Holdout {
    /// The training part of `x` (in this order) and its outcomes.
    pub fn training<'x>(&self, x: ArrayView2<'x, f64>) -> (ArrayView2<'x, f64>, &[bool]) {
        (
            x.slice_move(s![..self.n_train, ..]),
            &self.won[..self.n_train],
        )
    }

    /// The held-out part of `x` (in this order) and its outcomes.
    pub fn held_out<'x>(&self, x: ArrayView2<'x, f64>) -> (ArrayView2<'x, f64>, &[bool]) {
        (
            x.slice_move(s![self.n_train.., ..]),
            &self.won[self.n_train..],
        )
    }

    /// Both parts need both outcomes: a holdout of a handful of leads measures nothing, and a
    /// training part without wins cannot be fitted.
    fn require_both_outcomes(
        &self,
        table: &Table,
        min_class_rows: usize,
    ) -> Result<(), TrainError> {
        for (part, ys, need) in [
            (
                "training part",
                &self.won[..self.n_train],
                min_class_rows / 2,
            ),
            ("holdout", &self.won[self.n_train..], 10),
        ] {
            let part_wins = ys.iter().filter(|&&w| w).count();
            if part_wins < need || ys.len() - part_wins < need {
                return Err(TrainError::UnbalancedSplit {
                    path: table.path.clone(),
                    part,
                    method: self.method.clone(),
                    wins: part_wins,
                    losses: ys.len() - part_wins,
                    need,
                });
            }
        }
        Ok(())
    }
}

/// Splits the outcome rows; refuses a split whose parts lack either outcome.
pub(super) fn split(
    table: &Table,
    config: &TrainConfig,
    date: Option<usize>,
    outcomes: &Outcomes,
    missing: &MissingTokens,
) -> Result<Holdout, TrainError> {
    let share = config.holdout_share;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(config.seed);
    let (date_range, mut order, n_holdout, method) = match date {
        Some(d) => {
            let (order, n_holdout, range) =
                split_by_date(table, d, &outcomes.rows, share, missing)?;
            let method = format!(
                "the most recent {:.0}% of leads by {:?}",
                share * 100.0,
                table.headers[d]
            );
            (range, order, n_holdout, method)
        }
        None => {
            let (order, n_holdout) = split_stratified(&outcomes.won, share, &mut rng);
            let method = format!(
                "a stratified random {:.0}% of leads (seed {})",
                share * 100.0,
                config.seed
            );
            (None, order, n_holdout, method)
        }
    };
    let n_train = order.len() - n_holdout;
    order[..n_train].shuffle(&mut rng);
    let holdout = Holdout {
        rows: order.iter().map(|&i| outcomes.rows[i]).collect(),
        won: order.iter().map(|&i| outcomes.won[i]).collect(),
        n_train,
        method,
        date_range,
        ages: None,
    };
    holdout.require_both_outcomes(table, config.min_class_rows)?;
    Ok(holdout)
}

/// Splits landmark rows by lead, so no lead is on both sides (its rows at different ages are
/// alike, and a lead seen in training would flatter the holdout): the most recently created
/// leads (their first landmark date) are held out, until they hold `holdout_share` of the rows.
/// Keying by a lead's last landmark date instead would hold out the leads open longest, which
/// are mostly the ones never won.
pub(super) fn split_landmarks(
    table: &Table,
    config: &TrainConfig,
    landmarks: &Landmarks,
    created_column: &str,
) -> Result<Holdout, TrainError> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(config.seed);
    // Each lead's rows are contiguous and its first row is at age 0, dated its created date.
    let mut leads: Vec<(chrono::NaiveDate, usize, usize)> = Vec::new();
    let mut start = 0;
    for i in 1..=landmarks.rows.len() {
        if i == landmarks.rows.len() || landmarks.rows[i] != landmarks.rows[start] {
            leads.push((landmarks.dates[start], start, i));
            start = i;
        }
    }
    leads.sort();
    let total = landmarks.rows.len();
    let wanted = (total as f64 * config.holdout_share).round() as usize;
    let (mut held, mut cut) = (0, leads.len());
    while cut > 0 && held < wanted {
        cut -= 1;
        held += leads[cut].2 - leads[cut].1;
    }
    let mut order: Vec<usize> = leads[..cut].iter().flat_map(|l| l.1..l.2).collect();
    order.shuffle(&mut rng);
    let n_train = order.len();
    order.extend(leads[cut..].iter().flat_map(|l| l.1..l.2));
    // The created dates' range, as without landmarks: promotion compares leads by it.
    let created = || {
        landmarks
            .dates
            .iter()
            .zip(&landmarks.ages)
            .filter_map(|(d, &a)| d.checked_sub_days(chrono::Days::new(a.into())))
    };
    let date_range = created()
        .min()
        .zip(created().max())
        .map(|(a, b)| (a.to_string(), b.to_string()));
    let holdout = Holdout {
        rows: order.iter().map(|&i| landmarks.rows[i]).collect(),
        won: order.iter().map(|&i| landmarks.won[i]).collect(),
        n_train,
        method: format!(
            "the most recently created leads ({:?}) holding {:.0}% of the landmark rows, each \
             lead on one side only",
            created_column,
            config.holdout_share * 100.0
        ),
        date_range,
        ages: Some(order.iter().map(|&i| landmarks.ages[i]).collect()),
    };
    holdout.require_both_outcomes(table, config.min_class_rows)?;
    Ok(holdout)
}

/// Row order (indexes into the outcome rows), holdout size, and first/last date.
type DateSplit = (Vec<usize>, usize, Option<(String, String)>);

/// Orders outcome rows (indexes into `rows`) by date and holds out the most recent share.
/// Rows without a date are always training rows.
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

/// The fit without the holdout and what it scores on the holdout.
pub(super) struct Measured {
    pub fit: Fit,
    /// The holdout leads measured, as matrix rows (all of the holdout, unless the table is a
    /// sample: then its population-rate part, `sampling`).
    pub held: Vec<usize>,
    /// P(won) of each of `held`.
    pub probabilities: Vec<f64>,
    /// Whether each of `held` was won.
    pub won: Vec<bool>,
    pub metrics: Summary,
}

/// Fits on the training part (warm-started from `warm`) and measures the fit on the holdout.
pub(super) fn measure(
    solver: &Solver,
    x: ArrayView2<'_, f64>,
    holdout: &Holdout,
    alpha: f64,
    warm: &Fit,
) -> Result<Measured, TrainError> {
    let (train_x, train_y) = holdout.training(x);
    let (holdout_x, holdout_y) = holdout.held_out(x);
    let fit = solver.fit(train_x, train_y, alpha, Some(warm))?;
    let probabilities = fit.probabilities(holdout_x).to_vec();
    let metrics = Summary::compute(&probabilities, holdout_y);
    Ok(Measured {
        fit,
        held: (holdout.n_train..holdout.rows.len()).collect(),
        probabilities,
        won: holdout_y.to_vec(),
        metrics,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
