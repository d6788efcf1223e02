//! Drift of each attribute against training: the PSI of its values over the training bins the
//! model stores (`encoder.attributes[].distribution`), the share of numbers outside the training
//! range and the share of category labels training never saw, with the attributes that moved
//! most flagged and the reason said in figures.
//!
//! The values are counted as the one encoder read them ([`Reading`]), so "unseen" and "missing"
//! mean here exactly what they mean when the lead is scored. `evaluate` counts the leads of a
//! backtest; `train --date` counts its holdout against the training part.
//!
//! Bins: a numeric attribute's training deciles (values ≤ an edge go to its bin), a boolean's
//! no and yes, a categorical attribute's kept levels, its pooled rare labels and one bin of
//! labels never seen in training (a training share of 0); every kind has a bin of missing
//! values. Shares are of all leads, so the bins add up to 1 on both sides; the PSI term is
//! [`super::drift::psi_term`], with empty bins floored at 1e-4.

use super::drift::{PSI_MAJOR, level, psi_term};
use crate::encoder::{
    Attribute, Distribution, Encoding, FeatureEncoder, OTHER_LEVEL, Reading, format_number,
};
use crate::schema::Kind;
use serde::Serialize;

/// An attribute is flagged when at least this share of its numbers lies outside the training
/// range, or of its labels was never seen in training, whatever its PSI: past the range the
/// model extrapolates, and an unseen label gets no weight of its own.
pub const FLAG_SHARE: f64 = 0.10;
/// The flag rule as the reports state it: "PSI ≥ 0.25, or ≥ 10% of the numbers outside the
/// training range or of the labels unseen".
pub fn flag_rule() -> String {
    format!(
        "PSI ≥ {}, or ≥ {:.0}% of the numbers outside the training range or of the labels unseen",
        super::drift::PSI_MAJOR,
        FLAG_SHARE * 100.0
    )
}

/// Causes smaller than this share are left out of a reason.
const MENTION_SHARE: f64 = 0.01;
/// A change in the missing share of at least this many points is named in a reason.
const MENTION_MISSING: f64 = 0.05;
/// The bin of labels never seen in training.
pub const UNSEEN_BIN: &str = "(unseen)";
/// The bin of missing values.
pub const MISSING_BIN: &str = "(missing)";

/// Per-attribute drift of a set of leads against the model's training leads.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeatureDrift {
    /// Leads compared with training.
    pub leads: u64,
    /// Every attribute, worst first: flagged ones first, then by PSI. Empty when unavailable.
    pub attributes: Vec<AttributeDrift>,
    /// Why per-attribute drift could not be measured, e.g. a model trained before models
    /// stored their training distributions. Absent when it was measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<String>,
}

/// One attribute's drift.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttributeDrift {
    pub attribute: String,
    pub kind: Kind,
    /// Σ over the bins of (actual − expected) · ln(actual / expected).
    pub psi: f64,
    /// `stable` (< 0.1), `moderate` (0.1 – 0.25) or `major` (≥ 0.25), as for the scores.
    pub level: String,
    /// Share of the leads whose value is missing, and of the training leads.
    pub missing_share: f64,
    pub training_missing_share: f64,
    /// Numbers: the training range, and the share of the present values below and above it.
    /// Absent for other kinds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub training_range: Option<(f64, f64)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub below_range_share: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub above_range_share: Option<f64>,
    /// Categories: the share of the present labels never seen in training. Absent for other
    /// kinds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unseen_share: Option<f64>,
    /// PSI ≥ 0.25, or at least 10% of the numbers outside the training range or of the labels
    /// unseen.
    pub flagged: bool,
    /// What moved, in figures, e.g. `PSI 0.41: 62% of values above the training range (max
    /// 4.9)`; set when flagged or the PSI is at least moderate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The bins, in the training distribution's order, the missing bin last.
    pub bins: Vec<FeatureBin>,
}

