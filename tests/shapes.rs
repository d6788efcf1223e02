//! Shapes for numbers (`train --shapes auto`): on `leadscore sample --curved` leads, whose
//! `days_since_last_touch` acts through a known curve, training gives that attribute a shape
//! that follows the curve within a band at its training quantiles, and gives none to the
//! attributes whose true effect is a straight line; on linear leads it keeps none, and the
//! model is then the linear one. Explanations stay exact, aging models take a shaped
//! attribute's every column, and the shipped and version-1 artifacts load as before.

use leadscore::aging::AgeTerms;
use leadscore::encoder::{Encoding, RawValue};
use leadscore::evaluate::report_html::effect;
use leadscore::model::{Model, ModelArtifact};
use leadscore::sample::{SampleOptions, curved_touch};
use leadscore::train::{HorizonConfig, TrainConfig, train};
use std::path::Path;

const TOUCH: &str = "days_since_last_touch";

fn sample(dir: &Path, rows: usize, curved: bool, closed_dates: bool) -> std::path::PathBuf {
    let path = dir.join(format!("leads-{curved}-{closed_dates}.csv"));
    leadscore::sample::write(
        &path,
        &SampleOptions {
            rows,
            seed: 11,
            closed_dates,
            truth: None,
            curved,
        },
    )
    .unwrap();
    path
}

fn config(data: &Path, shapes: bool) -> TrainConfig {
    let mut config = TrainConfig::new(data, "converted");
    config.id = Some("lead_id".into());
    config.date = Some("created_at".into());
    config.encoder.shapes = shapes;
    config.trained_at = Some("2030-01-01T00:00:00Z".parse().unwrap());
    config
}

fn attribute(model: &Model, name: &str) -> usize {
    model
        .encoder()
        .attributes
        .iter()
        .position(|a| a.name == name)
        .unwrap()
}

/// The log-odds of a lead with only `name` given (every other attribute missing).
fn logit_with(model: &Model, name: &str, value: f64) -> f64 {
    let i = attribute(model, name);
    let p = model
        .score(
            |j| {
                if j == i {
                    RawValue::Number(value)
                } else {
                    RawValue::Missing
                }
            },
            0,
        )
        .unwrap()
        .probability;
    (p / (1.0 - p)).ln()
}

