//! Scoring inside the warehouse: a model written as one SQL `SELECT` over a table of leads,
//! returning each lead's id, `probability`, `score` and `grade` as `leadscore score` would.
//!
//! The query restates the encoder and the model's arithmetic in SQL (the one-encoder invariant
//! cannot reach into a warehouse, so the tests hold the two together: the query is run in
//! PostgreSQL and DuckDB and compared with `leadscore score` lead by lead). It is built in four
//! nested steps, innermost first:
//! 1. `ls_values`: each attribute's value read as the encoder reads it — a number winsorised to
//!    its limits, a yes/no as 1/0 (−1 for a value that is neither), a category label
//!    normalised (trimmed, runs of white space folded, lower-cased); NULL or a missing-value
//!    token is missing (NULL) — and, for a model that ages its scores, the lead's age;
//! 2. `ls_logits`: the intercept plus weight × encoded column, one term per column of the
//!    model in its order, so the sum is formed as `Model::logit` forms it;
//! 3. `ls_probabilities`: the logistic function of the log-odds clamped to ±30, as
//!    [`crate::model::sigmoid`] does (no overflow in `EXP`); NULL stays NULL (PostgreSQL's
//!    GREATEST would skip it);
//! 4. the score (the probability in points, rounded half away from zero, within 1..99) and
//!    the grade (the first whose cutoff the probability reaches).
//!
//! A value the encoder would refuse (a yes/no column holding neither) makes that lead's
//! probability, score and grade NULL: a query cannot refuse one row as `score` refuses a file.

mod dialect;

pub use dialect::Dialect;

use crate::encoder::{Attribute, Encoding, Shape};
use crate::model::ModelArtifact;
use std::fmt::Write as _;

/// Where a model that ages its scores reads a lead's age from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AgeSource {
    /// The days from the model's created-date column to the scoring date.
    Created,
    /// An `age_days` column (a number of days).
    AgeDays,
}

/// What to write.
#[derive(Debug, Clone)]
pub struct SqlOptions {
    pub dialect: Dialect,
    /// The table (or view) of leads, optionally qualified (`analytics.leads`).
    pub table: String,
    /// The lead id column (default: the model's id column).
    pub id_column: Option<String>,
    /// The day ages are counted to; `None`: the engine's `CURRENT_DATE`.
    pub as_of: Option<chrono::NaiveDate>,
    pub age: AgeSource,
}

/// Why a model cannot be written as SQL.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(
        "model {version} has no id column (it was trained without --id); name the table's lead \
         id column with --id"
    )]
    NoIdColumn { version: String },
    #[error("model {version} is inconsistent: {message}")]
    Inconsistent { version: String, message: String },
}

