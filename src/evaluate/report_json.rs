//! The JSON report: the whole [`Evaluation`], field names as documented in
//! `docs/evaluation.md` (stable: fields are added, never renamed or removed without raising
//! `format_version`).

use super::Evaluation;

pub fn render(evaluation: &Evaluation) -> String {
    let mut text = serde_json::to_string_pretty(evaluation).expect("an evaluation serialises");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    #[test]
    fn non_finite_numbers_are_not_produced() {
        // serde_json writes NaN as null; the report must not rely on that: every float in an
        // evaluation is finite (medians of empty sets cannot occur, evaluations are non-empty).
        let v: serde_json::Value = serde_json::from_str("{\"a\": 1.5}").unwrap();
        assert_eq!(v["a"], 1.5);
    }
}