#[test]
fn a_curved_effect_gets_a_shape_that_follows_it_and_straight_ones_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let data = sample(dir.path(), 60_000, true, false);
    let trained = train(&config(&data, true), &mut |_| {}).unwrap();
    let a = &trained.artifact;
    let choice = a.shapes.as_ref().expect("shapes were tried");
    // web_visits and emails_opened act in a straight line, employees not at all.
    assert_eq!(choice.shaped, [TOUCH], "{:?}", choice.selection);
    assert_eq!(choice.selection[0].0, "none");
    assert_eq!(a.format_version, 2);
    let model = Model::new(a.clone()).unwrap();
    let touch = &model.encoder().attributes[attribute(&model, TOUCH)];
    let knots = touch.shape().unwrap().knots.clone();
    // The knots are the training quantiles (5% … 95%): there the fitted curve, taken against
    // its value at the median, is the true one within 0.2 log-odds (the true curve rises by
    // 0.54 from the 5% to the median knot and falls by 1.58 to the 95% one; the L2 penalty
    // flattens the sharp rise at the low end a little), and it rises then falls, as no line
    // can.
    let middle = knots[knots.len() / 2];
    let gaps = |model: &Model| -> Vec<(f64, f64, f64)> {
        knots
            .iter()
            .map(|&q| {
                let fitted = logit_with(model, TOUCH, q) - logit_with(model, TOUCH, middle);
                (q, fitted, curved_touch(q) - curved_touch(middle))
            })
            .collect()
    };
    let shaped = gaps(&model);
    for &(q, fitted, truth) in &shaped {
        assert!(
            (fitted - truth).abs() < 0.2,
            "at {q} days: fitted {fitted:.3}, true {truth:.3}: {shaped:?}"
        );
    }
    assert!(shaped[0].1 < -0.2 && shaped[4].1 < -1.0, "{shaped:?}");
    // And it beats the linear model on the holdout (never used to choose).
    let linear = train(&config(&data, false), &mut |_| {}).unwrap().artifact;
    let (m, l) = (&a.holdout.metrics, &linear.holdout.metrics);
    assert!(m.log_loss < l.log_loss, "{} vs {}", m.log_loss, l.log_loss);
    assert!(m.roc_auc.unwrap() > l.roc_auc.unwrap());
    // The line misses the curve by more than twice as much.
    let worst = |g: &[(f64, f64, f64)]| g.iter().map(|p| (p.1 - p.2).abs()).fold(0.0, f64::max);
    let line = gaps(&Model::new(linear.clone()).unwrap());
    assert!(
        worst(&line) > 2.0 * worst(&shaped),
        "{line:?} vs {shaped:?}"
    );
    assert_eq!(linear.format_version, 1);
    assert!(linear.shapes.is_none());
    // Drift is measured on raw values: the training distributions (and ranges, limits, the
    // quintiles explanations quote) are the linear model's.
    for (shaped, plain) in a.encoder.attributes.iter().zip(&linear.encoder.attributes) {
        assert_eq!(shaped.distribution, plain.distribution);
        let (Encoding::Numeric { shape: Some(_), .. }, Encoding::Numeric { .. }) =
            (&shaped.encoding, &plain.encoding)
        else {
            assert_eq!(shaped.encoding, plain.encoding);
            continue;
        };
        let mut unshaped = shaped.encoding.clone();
        if let Encoding::Numeric { shape, .. } = &mut unshaped {
            *shape = None;
        }
        assert_eq!(unshaped, plain.encoding);
    }
}

#[test]
fn linear_leads_keep_no_shape_and_the_model_is_the_linear_one() {
    let dir = tempfile::tempdir().unwrap();
    let data = sample(dir.path(), 30_000, false, false);
    let mut auto = train(&config(&data, true), &mut |_| {}).unwrap().artifact;
    let off = train(&config(&data, false), &mut |_| {}).unwrap().artifact;
    let choice = auto.shapes.take().expect("shapes were tried");
    assert!(choice.shaped.is_empty(), "{:?}", choice.selection);
    // Each numeric attribute that can bend was tried alone.
    assert_eq!(choice.selection.len(), 1 + 4, "{:?}", choice.selection);
    assert_eq!(auto, off);
    assert_eq!(off.format_version, 1);
}

#[test]
fn explanations_of_a_shaped_model_add_up_to_its_log_odds() {
    let dir = tempfile::tempdir().unwrap();
    let data = sample(dir.path(), 30_000, true, false);
    let artifact = train(&config(&data, true), &mut |_| {}).unwrap().artifact;
    let model = Model::new(artifact.clone()).unwrap();
    let touch = attribute(&model, TOUCH);
    let spec = &model.encoder().attributes[touch];
    assert!(spec.shape().is_some());
    let values = [
        ("source", "Web"),
        ("industry", "Software"),
        ("company_size", "Small"),
        ("web_visits", "7"),
        ("emails_opened", "2"),
        ("demo_requested", "yes"),
    ];
    for days in [0.0, 4.0, 30.0, 200.0, 1e6] {
        let text = days.to_string();
        let value = |j: usize| {
            let name = &model.encoder().attributes[j].name;
            if j == touch {
                return RawValue::Text(&text);
            }
            values
                .iter()
                .find(|(n, _)| n == name)
                .map_or(RawValue::Missing, |(_, v)| RawValue::Text(v))
        };
        let scored = model.score(value, 100).unwrap();
        let logit = (scored.probability / (1.0 - scored.probability)).ln();
        let total: f64 = scored.factors.iter().map(|f| f.log_odds).sum();
        assert!((model.average_logit() + total - logit).abs() < 1e-9);
        // The factor is the attribute's whole contribution: linear and spline columns alike,
        // as the model picture draws it; its closure rate is its training quintile's.
        let factor = scored.factors.iter().find(|f| f.field == TOUCH).unwrap();
        let whole = effect(&artifact, spec, RawValue::Number(days)).unwrap();
        assert!((factor.log_odds - whole).abs() < 1e-12);
        let Encoding::Numeric {
            quintile_edges,
            quintile_rates,
            ..
        } = &spec.encoding
        else {
            unreachable!()
        };
        let bin = quintile_edges.iter().filter(|&&e| days > e).count();
        assert_eq!(factor.support, quintile_rates[bin].leads);
        // Out of range: warned about as before, scored at the winsorising limit.
        if days == 1e6 {
            assert!(
                scored
                    .warnings
                    .iter()
                    .any(|w| w.starts_with(TOUCH) && w.contains("outside the training range")),
                "{:?}",
                scored.warnings
            );
        }
    }
}