/// The `SELECT` scoring every lead of `options.table` with `artifact`.
pub fn export_sql(artifact: &ModelArtifact, options: &SqlOptions) -> Result<String, ExportError> {
    let d = options.dialect;
    let inconsistent = |message: String| ExportError::Inconsistent {
        version: artifact.model_version.clone(),
        message,
    };
    let id_column = options
        .id_column
        .clone()
        .or_else(|| artifact.target.id_column.clone())
        .ok_or_else(|| ExportError::NoIdColumn {
            version: artifact.model_version.clone(),
        })?;
    let encoder = &artifact.encoder;

    // Step 1: one value per attribute, and the age.
    let mut values = vec![format!("{} AS ls_id", d.ident(&id_column))];
    // Each encoded column's value (the weight's multiplicand), in model order.
    let mut columns: Vec<String> = Vec::new();
    for (i, attribute) in encoder.attributes.iter().enumerate() {
        if attribute.offset != columns.len() {
            return Err(inconsistent(format!(
                "attribute {:?} starts at column {}, expected {}",
                attribute.name,
                attribute.offset,
                columns.len()
            )));
        }
        let value = format!("ls_v{i}");
        values.push(format!(
            "{} AS {value}",
            read_value(d, attribute, &encoder.missing_tokens.0)
        ));
        columns.extend(encoded_columns(d, attribute, &value).map_err(inconsistent)?);
    }
    let aging = match (&artifact.aging, &artifact.horizon) {
        (Some(aging), Some(horizon)) => Some((aging, horizon)),
        (Some(_), None) => return Err(inconsistent("aging without a horizon".into())),
        _ => None,
    };
    if let Some((aging, horizon)) = aging {
        let today = options
            .as_of
            .map_or("CURRENT_DATE".to_string(), |day| d.date(day));
        let age = match options.age {
            AgeSource::Created => {
                let created = d.ident(&horizon.created_column);
                format!(
                    "CASE WHEN {created} IS NULL THEN {zero} ELSE {days} END",
                    zero = d.number(0.0),
                    days =
                        d.to_double(&d.days_between(&format!("CAST({created} AS DATE)"), &today))
                )
            }
            AgeSource::AgeDays => format!(
                "COALESCE({}, {})",
                d.to_double(&d.ident(crate::aging::AGE_FIELD)),
                d.number(0.0)
            ),
        };
        // In horizons, clamped to the ages learned, as `AgeTerms::extend` reads it.
        values.push(format!(
            "LEAST(GREATEST({age}, {}), {}) / {} AS ls_t",
            d.number(0.0),
            d.number(f64::from(aging.max_age_days)),
            d.number(f64::from(horizon.days.max(1)))
        ));
        let width = columns.len();
        columns.push("ls_t".into());
        columns.push("(ls_t * ls_t)".into());
        for name in &aging.interactions {
            let attribute = encoder
                .attributes
                .iter()
                .find(|a| &a.name == name)
                .ok_or_else(|| inconsistent(format!("age interaction with unknown {name:?}")))?;
            let end = encoder
                .attributes
                .iter()
                .find(|a| a.offset > attribute.offset)
                .map_or(width, |next| next.offset);
            for k in attribute.offset..end {
                columns.push(format!("({} * ls_t)", columns[k]));
            }
        }
    }
    if columns.len() != artifact.coefficients.len() {
        return Err(inconsistent(format!(
            "{} coefficients for {} encoded columns",
            artifact.coefficients.len(),
            columns.len()
        )));
    }

    // Step 2: the log-odds, summed in column order.
    let terms: Vec<String> = artifact
        .coefficients
        .iter()
        .zip(&columns)
        .map(|(c, x)| format!("{} * {x}", d.number(c.weight)))
        .collect();
    let sum = if terms.is_empty() {
        d.number(0.0)
    } else {
        terms.join("\n        + ")
    };

    // Steps 3 and 4.
    let mut grade = "CASE WHEN ls_p IS NULL THEN NULL".to_string();
    let last = artifact
        .grades
        .last()
        .ok_or_else(|| inconsistent("no grades".into()))?;
    for cutoff in &artifact.grades[..artifact.grades.len() - 1] {
        let _ = write!(
            grade,
            " WHEN ls_p >= {} THEN {}",
            d.number(cutoff.min_probability),
            d.text(&cutoff.grade)
        );
    }
    let _ = write!(grade, " ELSE {} END", d.text(&last.grade));

    let mut sql = String::new();
    let _ = writeln!(
        sql,
        "-- leadscore model {} ({} SQL, written by leadscore {}).",
        comment(&artifact.model_version),
        d.name(),
        env!("CARGO_PKG_VERSION")
    );
    let _ = writeln!(
        sql,
        "-- probability: {}.",
        comment(&artifact.probability_meaning())
    );
    let _ = writeln!(
        sql,
        "-- Reads {}: {}.",
        comment(&options.table),
        comment(&input_columns(artifact, &id_column, options).join(", "))
    );
    let _ = writeln!(
        sql,
        "-- A NULL is a missing value; a lead whose yes/no value is neither gets NULLs."
    );
    let _ = write!(
        sql,
        "SELECT\n  ls_id AS {id},\n  ls_p AS probability,\n  \
         CASE WHEN ls_p IS NULL THEN NULL ELSE CAST(LEAST({ninety_nine}, GREATEST({one}, \
         FLOOR(ls_p * {hundred} + {half}))) AS {int}) END AS score,\n  {grade} AS grade\n\
         FROM (\n  SELECT ls_id, CASE WHEN ls_logit IS NULL THEN NULL \
         ELSE {one} / ({one} + EXP(-LEAST(GREATEST(ls_logit, {low}), {high}))) END AS ls_p\n  FROM (\n    SELECT ls_id,\n      {intercept}\n      + ({sum}) AS ls_logit\n    \
         FROM (\n      SELECT\n        {values}\n      FROM {table}\n    ) AS ls_values\n  ) AS \
         ls_logits\n) AS ls_probabilities\n",
        id = d.ident(&id_column),
        ninety_nine = d.number(99.0),
        one = d.number(1.0),
        hundred = d.number(100.0),
        half = d.number(0.5),
        int = d.integer(),
        low = d.number(-MAX_LOGIT),
        high = d.number(MAX_LOGIT),
        intercept = d.number(artifact.intercept),
        values = values.join(",\n        "),
        table = d.table(&options.table),
    );
    Ok(sql)
}

