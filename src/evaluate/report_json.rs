//! The JSON report: the whole [`Evaluation`], field names as documented in
//! `docs/evaluation.md` (stable: fields are added, never renamed or removed without raising
//! `format_version`).

use super::Evaluation;

pub fn render(evaluation: &Evaluation) -> String {
    let mut text = serde_json::to_string_pretty(evaluation).expect("an evaluation serialises");
    text.push('\n');
    text
}
