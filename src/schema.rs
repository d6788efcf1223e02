//! What each column of an export is: its kind, which cells count as missing, and how outcome
//! values read as won, lost or still open.
//!
//! Nothing here is specific to one CRM: kinds are inferred from the values and can be
//! overridden by name (`--kind "Lead Number=categorical"`).

use crate::data::TextColumn;
use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

/// The kind of a column, inferred from its values or set by the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Numbers: imputed, given a missing indicator, standardised.
    Numeric,
    /// A small set of labels: one-hot, rare labels pooled.
    Categorical,
    /// Yes/no, true/false, 1/0.
    Boolean,
    /// Dates (and times of day): used to order the holdout and for monthly reports, not as
    /// features.
    Date,
    /// Identifiers (every value unique): never a feature unless asked for.
    Id,
    /// Free text (long, mostly unique): never a feature unless asked for.
    Text,
    /// At most one distinct value: carries no information.
    Constant,
}

impl Kind {
    pub fn is_feature(self) -> bool {
        matches!(self, Kind::Numeric | Kind::Categorical | Kind::Boolean)
    }

    pub fn parse(name: &str) -> Option<Kind> {
        Some(match name.trim().to_lowercase().as_str() {
            "numeric" | "number" => Kind::Numeric,
            "categorical" | "category" => Kind::Categorical,
            "boolean" | "bool" | "flag" => Kind::Boolean,
            "date" => Kind::Date,
            "id" => Kind::Id,
            "text" => Kind::Text,
            "ignore" | "constant" => Kind::Constant,
            _ => return None,
        })
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Numeric => "numeric",
            Kind::Categorical => "categorical",
            Kind::Boolean => "boolean",
            Kind::Date => "date",
            Kind::Id => "id",
            Kind::Text => "text",
            Kind::Constant => "constant",
        })
    }
}

/// Cell values that mean "unknown". Compared after trimming, ignoring case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MissingTokens(pub Vec<String>);

impl Default for MissingTokens {
    fn default() -> Self {
        MissingTokens(
            ["", "na", "n/a", "null"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
        )
    }
}

impl MissingTokens {
    /// The defaults plus the user's own tokens (e.g. a web form's `Select`).
    pub fn with_extra(extra: &[String]) -> Self {
        let mut tokens = MissingTokens::default();
        for t in extra {
            let t = t.trim().to_lowercase();
            if !tokens.0.contains(&t) {
                tokens.0.push(t);
            }
        }
        tokens
    }

    pub fn is_missing(&self, cell: &str) -> bool {
        let cell = cell.trim();
        self.0.iter().any(|t| t.eq_ignore_ascii_case(cell))
    }
}

/// A lead's outcome as read from the target column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Won,
    Lost,
    /// Empty or a pipeline stage (`Engaging`): not known yet, not a training row.
    Open,
}

const WON: &[&str] = &[
    "1",
    "1.0",
    "true",
    "t",
    "yes",
    "y",
    "won",
    "win",
    "closed won",
    "closed-won",
    "closedwon",
    "converted",
];
const LOST: &[&str] = &[
    "0",
    "0.0",
    "false",
    "f",
    "no",
    "n",
    "lost",
    "loss",
    "closed lost",
    "closed-lost",
    "closedlost",
    "not converted",
    "unconverted",
];
const OPEN: &[&str] = &[
    "open",
    "engaging",
    "prospecting",
    "pending",
    "in progress",
    "new",
    "working",
    "nurturing",
    "qualified",
];

/// Reads outcome cells. See DESIGN.md, "Data in".
#[derive(Debug, Clone, Default)]
pub struct OutcomeParser {
    /// `--positive VALUE`: this value (normalised) is a win and every other known value a loss.
    pub positive: Option<String>,
    /// Extra values that mean "still open" (`--open`).
    pub open: Vec<String>,
    pub missing: MissingTokens,
}

impl OutcomeParser {
    pub fn new(positive: Option<&str>, open: &[String], missing: MissingTokens) -> Self {
        OutcomeParser {
            positive: positive.map(normalise_category),
            open: open.iter().map(|s| normalise_category(s)).collect(),
            missing,
        }
    }

    /// `None` when the value is none of won, lost or open.
    pub fn parse(&self, cell: &str) -> Option<Outcome> {
        if self.missing.is_missing(cell) {
            return Some(Outcome::Open);
        }
        let value = normalise_category(cell);
        if self.open.contains(&value) || OPEN.contains(&value.as_str()) {
            return Some(Outcome::Open);
        }
        if let Some(positive) = &self.positive {
            return Some(if *positive == value {
                Outcome::Won
            } else {
                Outcome::Lost
            });
        }
        if WON.contains(&value.as_str()) {
            Some(Outcome::Won)
        } else if LOST.contains(&value.as_str()) {
            Some(Outcome::Lost)
        } else {
            None
        }
    }
}