/// Text inside a `--` comment: a line break would end the comment and make the rest SQL.
fn comment(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}

/// The log-odds clamp of [`crate::model::sigmoid`].
const MAX_LOGIT: f64 = 30.0;

/// The columns the query reads, with the types it expects, for its header comment.
fn input_columns(artifact: &ModelArtifact, id_column: &str, options: &SqlOptions) -> Vec<String> {
    let mut columns = vec![format!("{id_column} (the lead id)")];
    for attribute in &artifact.encoder.attributes {
        let kind = match attribute.encoding {
            Encoding::Numeric { .. } => "a number",
            Encoding::Boolean { .. } => "yes/no: boolean or text",
            Encoding::Categorical { .. } => "text",
        };
        columns.push(format!("{} ({kind})", attribute.name));
    }
    if let (Some(_), Some(h)) = (&artifact.aging, &artifact.horizon) {
        columns.push(match options.age {
            AgeSource::Created => format!("{} (the created date)", h.created_column),
            AgeSource::AgeDays => format!("{} (the age in days)", crate::aging::AGE_FIELD),
        });
    }
    columns
}

/// An attribute's value as the encoder reads it (step 1), NULL when missing.
fn read_value(d: Dialect, attribute: &Attribute, missing_tokens: &[String]) -> String {
    let column = d.ident(&attribute.name);
    match &attribute.encoding {
        Encoding::Numeric {
            min,
            max,
            lower_limit,
            upper_limit,
            ..
        } => {
            // NULL first: GREATEST and LEAST skip NULLs in some engines.
            format!(
                "CASE WHEN {column} IS NULL THEN NULL ELSE LEAST(GREATEST({}, {}), {}) END",
                d.to_double(&column),
                d.number(lower_limit.unwrap_or(*min)),
                d.number(upper_limit.unwrap_or(*max))
            )
        }
        Encoding::Boolean { .. } => {
            let label = normalised(d, &column);
            let list = |items: &[&str]| {
                items
                    .iter()
                    .map(|t| d.text(t))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            format!(
                "CASE WHEN {column} IS NULL OR {label} IN ({missing}) THEN NULL \
                 WHEN {label} IN ({yes}) THEN 1 WHEN {label} IN ({no}) THEN 0 ELSE -1 END",
                missing = tokens(d, missing_tokens),
                yes = list(&crate::schema::FLAG_YES),
                no = list(&crate::schema::FLAG_NO),
            )
        }
        Encoding::Categorical { .. } => {
            let label = normalised(d, &column);
            format!(
                "CASE WHEN {column} IS NULL OR {label} IN ({}) THEN NULL ELSE {label} END",
                tokens(d, missing_tokens)
            )
        }
    }
}

/// A column as text, trimmed, runs of white space folded to one space, lower-cased: how the
/// encoder compares category labels (`schema::normalise_category`) and reads yes/no values.
fn normalised(d: Dialect, column: &str) -> String {
    format!(
        "LOWER(TRIM({}))",
        d.collapse_spaces(&format!("CAST({column} AS {})", d.text_type()))
    )
}

/// The missing-value tokens as a list of text literals (never empty: `''` is always one).
fn tokens(d: Dialect, missing_tokens: &[String]) -> String {
    let mut list: Vec<String> = missing_tokens.iter().map(|t| d.text(t)).collect();
    if list.is_empty() {
        list.push(d.text(""));
    }
    list.join(", ")
}

/// The values of an attribute's encoded columns (step 2's multiplicands), from its step-1
/// value `value`, in the encoder's column order.
fn encoded_columns(d: Dialect, attribute: &Attribute, value: &str) -> Result<Vec<String>, String> {
    let (one, zero) = (d.number(1.0), d.number(0.0));
    let flag = |condition: String| format!("CASE WHEN {condition} THEN {one} ELSE {zero} END");
    let missing = flag(format!("{value} IS NULL"));
    let mut columns = Vec::new();
    match &attribute.encoding {
        Encoding::Numeric {
            mean,
            scale,
            missing_indicator,
            shape,
            ..
        } => {
            columns.push(format!(
                "CASE WHEN {value} IS NULL THEN {zero} ELSE ({value} - {}) / {} END",
                d.number(*mean),
                d.number(*scale)
            ));
            if *missing_indicator {
                columns.push(missing);
            }
            if let Some(shape) = shape {
                columns.extend(
                    spline_columns(d, shape, value)
                        .map_err(|message| format!("attribute {:?}: {message}", attribute.name))?,
                );
            }
        }
        Encoding::Boolean {
            share_true,
            missing_indicator,
            ..
        } => {
            // No ELSE: a value that is neither yes nor no (−1) makes the sum NULL.
            columns.push(format!(
                "CASE WHEN {value} = 1 THEN {one} WHEN {value} = 0 THEN {zero} \
                 WHEN {value} IS NULL THEN {} END",
                d.number(*share_true)
            ));
            if *missing_indicator {
                columns.push(missing);
            }
        }
        Encoding::Categorical { levels, .. } => {
            for level in levels {
                columns.push(flag(format!("{value} = {}", d.text(level))));
            }
            if attribute.other_slot().is_some() {
                // Pooled rare labels and labels never seen share the one column.
                columns.push(if levels.is_empty() {
                    flag(format!("{value} IS NOT NULL"))
                } else {
                    let known: Vec<String> = levels.iter().map(|l| d.text(l)).collect();
                    flag(format!(
                        "{value} IS NOT NULL AND {value} NOT IN ({})",
                        known.join(", ")
                    ))
                });
            }
            if attribute.missing_slot().is_some() {
                columns.push(missing);
            }
        }
    }
    Ok(columns)
}

/// The K − 2 spline columns of a shape (see [`Shape`]): with the winsorised value v,
/// `(r_j(v) - c_j) / s_j`, and 0 for a missing value. Differences of knots are constants,
/// formed here in f64 as the encoder forms them.
fn spline_columns(d: Dialect, shape: &Shape, value: &str) -> Result<Vec<String>, String> {
    let t = &shape.knots;
    let k = t.len();
    if k < 3 || shape.centers.len() != k - 2 || shape.scales.len() != k - 2 {
        return Err(format!(
            "a shape of {k} knots with {} centres and {} scales (needs at least 3 knots and \
             K − 2 of each)",
            shape.centers.len(),
            shape.scales.len()
        ));
    }
    let cube = |knot: f64| {
        format!(
            "POWER(GREATEST({value} - {}, {}), 3)",
            d.number(knot),
            d.number(0.0)
        )
    };
    let (last, before_last) = (t[k - 1], t[k - 2]);
    let span = (last - t[0]) * (last - t[0]);
    Ok((0..k - 2)
        .map(|j| {
            // Left to right as the spec writes it: `a * b / c` is `(a * b) / c`.
            let r = format!(
                "({} - {} * {} / {gap} + {} * {} / {gap}) / {}",
                cube(t[j]),
                cube(before_last),
                d.number(last - t[j]),
                cube(last),
                d.number(before_last - t[j]),
                d.number(span),
                gap = d.number(last - before_last),
            );
            format!(
                "CASE WHEN {value} IS NULL THEN {} ELSE ({r} - {}) / {} END",
                d.number(0.0),
                d.number(shape.centers[j]),
                d.number(shape.scales[j])
            )
        })
        .collect())
}

#[cfg(test)]
mod tests;