/// One bin of an attribute's PSI.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeatureBin {
    /// e.g. `≤ 3`, `3 – 7`, `> 12`; a level; `(other)`, `(unseen)`, `(missing)`.
    pub label: String,
    pub expected_share: f64,
    pub actual_share: f64,
    pub psi: f64,
}

impl FeatureDrift {
    pub fn unavailable(leads: u64, reason: impl Into<String>) -> FeatureDrift {
        FeatureDrift {
            leads,
            attributes: Vec::new(),
            unavailable: Some(reason.into()),
        }
    }

    /// The attribute with the largest PSI.
    pub fn worst(&self) -> Option<&AttributeDrift> {
        self.attributes
            .iter()
            .max_by(|a, b| a.psi.total_cmp(&b.psi))
    }

    pub fn flagged(&self) -> impl Iterator<Item = &AttributeDrift> {
        self.attributes.iter().filter(|a| a.flagged)
    }
}

/// One attribute's counts.
#[derive(Debug, Clone, Default)]
struct Counts {
    /// Per bin of the training distribution.
    bins: Vec<u64>,
    missing: u64,
    unseen: u64,
    below: u64,
    above: u64,
}

/// Counts the leads' readings, attribute by attribute, into the training bins.
#[derive(Debug)]
pub struct DriftCounter<'e> {
    encoder: &'e FeatureEncoder,
    counts: Vec<Counts>,
    leads: u64,
}