/// Category labels compare after trimming, folding runs of white space and lower-casing, so
/// `google`, `Google ` and `GOOGLE` are one source.
pub fn normalise_category(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for word in value.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.extend(word.chars().flat_map(char::to_lowercase));
    }
    out
}

/// Parses a number as CRMs export them (`12`, `-3.5`, `1e3`); rejects NaN and infinities.
pub fn parse_number(cell: &str) -> Option<f64> {
    let v: f64 = cell.trim().parse().ok()?;
    v.is_finite().then_some(v)
}

/// The values a yes/no attribute reads as yes (ignoring case and surrounding white space).
pub const FLAG_YES: [&str; 6] = ["1", "1.0", "true", "t", "yes", "y"];
/// The values a yes/no attribute reads as no.
pub const FLAG_NO: [&str; 6] = ["0", "0.0", "false", "f", "no", "n"];

/// Reads yes/no style values.
pub fn parse_flag(cell: &str) -> Option<bool> {
    // The same as matching `normalise_category(cell)` against the lists, without allocating:
    // no token has inner whitespace, and only ASCII letters lower-case to the tokens' letters
    // (the one other character that lower-cases to ASCII, the Kelvin sign, gives `k`).
    let cell = cell.trim();
    if FLAG_YES.iter().any(|t| t.eq_ignore_ascii_case(cell)) {
        Some(true)
    } else if FLAG_NO.iter().any(|t| t.eq_ignore_ascii_case(cell)) {
        Some(false)
    } else {
        None
    }
}

/// Reads the date part of `2024-03-01`, `2024-03-01 10:20:00`, `2024-03-01T10:20:00Z`,
/// `2024/03/01`, `01.03.2024` and `03/01/2024` (month first, as US CRMs export).
pub fn parse_date(cell: &str) -> Option<NaiveDate> {
    // The date is what comes before a time part (`2024-03-01T10:20`, `1/5/2024 10:00`).
    let head = cell.trim().split([' ', 'T']).next().unwrap_or("");
    // chrono's %Y also takes `24`: a two-digit year would become year 24, so insist on four.
    ["%Y-%m-%d", "%Y/%m/%d", "%d.%m.%Y", "%m/%d/%Y"]
        .iter()
        .find_map(|format| NaiveDate::parse_from_str(head, format).ok())
        .filter(|d| d.year() >= 1000)
}

/// Whether a cell is a time of day: `H:MM` or `HH:MM:SS`, optionally with fractions of a second.
fn is_time_of_day(cell: &str) -> bool {
    let cell = cell.trim();
    ["%H:%M", "%H:%M:%S", "%H:%M:%S%.f"]
        .iter()
        .any(|format| chrono::NaiveTime::parse_from_str(cell, format).is_ok())
}

/// What inference saw in a column, kept so the summary can explain each decision.
#[derive(Debug, Clone)]
pub struct ColumnProfile {
    pub name: String,
    pub kind: Kind,
    /// Why this kind, in a few words (shown in the training summary).
    pub reason: String,
    pub missing: usize,
    pub distinct: usize,
}

