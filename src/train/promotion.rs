//! Promotion: writing a trained version into the registry and deciding whether it goes into
//! service. A nightly job must not replace a better model with a worse one, so by default the
//! new model is compared with the serving one on leads neither fit learned from.

use super::{TrainError, Trained};
use crate::encoder::RawValue;
use crate::metrics::log_loss;
use crate::model::{Model, ModelArtifact};
use crate::registry::{Registry, RegistryError};
use crate::schema::parse_date;
use serde::Serialize;
use std::path::PathBuf;

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
    /// Fields the serving model scores with that the new model does not (e.g. a column dropped
    /// as leakage): a serving model that wins the comparison may win only because of them.
    pub serving_only_fields: Vec<String>,
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
    let promotion = decide(registry, trained, policy)?;
    let path = write_new_version(registry, &mut trained.artifact)?;
    if promotion.promoted {
        registry.promote(&trained.artifact.model_version)?;
    }
    Ok((path, promotion))
}

/// Whether `trained` should go into service per `policy`, and why.
fn decide(
    registry: &Registry,
    trained: &Trained,
    policy: PromotePolicy,
) -> Result<Promotion, TrainError> {
    let previous = registry.current_version()?;
    let mut promotion = Promotion {
        promoted: true,
        previous: previous.clone(),
        serving_log_loss: None,
        new_log_loss: None,
        compared_on: None,
        serving_only_fields: Vec::new(),
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
            Ok(serving) if question(&serving.artifact) != question(&trained.artifact) => {
                // Log losses on different labels do not compare, and a nightly job must not
                // change what the served probability means without someone deciding it.
                promotion.promoted = false;
                promotion.reason = format!(
                    "{version} answers a different question ({}) than this model ({}); the \
                     serving model stays (--promote always, or `leadscore models promote`, \
                     switches)",
                    question(&serving.artifact),
                    question(&trained.artifact)
                );
            }
            Ok(serving) => {
                let new_fields = crate::names::FieldIndex::new(
                    trained
                        .artifact
                        .encoder
                        .attributes
                        .iter()
                        .map(|a| a.name.as_str()),
                );
                promotion.serving_only_fields = serving
                    .fields()
                    .names()
                    .iter()
                    .filter(|name| new_fields.get(name.as_bytes()).is_none())
                    .cloned()
                    .collect();
                match compare_with_serving(&serving, trained) {
                    Err(why) => {
                        promotion.reason =
                            format!("the serving model {version} cannot score this data: {why}")
                    }
                    Ok(c) => promotion.judge(c, version),
                }
            }
        },
    }
    Ok(promotion)
}

/// The question a model's probability answers, in a few words.
fn question(artifact: &ModelArtifact) -> String {
    match &artifact.horizon {
        Some(h) => format!("closes within {} days", h.days),
        None => "ever closes".into(),
    }
}

impl Promotion {
    /// Promotes when the new model's log loss is no worse than the serving model's.
    fn judge(&mut self, c: Comparison, version: &str) {
        self.promoted = c.new_loss <= c.serving_loss;
        self.reason = format!(
            "log loss {:.5} against {:.5} of {version} on {}{}",
            c.new_loss,
            c.serving_loss,
            c.scope,
            if self.promoted {
                ""
            } else {
                "; the serving model stays (--promote always overrides)"
            }
        );
        self.serving_log_loss = Some(c.serving_loss);
        self.new_log_loss = Some(c.new_loss);
        self.compared_on = Some(c.scope);
    }
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
    let (chosen, scope) = comparison_leads(serving, trained);
    let table = &trained.table;
    let holdout = &trained.holdout_rows;
    let columns = table
        .attribute_columns(serving.fields())
        .map_err(|e| e.to_string())?;
    let mut serving_p = Vec::with_capacity(chosen.len());
    for &i in &chosen {
        let row = holdout[i];
        // At the holdout row's landmark age (0 without landmarks), as the new model was.
        let scored = serving
            .score_at(
                |a| match columns[a] {
                    Some(c) => RawValue::Text(table.column(c).get(row)),
                    None => RawValue::Missing,
                },
                Some(trained.holdout_ages[i]),
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

/// The holdout leads (indexes into `trained.holdout_rows`) to compare on, and how they were
/// chosen.
fn comparison_leads(serving: &Model, trained: &Trained) -> (Vec<usize>, String) {
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
    (chosen, scope)
}