impl<'e> DriftCounter<'e> {
    pub fn new(encoder: &'e FeatureEncoder) -> DriftCounter<'e> {
        let counts = encoder
            .attributes
            .iter()
            .map(|a| Counts {
                bins: vec![0; a.distribution.as_ref().map_or(0, |d| d.shares.len())],
                ..Counts::default()
            })
            .collect();
        DriftCounter {
            encoder,
            counts,
            leads: 0,
        }
    }

    /// Counts one lead, read by [`FeatureEncoder::encode_row`] (one reading per attribute).
    pub fn add(&mut self, readings: &[Reading]) {
        self.leads += 1;
        for ((attribute, counts), reading) in self
            .encoder
            .attributes
            .iter()
            .zip(&mut self.counts)
            .zip(readings)
        {
            let Some(distribution) = &attribute.distribution else {
                continue;
            };
            let bin = match (&attribute.encoding, reading) {
                (_, Reading::Missing) => {
                    counts.missing += 1;
                    continue;
                }
                (Encoding::Numeric { min, max, .. }, Reading::Number(x)) => {
                    counts.below += (x < min) as u64;
                    counts.above += (x > max) as u64;
                    distribution.edges.partition_point(|edge| edge < x)
                }
                (Encoding::Boolean { .. }, Reading::Flag(b)) => *b as usize,
                (Encoding::Categorical { .. }, Reading::Level(i)) => *i,
                (Encoding::Categorical { levels, .. }, Reading::Other { unseen, .. }) => {
                    if *unseen {
                        counts.unseen += 1;
                        continue;
                    }
                    levels.len()
                }
                // The encoder reads each kind one way; nothing else reaches here.
                _ => continue,
            };
            if let Some(count) = counts.bins.get_mut(bin) {
                *count += 1;
            }
        }
    }

    /// The drift of every attribute, worst first; unavailable when the model stores no
    /// training distributions.
    pub fn finish(self) -> FeatureDrift {
        if self
            .encoder
            .attributes
            .iter()
            .all(|a| a.distribution.is_none())
        {
            return FeatureDrift::unavailable(
                self.leads,
                "this model was trained before leadscore stored each attribute's training \
                 distribution; retrain it to measure per-attribute drift",
            );
        }
        let n = self.leads.max(1) as f64;
        let mut attributes: Vec<AttributeDrift> = self
            .encoder
            .attributes
            .iter()
            .zip(&self.counts)
            .filter_map(|(attribute, counts)| {
                let distribution = attribute.distribution.as_ref()?;
                Some(attribute_drift(attribute, distribution, counts, n))
            })
            .collect();
        attributes.sort_by(|a, b| {
            b.flagged
                .cmp(&a.flagged)
                .then(b.psi.total_cmp(&a.psi))
                .then(a.attribute.cmp(&b.attribute))
        });
        FeatureDrift {
            leads: self.leads,
            attributes,
            unavailable: None,
        }
    }
}

fn attribute_drift(
    attribute: &Attribute,
    distribution: &Distribution,
    counts: &Counts,
    n: f64,
) -> AttributeDrift {
    let labels = bin_labels(attribute, distribution);
    let mut bins: Vec<FeatureBin> = labels
        .into_iter()
        .zip(&distribution.shares)
        .zip(&counts.bins)
        .map(|((label, &expected), &count)| bin(label, expected, count as f64 / n))
        .collect();
    if let Encoding::Categorical { .. } = attribute.encoding {
        bins.push(bin(UNSEEN_BIN.into(), 0.0, counts.unseen as f64 / n));
    }
    let missing_share = counts.missing as f64 / n;
    bins.push(bin(
        MISSING_BIN.into(),
        distribution.missing_share,
        missing_share,
    ));
    let psi = bins.iter().map(|b| b.psi).sum::<f64>();
    let present = (n - counts.missing as f64).max(1.0);
    let (training_range, below, above, unseen) = match &attribute.encoding {
        Encoding::Numeric { min, max, .. } => (
            Some((*min, *max)),
            Some(counts.below as f64 / present),
            Some(counts.above as f64 / present),
            None,
        ),
        Encoding::Categorical { .. } => (None, None, None, Some(counts.unseen as f64 / present)),
        Encoding::Boolean { .. } => (None, None, None, None),
    };
    let mut drift = AttributeDrift {
        attribute: attribute.name.clone(),
        kind: attribute.kind(),
        psi,
        level: level(psi).to_string(),
        missing_share,
        training_missing_share: distribution.missing_share,
        training_range,
        below_range_share: below,
        above_range_share: above,
        unseen_share: unseen,
        flagged: psi >= PSI_MAJOR
            || below.unwrap_or(0.0) + above.unwrap_or(0.0) >= FLAG_SHARE
            || unseen.unwrap_or(0.0) >= FLAG_SHARE,
        reason: None,
        bins,
    };
    if drift.flagged || drift.level != "stable" {
        drift.reason = Some(reason(&drift));
    }
    drift
}

fn bin(label: String, expected_share: f64, actual_share: f64) -> FeatureBin {
    FeatureBin {
        label,
        expected_share,
        actual_share,
        psi: psi_term(expected_share, actual_share),
    }
}

/// The labels of the training distribution's bins.
fn bin_labels(attribute: &Attribute, distribution: &Distribution) -> Vec<String> {
    match &attribute.encoding {
        Encoding::Numeric { .. } => {
            let edges = &distribution.edges;
            (0..=edges.len())
                .map(
                    |b| match (b.checked_sub(1).map(|p| edges[p]), edges.get(b)) {
                        (None, Some(upper)) => format!("≤ {}", figure(*upper)),
                        (Some(lower), Some(upper)) => {
                            format!("{} – {}", figure(lower), figure(*upper))
                        }
                        (Some(lower), None) => format!("> {}", figure(lower)),
                        (None, None) => "all values".to_string(),
                    },
                )
                .collect()
        }
        Encoding::Boolean { .. } => vec!["no".into(), "yes".into()],
        Encoding::Categorical { levels, .. } => levels
            .iter()
            .cloned()
            .chain([OTHER_LEVEL.to_string()])
            .collect(),
    }
}

/// What moved, in figures: the PSI, then values outside the range, unseen labels and a change
/// in missing values; when none of those explains it, the bin that moved most.
fn reason(d: &AttributeDrift) -> String {
    // Small shares keep a decimal: 0.4% of leads is not 0%.
    let pct = |x: f64| {
        let digits = if x < 0.1 { 1 } else { 0 };
        format!("{:.digits$}%", x * 100.0)
    };
    let mut causes = Vec::new();
    if let (Some((min, max)), Some(below), Some(above)) =
        (d.training_range, d.below_range_share, d.above_range_share)
    {
        if above >= MENTION_SHARE {
            causes.push(format!(
                "{} of values above the training range (max {})",
                pct(above),
                figure(max)
            ));
        }
        if below >= MENTION_SHARE {
            causes.push(format!(
                "{} of values below the training range (min {})",
                pct(below),
                figure(min)
            ));
        }
    }
    if let Some(unseen) = d.unseen_share.filter(|&u| u >= MENTION_SHARE) {
        causes.push(format!("{} of labels never seen in training", pct(unseen)));
    }
    if (d.missing_share - d.training_missing_share).abs() >= MENTION_MISSING {
        causes.push(format!(
            "{} missing (training {})",
            pct(d.missing_share),
            pct(d.training_missing_share)
        ));
    }
    if causes.is_empty()
        && let Some(b) = d.bins.iter().max_by(|a, b| a.psi.total_cmp(&b.psi))
    {
        // A category's label is quoted; a number's bin and the special bins read as they are.
        let bin = match d.kind {
            Kind::Numeric => format!("values {}", b.label),
            _ if b.label.starts_with('(') => b.label.clone(),
            _ => format!("{:?}", b.label),
        };
        causes.push(format!(
            "{bin}: {} of leads (training {})",
            pct(b.actual_share),
            pct(b.expected_share)
        ));
    }
    format!("PSI {:.2}: {}", d.psi, causes.join("; "))
}

/// A number as a reason or a bin label shows it: four significant digits (a training maximum
/// of 24.982488747813548 reads 24.98), whole numbers whole.
pub fn figure(x: f64) -> String {
    if x.fract() == 0.0 || !x.is_finite() {
        return format_number(x);
    }
    let magnitude = x.abs().log10().floor() as i32;
    let decimals = (3 - magnitude).clamp(0, 12) as usize;
    let text = format!("{x:.decimals$}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".into()
    } else {
        text.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::TextColumn;
    use crate::encoder::{EncoderOptions, RawValue};
    use crate::schema::MissingTokens;

    fn column(cells: &[String]) -> TextColumn {
        let mut c = TextColumn::default();
        for cell in cells {
            c.push(cell);
        }
        c
    }

    /// An encoder fitted on `(name, kind, cells)` with every lead won (outcomes play no part).
    fn fit(columns: &[(&str, Kind, Vec<String>)]) -> FeatureEncoder {
        let text: Vec<TextColumn> = columns.iter().map(|c| column(&c.2)).collect();
        let rows: Vec<usize> = (0..columns[0].2.len()).collect();
        let won = vec![true; rows.len()];
        let options = EncoderOptions {
            min_level_count: 1,
            max_levels: 100,
            shapes: false,
        };
        FeatureEncoder::fit(
            columns.iter().zip(&text).map(|(c, t)| (c.0, c.1, t)),
            &rows,
            &won,
            &MissingTokens::default(),
            &options,
        )
        .unwrap()
    }

    fn count(encoder: &FeatureEncoder, leads: &[Vec<&str>]) -> FeatureDrift {
        let mut counter = DriftCounter::new(encoder);
        let mut features = vec![0.0; encoder.width()];
        let mut readings = Vec::new();
        for lead in leads {
            encoder
                .encode_row(|i| RawValue::Text(lead[i]), &mut features, &mut readings)
                .unwrap();
            counter.add(&readings);
        }
        counter.finish()
    }

    fn strings(cells: &[&str]) -> Vec<String> {
        cells.iter().map(|c| c.to_string()).collect()
    }

    #[test]
    fn numeric_psi_matches_a_hand_computation() {
        // Training 1..=10: deciles at 1, 2, …, 9, so each of the ten bins holds one tenth.
        let training: Vec<String> = (1..=10).map(|v| v.to_string()).collect();
        let encoder = fit(&[("visits", Kind::Numeric, training)]);
        let d = encoder.attributes[0].distribution.as_ref().unwrap();
        assert_eq!(d.edges, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]);
        assert!(d.shares.iter().all(|&s| (s - 0.1).abs() < 1e-12));
        assert_eq!(d.missing_share, 0.0);
        // Four leads: 1 (bin ≤ 1), 10 (bin > 9), 12 and 20 (above the range, bin > 9), and
        // one missing value.
        let drift = count(
            &encoder,
            &[vec!["1"], vec!["10"], vec!["12"], vec!["20"], vec![""]],
        );
        let a = &drift.attributes[0];
        // By hand: bin ≤ 1: 0.2 vs 0.1; bin > 9: 0.6 vs 0.1; eight bins 0 (floored 1e-4) vs
        // 0.1; missing 0.2 vs 0 (floored 1e-4).
        let expected = (0.2 - 0.1) * (0.2f64 / 0.1).ln()
            + (0.6 - 0.1) * (0.6f64 / 0.1).ln()
            + 8.0 * (1e-4 - 0.1) * (1e-4f64 / 0.1).ln()
            + (0.2 - 1e-4) * (0.2f64 / 1e-4).ln();
        assert!((a.psi - expected).abs() < 1e-9, "{} vs {expected}", a.psi);
        assert_eq!(a.level, "major");
        // 2 of the 4 present values (12 and 20) lie above [1, 10]; none below.
        assert_eq!(a.above_range_share, Some(0.5));
        assert_eq!(a.below_range_share, Some(0.0));
        assert_eq!(a.training_range, Some((1.0, 10.0)));
        assert_eq!(a.missing_share, 0.2);
        assert!(a.flagged);
        let reason = a.reason.as_deref().unwrap();
        assert!(
            reason.starts_with(&format!(
                "PSI {:.2}: 50% of values above the training range (max 10)",
                a.psi
            )),
            "{reason}"
        );
        assert!(reason.contains("20% missing (training 0.0%)"), "{reason}");
        assert_eq!(a.bins[0].label, "≤ 1");
        assert_eq!(a.bins[1].label, "1 – 2");
        assert_eq!(a.bins[9].label, "> 9");
        assert_eq!(a.bins[10].label, MISSING_BIN);
    }

    #[test]
    fn categorical_psi_and_unseen_share_by_hand() {
        // Training: web 4, referral 2, event 2 of 8 leads; no rare or missing labels.
        let training = strings(&[
            "web", "web", "web", "web", "referral", "referral", "event", "event",
        ]);
        let encoder = fit(&[("source", Kind::Categorical, training)]);
        let drift = count(
            &encoder,
            &[
                vec!["Web"],
                vec!["web"],
                vec!["podcast"],
                vec!["tiktok"],
                vec![""],
            ],
        );
        let a = &drift.attributes[0];
        // 2 of the 4 present labels were never seen in training (podcast, tiktok).
        assert_eq!(a.unseen_share, Some(0.5));
        assert_eq!(a.below_range_share, None);
        let share = |label: &str| {
            let b = a.bins.iter().find(|b| b.label == label).unwrap();
            (b.expected_share, b.actual_share)
        };
        assert_eq!(share("web"), (0.5, 0.4));
        assert_eq!(share("referral"), (0.25, 0.0));
        assert_eq!(share(UNSEEN_BIN), (0.0, 0.4));
        assert_eq!(share(MISSING_BIN), (0.0, 0.2));
        let t = |e: f64, a: f64| (a.max(1e-4) - e.max(1e-4)) * (a.max(1e-4) / e.max(1e-4)).ln();
        // web, referral, event, (other) (empty both sides), unseen, missing.
        let expected = t(0.5, 0.4) + 2.0 * t(0.25, 0.0) + t(0.0, 0.0) + t(0.0, 0.4) + t(0.0, 0.2);
        assert!((a.psi - expected).abs() < 1e-9, "{} vs {expected}", a.psi);
        assert!(a.flagged);
        assert!(
            a.reason
                .as_deref()
                .unwrap()
                .contains("50% of labels never seen in training"),
            "{:?}",
            a.reason
        );
    }

    #[test]
    fn a_drifted_attribute_is_flagged_and_a_steady_one_is_not() {
        // Training: x uniform on 0..1000, y uniform on 0..1000. Later leads: x the same, y
        // shifted up by half its range (half the values above the training maximum).
        let training_x: Vec<String> = (0..1000).map(|i| ((i * 7919) % 1000).to_string()).collect();
        let training_y: Vec<String> = (0..1000).map(|i| i.to_string()).collect();
        let encoder = fit(&[
            ("steady", Kind::Numeric, training_x),
            ("drifted", Kind::Numeric, training_y),
        ]);
        let later: Vec<(String, String)> = (0..500)
            .map(|i| {
                (
                    ((i * 7919 + 3) % 1000).to_string(),
                    (500 + 2 * i).to_string(),
                )
            })
            .collect();
        let leads: Vec<Vec<&str>> = later
            .iter()
            .map(|(x, y)| vec![x.as_str(), y.as_str()])
            .collect();
        let drift = count(&encoder, &leads);
        assert_eq!(drift.attributes[0].attribute, "drifted", "worst first");
        let drifted = &drift.attributes[0];
        let steady = &drift.attributes[1];
        assert!(drifted.flagged && drifted.psi > 1.0, "{drifted:?}");
        // 500..=1498 step 2: 250 of the 500 above the maximum 999.
        assert_eq!(drifted.above_range_share, Some(0.5));
        assert!(!steady.flagged && steady.psi < 0.1, "{steady:?}");
        assert_eq!(steady.reason, None);
        assert_eq!(steady.level, "stable");
    }

    #[test]
    fn figures_have_four_significant_digits() {
        assert_eq!(figure(24.982488747813548), "24.98");
        assert_eq!(figure(10.0), "10");
        assert_eq!(figure(-1.8), "-1.8");
        assert_eq!(figure(0.001234567), "0.001235");
        assert_eq!(figure(5191.25), "5191");
        assert_eq!(figure(-0.00001), "-0.00001");
    }

    #[test]
    fn without_a_range_or_label_cause_the_reason_names_the_bin_that_moved_most() {
        // Training: web 50%, event 50%; later: web 80%, event 20%, nothing unseen or missing.
        let training = strings(&["web", "event"].repeat(10));
        let encoder = fit(&[("source", Kind::Categorical, training)]);
        let later: Vec<Vec<&str>> = (0..10)
            .map(|i| vec![if i < 8 { "web" } else { "event" }])
            .collect();
        let a = &count(&encoder, &later).attributes[0];
        // (0.8 − 0.5)·ln(0.8/0.5) + (0.2 − 0.5)·ln(0.2/0.5) = 0.416.
        assert_eq!(a.level, "major");
        let expected = 0.3 * (0.8f64 / 0.5).ln() - 0.3 * (0.2f64 / 0.5).ln();
        assert!((a.psi - expected).abs() < 1e-9);
        assert_eq!(
            a.reason.as_deref(),
            Some("PSI 0.42: \"event\": 20% of leads (training 50%)")
        );
    }

    #[test]
    fn a_model_without_distributions_says_drift_is_unavailable() {
        let mut encoder = fit(&[("visits", Kind::Numeric, strings(&["1", "2", "3"]))]);
        encoder.attributes[0].distribution = None;
        let drift = count(&encoder, &[vec!["2"]]);
        assert!(drift.attributes.is_empty());
        assert!(drift.unavailable.unwrap().contains("retrain"));
    }
}