/// Infers a column's kind from its cells.
///
/// Each distinct spelling is examined once (weighted by its count): exports repeat the same
/// few values millions of times.
pub fn infer_kind(name: &str, column: &TextColumn, missing: &MissingTokens) -> ColumnProfile {
    // Distinct spellings stop being collected past this: the answer is the same (an id or text).
    const DISTINCT_CAP: usize = 200_000;
    let mut counts: HashMap<&str, usize> = HashMap::new();
    let mut overflow = 0usize;
    for cell in column.iter() {
        if let Some(n) = counts.get_mut(cell) {
            *n += 1;
        } else if counts.len() < DISTINCT_CAP {
            counts.insert(cell, 1);
        } else {
            overflow += 1;
        }
    }
    let (mut present, mut numbers, mut integers, mut flags, mut dates) = (0, 0, 0, 0, 0);
    let mut times = 0;
    let (mut total_len, mut with_space) = (0usize, 0usize);
    let mut distinct: HashSet<String> = HashSet::new();
    for (&cell, &n) in &counts {
        if missing.is_missing(cell) {
            continue;
        }
        present += n;
        total_len += cell.len() * n;
        if cell.contains(' ') {
            with_space += n;
        }
        if let Some(v) = parse_number(cell) {
            numbers += n;
            if v.fract() == 0.0 {
                integers += n;
            }
        }
        if parse_flag(cell).is_some() {
            flags += n;
        }
        if parse_date(cell).is_some() {
            dates += n;
        }
        if is_time_of_day(cell) {
            times += n;
        }
        distinct.insert(normalise_category(cell));
    }
    // Cells past the cap were not examined: they count as present, distinct, and of no kind.
    present += overflow;
    let distinct_count = distinct.len() + overflow;
    let profile = |kind, reason: &str| ColumnProfile {
        name: name.to_string(),
        kind,
        reason: reason.to_string(),
        missing: column.len() - present,
        distinct: distinct_count,
    };
    let unique_share = if present == 0 {
        0.0
    } else {
        distinct_count as f64 / present as f64
    };
    if distinct_count <= 1 {
        return profile(Kind::Constant, "at most one distinct value");
    }
    if flags == present && distinct_count <= 2 {
        return profile(Kind::Boolean, "yes/no values");
    }
    if numbers == present {
        if integers == present && distinct_count == present && present >= 50 {
            return profile(Kind::Id, "every value a distinct whole number");
        }
        return profile(Kind::Numeric, "numbers");
    }
    // A few stray values in a column of numbers are typing errors, not categories: the column
    // stays numeric and training names the first such cell.
    if numbers * 100 >= present * 95 && present - numbers <= 1000 {
        return profile(Kind::Numeric, "numbers, with a few cells that are not");
    }
    if dates == present {
        return profile(Kind::Date, "dates");
    }
    // Times of day are mostly distinct, like ids, but they are a time, not a name for a lead.
    if times == present {
        return profile(Kind::Date, "times of day");
    }
    if present >= 50 && unique_share >= 0.9 {
        return if with_space * 2 > present {
            profile(Kind::Text, "mostly unique phrases")
        } else {
            profile(Kind::Id, "mostly unique values")
        };
    }
    if present >= 50 && total_len / present > 40 && unique_share > 0.5 {
        return profile(Kind::Text, "long, mostly unique values");
    }
    profile(Kind::Categorical, "labels")
}

