//! The HTML report (placeholder until the charts land).

use super::Evaluation;

pub fn render(e: &Evaluation) -> String {
    format!(
        "<!doctype html><pre>{}</pre>",
        super::report_terminal::render(e)
    )
}
