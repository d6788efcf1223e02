//! Messy labels: category labels that differ only by spacing or punctuation (`Fe Male` and
//! `Female`, `e-mail` and `email`) are probably one value typed two ways. The encoder already
//! treats case and runs of spaces as the same label; merging further would be a guess (`A-1` and
//! `A1` may be distinct products), so training does not merge them silently: it reports each
//! group, with its counts, for the user to clean the export or accept as is.

use crate::data::Table;
use crate::encoder::Quoted;
use crate::schema::{Kind, MissingTokens, normalise_category};
use std::collections::{BTreeMap, HashMap};

/// Labels shown per group at most; a longer group says how many more.
const SHOWN: usize = 5;

/// One warning per categorical feature column with probable duplicates, over `rows`.
pub(super) fn probable_duplicates(
    table: &Table,
    features: &[(usize, Kind)],
    rows: &[usize],
    missing: &MissingTokens,
) -> Vec<String> {
    let mut warnings = Vec::new();
    for &(c, kind) in features {
        if kind != Kind::Categorical {
            continue;
        }
        let column = table.column(c);
        // Cells as written (no allocation per lead), then normalised label → (leads, its most
        // common spelling; ties to the first in byte order).
        let mut cells: HashMap<&str, u64> = HashMap::new();
        for &row in rows {
            *cells.entry(column.get(row)).or_insert(0) += 1;
        }
        let mut cells: Vec<(&str, u64)> = cells
            .into_iter()
            .filter(|(cell, _)| !missing.is_missing(cell))
            .collect();
        cells.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let mut labels: HashMap<String, (u64, &str)> = HashMap::new();
        for (cell, leads) in cells {
            labels
                .entry(normalise_category(cell))
                .or_insert((0, cell))
                .0 += leads;
        }
        let mut groups: BTreeMap<String, Vec<(u64, &str)>> = BTreeMap::new();
        for (label, (leads, spelling)) in &labels {
            let key: String = label.chars().filter(|c| c.is_alphanumeric()).collect();
            if !key.is_empty() {
                groups.entry(key).or_default().push((*leads, spelling));
            }
        }
        let mut found: Vec<String> = groups
            .into_values()
            .filter(|g| g.len() > 1)
            .map(|mut group| {
                group.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
                let mut text: Vec<String> = group
                    .iter()
                    .take(SHOWN)
                    .map(|(leads, spelling)| format!("{} ({leads})", Quoted(spelling)))
                    .collect();
                if group.len() > SHOWN {
                    text.push(format!("{} more", group.len() - SHOWN));
                }
                text.join(", ")
            })
            .collect();
        if found.is_empty() {
            continue;
        }
        found.sort();
        warnings.push(format!(
            "column {:?}: labels that differ only by spacing or punctuation, probably one value \
             each (kept apart; clean the export to merge them): {}",
            table.headers[c],
            found.join("; ")
        ));
    }
    warnings
}