/// Parses `--kind NAME=KIND` overrides.
pub fn parse_kind_overrides(items: &[String]) -> Result<BTreeMap<String, Kind>, String> {
    items
        .iter()
        .map(|item| {
            let (name, kind) = item
                .rsplit_once('=')
                .ok_or_else(|| format!("--kind {item:?}: expected COLUMN=KIND"))?;
            let kind = Kind::parse(kind).ok_or_else(|| {
                format!(
                    "--kind {item:?}: unknown kind {kind:?}; use numeric, categorical, boolean, \
                     date, id, text or ignore"
                )
            })?;
            Ok((name.trim().to_string(), kind))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(cells: &[&str]) -> TextColumn {
        let mut c = TextColumn::default();
        for cell in cells {
            c.push(cell);
        }
        c
    }

    /// `parse_flag` answers as matching the normalised category against the lists would.
    #[test]
    fn parse_flag_matches_the_normalised_lists() {
        let reference = |cell: &str| match normalise_category(cell).as_str() {
            "1" | "1.0" | "true" | "t" | "yes" | "y" => Some(true),
            "0" | "0.0" | "false" | "f" | "no" | "n" => Some(false),
            _ => None,
        };
        let cells = [
            "yes",
            "YES",
            " Yes ",
            "\u{a0}y\u{a0}",
            "\tTrue\n",
            "t",
            "T",
            "1",
            "1.0",
            "no",
            "No ",
            "n",
            "F",
            "false",
            "0",
            "0.0",
            "",
            " ",
            "y e s",
            "ye s",
            "yes yes",
            "\u{212a}",
            "\u{130}",
            "ｙｅｓ",
            "nö",
            "01",
            "1.00",
            "-0",
            "on",
            "off",
        ];
        for cell in cells {
            assert_eq!(parse_flag(cell), reference(cell), "{cell:?}");
        }
    }

    fn kind_of(cells: &[&str]) -> Kind {
        infer_kind("x", &column(cells), &MissingTokens::default()).kind
    }

    #[test]
    fn infers_each_kind() {
        assert_eq!(kind_of(&["1.5", "2", "", "NA", "3"]), Kind::Numeric);
        assert_eq!(kind_of(&["Yes", "no", "", "YES"]), Kind::Boolean);
        assert_eq!(kind_of(&["0", "1", "1"]), Kind::Boolean);
        assert_eq!(
            kind_of(&["web", "Email", "web", "referral"]),
            Kind::Categorical
        );
        assert_eq!(
            kind_of(&["2024-01-02", "2024-02-03 10:00:00", ""]),
            Kind::Date
        );
        assert_eq!(kind_of(&["No", "no", "NO"]), Kind::Constant);
        // One typo among numbers keeps the column numeric (training then names the cell).
        let mut typo: Vec<String> = (0..40).map(|i| (i % 7).to_string()).collect();
        typo.push("12O".into());
        let typo: Vec<&str> = typo.iter().map(String::as_str).collect();
        assert_eq!(kind_of(&typo), Kind::Numeric);
        assert_eq!(kind_of(&["1", "2", "abc", "def"]), Kind::Categorical);
        let ids: Vec<String> = (0..60).map(|i| format!("{}", 1000 + i)).collect();
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        assert_eq!(kind_of(&ids), Kind::Id);
        let uuids: Vec<String> = (0..60).map(|i| format!("7927b2df-{i:04}")).collect();
        let uuids: Vec<&str> = uuids.iter().map(String::as_str).collect();
        assert_eq!(kind_of(&uuids), Kind::Id);
        let notes: Vec<String> = (0..60).map(|i| format!("called back on day {i}")).collect();
        let notes: Vec<&str> = notes.iter().map(String::as_str).collect();
        assert_eq!(kind_of(&notes), Kind::Text);
        // Times of day are mostly distinct but are not ids.
        let times: Vec<String> = (0..60)
            .map(|i| format!("{:02}:{:02}:{:02}", 8 + i % 10, i, (7 * i) % 60))
            .collect();
        let times: Vec<&str> = times.iter().map(String::as_str).collect();
        let profile = infer_kind("call time", &column(&times), &MissingTokens::default());
        assert_eq!(
            (profile.kind, profile.reason.as_str()),
            (Kind::Date, "times of day")
        );
        assert_eq!(kind_of(&["9:05", "17:30", "", "12:00"]), Kind::Date);
    }

    #[test]
    fn user_missing_tokens_count_as_missing() {
        let tokens = MissingTokens::with_extra(&["Select".to_string()]);
        let p = infer_kind(
            "city",
            &column(&["select", "Mumbai", "Select", "Pune"]),
            &tokens,
        );
        assert_eq!(p.missing, 2);
        assert_eq!(p.kind, Kind::Categorical);
    }

    #[test]
    fn outcome_values_from_design() {
        let p = OutcomeParser::default();
        for won in ["1", "TRUE", "yes", "Won", "Closed Won", "converted"] {
            assert_eq!(p.parse(won), Some(Outcome::Won), "{won}");
        }
        for lost in ["0", "false", "No", "lost", "closed lost", "Not Converted"] {
            assert_eq!(p.parse(lost), Some(Outcome::Lost), "{lost}");
        }
        for open in ["", "Engaging", "prospecting", "NA"] {
            assert_eq!(p.parse(open), Some(Outcome::Open), "{open}");
        }
        assert_eq!(p.parse("maybe"), None);
        let p = OutcomeParser::new(Some("Signed"), &[], MissingTokens::default());
        assert_eq!(p.parse("signed "), Some(Outcome::Won));
        assert_eq!(p.parse("churned"), Some(Outcome::Lost));
    }

    #[test]
    fn dates_in_common_export_formats() {
        let d = NaiveDate::from_ymd_opt(2024, 3, 1).unwrap();
        for s in [
            "2024-03-01",
            "2024-03-01 10:20:00",
            "2024-03-01T10:20:00Z",
            "03/01/2024",
            "3/1/2024 10:00",
        ] {
            assert_eq!(parse_date(s), Some(d), "{s}");
        }
        assert_eq!(parse_date("2024-13-01"), None);
        assert_eq!(parse_date("3/5/24"), None, "two-digit years are ambiguous");
        assert_eq!(parse_date("hello"), None);
    }

    #[test]
    fn numbers_reject_nan_and_infinity() {
        assert_eq!(parse_number(" 2.5 "), Some(2.5));
        assert_eq!(parse_number("NaN"), None);
        assert_eq!(parse_number("inf"), None);
    }

    #[test]
    fn kind_overrides() {
        let o = parse_kind_overrides(&["Lead Number=categorical".into()]).unwrap();
        assert_eq!(o["Lead Number"], Kind::Categorical);
        assert!(parse_kind_overrides(&["x=blob".into()]).is_err());
    }
}