/// The model picture draws a shaped attribute's effect as the curve the encoder makes (up, then
/// down), with its knots among the points, and names the knots.
#[test]
fn the_model_picture_draws_a_shaped_effect_as_a_curve() {
    let dir = tempfile::tempdir().unwrap();
    let data = sample(dir.path(), 30_000, true, false);
    let artifact = train(&config(&data, true), &mut |_| {}).unwrap().artifact;
    let page = leadscore::evaluate::report_html::render_model(&artifact);
    let start = page.find(&format!("<h3>{TOUCH} ")).unwrap();
    let section = &page[start..start + page[start..].find("</section>").unwrap()];
    assert!(section.contains("Shaped: a restricted cubic spline with knots at"));
    let points = section
        .split("<polyline class=\"real\" points=\"")
        .nth(1)
        .unwrap();
    let ys: Vec<f64> = points[..points.find('"').unwrap()]
        .split(' ')
        .map(|p| p.split(',').nth(1).unwrap().parse().unwrap())
        .collect();
    // SVG y grows downwards: the effect rises (y falls) from the first point, then falls.
    let top = ys
        .iter()
        .enumerate()
        .min_by(|a, b| a.1.total_cmp(b.1))
        .unwrap()
        .0;
    assert!(top > 0 && top < ys.len() - 1, "{ys:?}");
    assert!(
        ys[0] > ys[top] + 5.0 && ys[ys.len() - 1] > ys[top] + 5.0,
        "{ys:?}"
    );
    let shape = artifact.encoder.attributes.iter().find(|a| a.name == TOUCH);
    let knots = shape.unwrap().shape().unwrap().knots.len();
    assert!(ys.len() >= 64 && ys.len() <= 64 + knots);
}

#[test]
fn an_aging_model_with_a_shaped_attribute_ages_all_its_columns() {
    let dir = tempfile::tempdir().unwrap();
    let data = sample(dir.path(), 20_000, true, true);
    let mut config = config(&data, true);
    let mut horizon = HorizonConfig::new(90, "closed_at");
    horizon.period_days = Some(30);
    config.horizon = Some(horizon);
    let artifact = train(&config, &mut |_| {}).unwrap().artifact;
    assert!(artifact.aging.is_some());
    let choice = artifact.shapes.as_ref().unwrap();
    assert_eq!(choice.shaped, [TOUCH], "{:?}", choice.selection);
    let model = Model::new(artifact.clone()).unwrap();
    // An age interaction with the shaped attribute multiplies every one of its columns.
    let spec = &model.encoder().attributes[attribute(&model, TOUCH)];
    let terms = AgeTerms::new(model.encoder(), 90, 270, &[TOUCH.to_string()]).unwrap();
    assert_eq!(terms.width(), 2 + spec.width());
    let names = terms.column_names(&model.encoder().column_names());
    assert!(
        names.contains(&format!("age × {TOUCH} (spline 1)")),
        "{names:?}"
    );
    // A lead touched 6 days ago, nothing else known.
    let touch = attribute(&model, TOUCH);
    let only_touch = |j: usize| {
        if j == touch {
            RawValue::Number(6.0)
        } else {
            RawValue::Missing
        }
    };
    let mut row = vec![0.0; model.encoder().width()];
    let mut readings = Vec::new();
    model
        .encoder()
        .encode_row(only_touch, &mut row, &mut readings)
        .unwrap();
    let mut tail = vec![0.0; terms.width()];
    terms.extend(&row, 45.0, &mut tail);
    let own = &row[spec.offset..spec.offset + spec.width()];
    for (k, x) in own.iter().enumerate() {
        assert!((tail[2 + k] - x * 0.5).abs() < 1e-15);
    }
    // The model scores a lead at an age, and the age moves it.
    let score = |age: f64| {
        model
            .score_at(only_touch, Some(age), 3)
            .unwrap()
            .probability
    };
    assert_ne!(score(0.0), score(120.0));
    // The artifact round-trips through its JSON (format version 2).
    let json = serde_json::to_string(&artifact).unwrap();
    let back: ModelArtifact = serde_json::from_str(&json).unwrap();
    assert_eq!(back, artifact);
}

