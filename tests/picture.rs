//! `models show --html`: the picture of a model, and its place in the evaluation report.

use crate::common::{leadscore, stderr, write};
use leadscore::encoder::Encoding;
use leadscore::registry::Registry;
use std::path::Path;

/// 400 leads: visits drive closing, the source a little, the flag not at all; some visits are
/// missing.
fn leads() -> String {
    let mut csv = String::from("visits,source,opted_in,converted\n");
    for i in 0..400u32 {
        let visits = i % 20;
        let source = ["web", "event", "ads"][(i % 3) as usize];
        let won = visits * 3 + (i * 7) % 23 + if source == "event" { 4 } else { 0 } > 40;
        let cell = if i % 37 == 0 {
            String::new()
        } else {
            visits.to_string()
        };
        csv.push_str(&format!(
            "{cell},{source},{},{}\n",
            if i % 2 == 0 { "yes" } else { "no" },
            won as u8
        ));
    }
    csv
}

fn train(dir: &Path) -> (String, String) {
    let data = write(dir, "leads.csv", &leads());
    let models = dir.join("models");
    let (data, models) = (data.to_str().unwrap(), models.to_str().unwrap());
    let out = leadscore(&[
        "train",
        "--data",
        data,
        "--target",
        "converted",
        "--models",
        models,
        "--quiet",
        // The effects below are checked against the linear formula; shaped effects are
        // checked in `shapes::the_model_picture_draws_a_shaped_effect_as_a_curve`.
        "--shapes",
        "off",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    (data.to_string(), models.to_string())
}

fn show_html(models: &str, page: &Path) -> std::process::Output {
    let page = page.to_str().unwrap();
    leadscore(&["models", "show", "--models", models, "--html", page])
}

/// The `data-value` and `data-effect` of the curve's end points within one attribute's section.
fn curve_ends(section: &str) -> Vec<(f64, f64)> {
    section
        .split("class=\"dot end\"")
        .skip(1)
        .map(|s| {
            let attr = |name: &str| -> f64 {
                let start = s.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
                s[start..start + s[start..].find('"').unwrap()]
                    .parse()
                    .unwrap()
            };
            (attr("data-value"), attr("data-effect"))
        })
        .collect()
}

/// Each attribute's section (name, text), in page order.
fn sections(html: &str) -> Vec<(String, String)> {
    html.split("<section class=\"attribute\"><h3>")
        .skip(1)
        .map(|s| {
            let name = s[..s.find(" <span").unwrap()].to_string();
            (name, s[..s.find("</section>").unwrap()].to_string())
        })
        .collect()
}

#[test]
fn models_show_html_draws_each_attribute_by_influence_with_exact_effects() {
    let dir = tempfile::tempdir().unwrap();
    let (_, models) = train(dir.path());
    let page = dir.path().join("model.html");
    let out = show_html(&models, &page);
    assert!(out.status.success(), "{}", stderr(&out));
    // Standard output stays the artifact.
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(printed["coefficients"].is_array());
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(!html.contains("http://") && !html.contains("https://") && !html.contains("<script"));
    let artifact = Registry::new(Path::new(&models))
        .load_or_current(None)
        .unwrap()
        .artifact;
    assert!(html.contains(&artifact.probability_meaning()));

    // One section per attribute, ordered by the influence each states, visits (which decides
    // closing) first.
    let found = sections(&html);
    let mut names: Vec<&str> = found.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.len(), 3, "{names:?}");
    assert_eq!(names[0], "visits");
    let influence: Vec<f64> = found
        .iter()
        .map(|(_, s)| {
            let at = s.find("influence ").unwrap() + "influence ".len();
            s[at..at + s[at..].find(')').unwrap()].parse().unwrap()
        })
        .collect();
    assert!(influence.windows(2).all(|w| w[0] >= w[1]), "{influence:?}");
    names.sort();
    assert_eq!(names, ["opted_in", "source", "visits"]);

    // The drawn effect at the training min and max: weight × (x − mean) / scale, against the
    // average lead (the encoded column's training mean).
    let visits = artifact
        .encoder
        .attributes
        .iter()
        .find(|a| a.name == "visits")
        .unwrap();
    let Encoding::Numeric {
        mean,
        scale,
        min,
        max,
        ..
    } = &visits.encoding
    else {
        panic!("visits is numeric")
    };
    assert_eq!((*min, *max), (0.0, 19.0));
    // Some visits are missing: the attribute owns a missing-indicator column too, 0 for a
    // number, which moves it against the average lead by −weight × (share missing).
    let coefficient = &artifact.coefficients[visits.offset];
    let indicator = &artifact.coefficients[visits.offset + 1];
    assert_eq!(indicator.feature, "visits (missing)");
    let expected = |x: f64| {
        coefficient.weight * ((x - mean) / scale - coefficient.mean)
            + indicator.weight * (0.0 - indicator.mean)
    };
    let ends = curve_ends(&found[0].1);
    assert_eq!(ends.len(), 2);
    for ((x, drawn), want_x) in ends.into_iter().zip([*min, *max]) {
        assert_eq!(x, want_x);
        assert!(
            (drawn - expected(x)).abs() < 1e-9,
            "{x}: {drawn} vs {}",
            expected(x)
        );
    }
    // The closure rate per bin is drawn beside the curve; categories and yes/no get a bar per
    // value, the unseen labels and missing included.
    assert!(found[0].1.contains("Training closure rate per bin"));
    assert!(!found[0].1.contains("retrain it"));
    let source = &found.iter().find(|(n, _)| n == "source").unwrap().1;
    for level in ["web", "event", "ads", "(other)", "(missing)"] {
        assert!(
            source.contains(&format!("<td>{level}")),
            "{level}: {source}"
        );
    }
    let opted = &found.iter().find(|(n, _)| n == "opted_in").unwrap().1;
    assert!(opted.contains("<td>no</td>") && opted.contains("<td>yes</td>"));

    // The evaluation report includes the same picture.
    let report = dir.path().join("report.html");
    let out = leadscore(&[
        "evaluate",
        "--data",
        dir.path().join("leads.csv").to_str().unwrap(),
        "--models",
        &models,
        "--html",
        report.to_str().unwrap(),
    ]);
    assert!(out.status.code() == Some(0), "{}", stderr(&out));
    let report = std::fs::read_to_string(&report).unwrap();
    assert!(report.contains("<h2>The model</h2>"));
    let in_report: Vec<String> = sections(&report).into_iter().map(|(n, _)| n).collect();
    let on_page: Vec<String> = found.into_iter().map(|(n, _)| n).collect();
    assert_eq!(in_report, on_page);
}

#[test]
fn a_model_without_rates_per_bin_still_draws_its_curves() {
    let dir = tempfile::tempdir().unwrap();
    let (_, models) = train(dir.path());
    let model = Registry::new(Path::new(&models))
        .load_or_current(None)
        .unwrap();
    let mut json = serde_json::to_value(&model.artifact).unwrap();
    for a in json["encoder"]["attributes"].as_array_mut().unwrap() {
        if let Some(d) = a["distribution"].as_object_mut() {
            d.remove("rates");
        }
    }
    let old: leadscore::model::ModelArtifact = serde_json::from_value(json).unwrap();
    let html = leadscore::evaluate::report_html::render_model(&old);
    let (_, visits) = sections(&html)
        .into_iter()
        .find(|(n, _)| n == "visits")
        .unwrap();
    assert_eq!(curve_ends(&visits).len(), 2);
    assert!(visits.contains("retrain it to see them"));
}

#[test]
fn an_unwritable_picture_path_is_named_and_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let (_, models) = train(dir.path());
    let page = dir.path().join("no-such-dir").join("model.html");
    let out = show_html(&models, &page);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(page.to_str().unwrap()),
        "{}",
        stderr(&out)
    );
    assert!(!page.exists());
    assert!(!dir.path().join("no-such-dir").exists());
}