#[test]
fn artifacts_of_version_1_load_and_score_as_before_and_a_shape_needs_version_2() {
    let dir = tempfile::tempdir().unwrap();
    // The shipped example model: version 1, written back byte for byte, and scored by the
    // arithmetic of version 1 (winsorise, standardise, weigh), written out here.
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    let current = std::fs::read_to_string(shipped.join("CURRENT")).unwrap();
    let path = shipped.join(current.trim()).join("model.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let model = Model::from_json(&text).unwrap();
    assert_eq!(model.artifact.format_version, 1);
    assert!(!model.encoder().has_shapes());
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        serde_json::to_value(&model.artifact).unwrap(),
        value,
        "the shipped model reads and writes back unchanged"
    );
    let numbers: Vec<(usize, f64)> = model
        .encoder()
        .attributes
        .iter()
        .enumerate()
        .filter(|(_, a)| matches!(a.encoding, Encoding::Numeric { .. }))
        .map(|(i, _)| (i, 3.0 + i as f64))
        .collect();
    let scored = model
        .score(
            |j| match numbers.iter().find(|(i, _)| *i == j) {
                Some(&(_, v)) => RawValue::Number(v),
                None => RawValue::Missing,
            },
            0,
        )
        .unwrap();
    let mut logit = model.artifact.intercept;
    for (a, attribute) in model.encoder().attributes.iter().enumerate() {
        let weights = &model.artifact.coefficients[attribute.offset..];
        match &attribute.encoding {
            Encoding::Numeric {
                mean,
                scale,
                min,
                max,
                lower_limit,
                upper_limit,
                missing_indicator,
                ..
            } => match numbers.iter().find(|(i, _)| *i == a) {
                Some(&(_, v)) => {
                    let v = v.clamp(lower_limit.unwrap_or(*min), upper_limit.unwrap_or(*max));
                    logit += weights[0].weight * ((v - mean) / scale);
                }
                None if *missing_indicator => logit += weights[1].weight,
                None => {}
            },
            Encoding::Boolean {
                share_true,
                missing_indicator,
                ..
            } => {
                logit += weights[0].weight * share_true;
                if *missing_indicator {
                    logit += weights[1].weight;
                }
            }
            Encoding::Categorical { .. } => {
                if let Some(slot) = attribute.missing_slot() {
                    logit += weights[slot].weight;
                }
            }
        }
    }
    let expected = leadscore::model::sigmoid(logit);
    assert!((scored.probability - expected).abs() < 1e-12);

    // A model trained with a shape is version 2; the same file claiming version 1 is refused,
    // as is a damaged shape; without its shape and as version 1 it loads.
    let data = sample(dir.path(), 20_000, true, false);
    let shaped = train(&config(&data, true), &mut |_| {}).unwrap().artifact;
    assert_eq!(shaped.format_version, 2);
    let json = serde_json::to_string(&shaped).unwrap();
    assert!(Model::from_json(&json).is_ok());
    let as_v1 = json.replacen("\"format_version\":2", "\"format_version\":1", 1);
    let err = Model::from_json(&as_v1).unwrap_err();
    assert!(err.contains("format version 1 has no shapes"), "{err}");
    let touch = shaped
        .encoder
        .attributes
        .iter()
        .position(|a| a.name == TOUCH)
        .unwrap();
    // Each damage is refused at load, naming the attribute and what is wrong, before any lead
    // is scored (`Shape::term` indexes the knots and divides by their gaps).
    let knots = shaped.encoder.attributes[touch]
        .shape()
        .unwrap()
        .knots
        .clone();
    // Same number of knots, so the columns still match the coefficients.
    let with_knot = |i: usize, t: f64| {
        let mut k = knots.clone();
        k[i] = t;
        k
    };
    let spaced = |step: f64| -> Vec<f64> { (0..knots.len()).map(|i| i as f64 * step).collect() };
    let w = knots.len() - 2;
    let wrong_length = format!(
        "{} knots need {w} centers and {w} scales, found {} and {w}",
        knots.len(),
        w - 1
    );
    let mut zero_scale = vec![1.0; w];
    zero_scale[0] = 0.0;
    let damages: [(&str, serde_json::Value, &str); 6] = [
        (
            "knots",
            serde_json::json!(with_knot(1, 1e9)),
            "strictly ascending",
        ),
        (
            "knots",
            serde_json::json!(with_knot(1, knots[0])),
            "strictly ascending",
        ),
        (
            "centers",
            serde_json::json!(vec![0.0; w - 1]),
            &wrong_length,
        ),
        (
            "scales",
            serde_json::json!(zero_scale),
            "scale is not a positive number",
        ),
        ("knots", serde_json::json!(spaced(1e200)), "too far apart"),
        ("knots", serde_json::json!(spaced(1e-200)), "too close"),
    ];
    for (field, value, reason) in damages {
        let mut damaged: serde_json::Value = serde_json::from_str(&json).unwrap();
        damaged["encoder"]["attributes"][touch]["encoding"]["shape"][field] = value;
        let err = Model::from_json(&damaged.to_string()).unwrap_err();
        assert!(
            err.contains(&format!("attribute \"{TOUCH}\" has an invalid shape: "))
                && err.contains(reason),
            "{field}: {err}"
        );
    }
    // Two knots and no spline column: the widths still match the coefficients, but `term`
    // would index a third knot.
    let mut damaged: serde_json::Value = serde_json::from_str(&json).unwrap();
    let shape = &mut damaged["encoder"]["attributes"][touch]["encoding"]["shape"];
    *shape = serde_json::json!({"knots": [knots[0], knots[1]], "centers": [], "scales": []});
    let coefficients = damaged["coefficients"].as_array_mut().unwrap();
    let first =
        shaped.encoder.attributes[touch].offset + shaped.encoder.attributes[touch].width() - w;
    coefficients.drain(first..first + w);
    for a in damaged["encoder"]["attributes"].as_array_mut().unwrap()[touch + 1..].iter_mut() {
        a["offset"] = serde_json::json!(a["offset"].as_u64().unwrap() - w as u64);
    }
    let err = Model::from_json(&damaged.to_string()).unwrap_err();
    assert!(
        err.contains("invalid shape: 2 knots, at least 3 needed"),
        "{err}"
    );
    // Well formed, yet its columns overflow at the winsorising limit: refused too, since a
    // NaN probability cannot be placed among the training percentiles.
    let mut damaged: serde_json::Value = serde_json::from_str(&json).unwrap();
    let encoding = &mut damaged["encoder"]["attributes"][touch]["encoding"];
    encoding["shape"]["scales"] = serde_json::json!(vec![1e-320; w]);
    let err = Model::from_json(&damaged.to_string()).unwrap_err();
    assert!(err.contains("columns are not finite"), "{err}");
}
