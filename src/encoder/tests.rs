//! Unit tests of fitting and encoding together: most encodings are checked by fitting a
//! column and encoding values with the result.

use super::encode::{level_index, normalised_eq};
use super::*;
use crate::data::TextColumn;
use crate::schema::{Kind, MissingTokens, normalise_category};

#[test]
fn echoed_text_is_cut_after_64_characters_on_a_character_boundary() {
    assert_eq!(Quoted("teal").to_string(), "\"teal\"");
    assert_eq!(Quoted("a\"b").to_string(), format!("{:?}", "a\"b"));
    let exact = "é".repeat(ECHO_CHARS);
    assert_eq!(Quoted(&exact).to_string(), format!("{exact:?}"));
    let long = "é".repeat(8 << 20); // 16 MiB of two-byte characters
    let shown = Quoted(&long).to_string();
    assert_eq!(shown, format!("{exact:?}… ({} bytes)", 16 << 20));
    assert_eq!(echo_prefix(&long), (exact.as_str(), true));
}

fn column(cells: &[&str]) -> TextColumn {
    let mut c = TextColumn::default();
    for cell in cells {
        c.push(cell);
    }
    c
}

fn fit_one(kind: Kind, cells: &[&str], won: &[bool], min_level_count: usize) -> Attribute {
    let col = column(cells);
    let rows: Vec<usize> = (0..cells.len()).collect();
    let options = EncoderOptions {
        min_level_count,
        max_levels: 100,
        shapes: false,
    };
    let enc = FeatureEncoder::fit(
        [("x", kind, &col)],
        &rows,
        won,
        &MissingTokens::default(),
        &options,
    )
    .unwrap();
    enc.attributes.into_iter().next().unwrap()
}

fn encode(a: &Attribute, v: RawValue<'_>) -> Result<(Vec<f64>, Reading), ValueError> {
    let mut out = vec![9.0; a.width()];
    let r = a.encode(v, &MissingTokens::default(), &mut out)?;
    Ok((out, r))
}

#[test]
fn numeric_standardises_imputes_and_flags_missing() {
    let a = fit_one(
        Kind::Numeric,
        &["1", "3", "", "5"],
        &[false, true, true, false],
        1,
    );
    let Encoding::Numeric { mean, scale, .. } = a.encoding else {
        panic!()
    };
    assert_eq!(mean, 3.0);
    assert!((scale - (8.0f64 / 3.0).sqrt()).abs() < 1e-12);
    assert_eq!(encode(&a, RawValue::Text("3")).unwrap().0, [0.0, 0.0]);
    assert_eq!(encode(&a, RawValue::Text("NA")).unwrap().0, [0.0, 1.0]);
    // Linear past the training range [1, 5] up to the far-out fences Q1 - 3 IQR = 3 - 3 * 2 and
    // Q3 + 3 IQR = 5 + 3 * 2 (quartiles 3 and 5 of three values),
    // winsorised beyond it.
    let (past, _) = encode(&a, RawValue::Number(8.0)).unwrap();
    assert!((past[0] - 5.0 / scale).abs() < 1e-12);
    let (high, _) = encode(&a, RawValue::Number(1e9)).unwrap();
    assert!((high[0] - 8.0 / scale).abs() < 1e-12);
    let (low, _) = encode(&a, RawValue::Number(-1e9)).unwrap();
    assert!((low[0] + 6.0 / scale).abs() < 1e-12);
    let err = encode(&a, RawValue::Text("abc")).unwrap_err();
    assert_eq!(err.field, "x");
    assert!(encode(&a, RawValue::Number(f64::NAN)).is_err());
    assert!(encode(&a, RawValue::Number(f64::INFINITY)).is_err());
}

#[test]
fn categorical_pools_rare_levels_and_normalises_case() {
    let cells = ["Google", "google ", "GOOGLE", "Email", "email", "Fax", ""];
    let won = [true, false, true, false, false, true, false];
    let a = fit_one(Kind::Categorical, &cells, &won, 2);
    let Encoding::Categorical {
        levels,
        level_rates,
        other_rate,
        missing_rate,
        pooled,
    } = &a.encoding
    else {
        panic!()
    };
    assert_eq!(levels, &["google", "email"]);
    assert_eq!(pooled, &["fax"]);
    assert_eq!(level_rates[0], RateStat { leads: 3, wins: 2 });
    assert_eq!(*other_rate, RateStat { leads: 1, wins: 1 });
    assert_eq!(*missing_rate, RateStat { leads: 1, wins: 0 });
    assert_eq!(
        encode(&a, RawValue::Text("  GooGle ")).unwrap().0,
        [1.0, 0.0, 0.0, 0.0]
    );
    let (v, r) = encode(&a, RawValue::Text("carrier pigeon")).unwrap();
    assert_eq!(v, [0.0, 0.0, 1.0, 0.0]);
    assert!(matches!(r, Reading::Other { unseen: true, .. }));
    let (v, r) = encode(&a, RawValue::Text("FAX")).unwrap();
    assert_eq!(v, [0.0, 0.0, 1.0, 0.0]);
    assert!(
        matches!(r, Reading::Other { unseen: false, .. }),
        "fax was seen, pooled"
    );
    assert_eq!(
        encode(&a, RawValue::Missing).unwrap().0,
        [0.0, 0.0, 0.0, 1.0]
    );
}

#[test]
fn normalised_comparison_agrees_with_normalising() {
    let raws = [
        "Google",
        " google  ",
        "GOO gle",
        "goo  gle",
        "",
        "  ",
        "İstanbul",
        "ß",
        "Olark Chat",
        "olark chat ",
        "olark\tchat",
        "olark",
        "olark chatx",
        "ΣΑΣ",
    ];
    let levels = [
        "google",
        "goo gle",
        "",
        "olark chat",
        "i̇stanbul",
        "ß",
        "σασ",
        "olark",
    ];
    for raw in raws
        .iter()
        .chain(&["GOOGLE", "Olark  Chat", "olark chat", " olark chat"])
    {
        for level in levels {
            assert_eq!(
                normalised_eq(raw, level),
                normalise_category(raw) == level,
                "{raw:?} vs {level:?}"
            );
        }
        let owned: Vec<String> = levels.iter().map(|l| l.to_string()).collect();
        assert_eq!(
            level_index(&owned, raw),
            levels.iter().position(|&l| normalise_category(raw) == l),
            "{raw:?}"
        );
    }
}

#[test]
fn categorical_has_no_columns_for_what_training_never_saw() {
    let a = fit_one(
        Kind::Categorical,
        &["a", "b", "a"],
        &[true, false, false],
        1,
    );
    assert_eq!(a.column_names(), ["x=a", "x=b"]);
    let (v, r) = encode(&a, RawValue::Text("zebra")).unwrap();
    assert_eq!(v, [0.0, 0.0]);
    assert!(matches!(r, Reading::Other { unseen: true, .. }));
    assert_eq!(
        encode(&a, RawValue::Missing).unwrap(),
        (vec![0.0, 0.0], Reading::Missing)
    );
}

#[test]
fn boolean_reads_flags_text_and_numbers() {
    let a = fit_one(
        Kind::Boolean,
        &["yes", "no", "no", "no"],
        &[true, false, false, true],
        1,
    );
    assert_eq!(a.width(), 1);
    assert_eq!(encode(&a, RawValue::Text("Yes")).unwrap().0, [1.0]);
    assert_eq!(encode(&a, RawValue::Flag(false)).unwrap().0, [0.0]);
    assert_eq!(encode(&a, RawValue::Number(1.0)).unwrap().0, [1.0]);
    assert_eq!(encode(&a, RawValue::Missing).unwrap().0, [0.25]);
    assert!(encode(&a, RawValue::Number(2.0)).is_err());
    assert!(encode(&a, RawValue::Text("maybe")).is_err());
}

#[test]
fn table_encoding_matches_row_encoding() {
    let text = "src,n\nweb,1\nWeb,\nemail,7\nfax,2\n";
    let table = crate::data::parse_csv(std::path::Path::new("t.csv"), text.as_bytes()).unwrap();
    let rows = [0, 1, 2, 3];
    let won = [true, false, true, false];
    let enc = FeatureEncoder::fit(
        [
            ("src", Kind::Categorical, table.column(0)),
            ("n", Kind::Numeric, table.column(1)),
        ],
        &rows,
        &won,
        &MissingTokens::default(),
        &EncoderOptions {
            min_level_count: 1,
            max_levels: 2,
            shapes: false,
        },
    )
    .unwrap();
    // Matrix row i holds table row shuffled[i].
    let shuffled = [2, 0, 3, 1];
    let matrix = encode_table(&enc, &table, &[0, 1], &shuffled).unwrap();
    let mut out = vec![0.0; enc.width()];
    let mut readings = Vec::new();
    for (i, &r) in shuffled.iter().enumerate() {
        enc.encode_row(
            |a| RawValue::Text(table.column(a).get(r)),
            &mut out,
            &mut readings,
        )
        .unwrap();
        assert_eq!(matrix.row(i).to_vec(), out, "matrix row {i}, table row {r}");
    }
}

#[test]
fn an_artifact_without_limits_clamps_to_the_training_range_as_before() {
    let mut a = fit_one(Kind::Numeric, &["1", "3", "5"], &[false, true, false], 1);
    let json = serde_json::to_value(&a).unwrap();
    assert!(json["encoding"]["upper_limit"].is_number());
    let mut old = json.clone();
    let encoding = old["encoding"].as_object_mut().unwrap();
    encoding.remove("lower_limit");
    encoding.remove("upper_limit");
    a = serde_json::from_value(old).unwrap();
    let Encoding::Numeric { scale, .. } = a.encoding else {
        panic!()
    };
    let (high, _) = encode(&a, RawValue::Number(1e9)).unwrap();
    assert!((high[0] - 2.0 / scale).abs() < 1e-12);
    let (low, _) = encode(&a, RawValue::Number(-1e9)).unwrap();
    assert!((low[0] + 2.0 / scale).abs() < 1e-12);
}

#[test]
fn training_distributions_are_stored_and_optional() {
    // Deciles of 1..=20 (two values per bin) and one missing value of 21 leads.
    let mut cells: Vec<String> = (1..=20).map(|v| v.to_string()).collect();
    cells.push(String::new());
    let cells: Vec<&str> = cells.iter().map(String::as_str).collect();
    let won = vec![false; cells.len()];
    let a = fit_one(Kind::Numeric, &cells, &won, 1);
    let d = a.distribution.as_ref().unwrap();
    assert_eq!(d.edges, [2.0, 4.0, 6.0, 8.0, 10.0, 12.0, 14.0, 16.0, 18.0]);
    assert!(d.shares.iter().all(|&s| s == 2.0 / 21.0), "{:?}", d.shares);
    assert_eq!(d.missing_share, 1.0 / 21.0);
    // Ties: 0 for 7 of 10 values is one bin of 70%.
    let tied = ["0", "0", "0", "0", "0", "0", "0", "5", "6", "7"];
    let a = fit_one(Kind::Numeric, &tied, &[false; 10], 1);
    let d = a.distribution.as_ref().unwrap();
    assert_eq!(d.edges, [0.0, 5.0, 6.0]);
    assert_eq!(d.shares, [0.7, 0.1, 0.1, 0.1]);
    // Categories: kept levels (most frequent first), then the pooled rare labels.
    let a = fit_one(
        Kind::Categorical,
        &["web", "web", "web", "event", "rare", ""],
        &[false; 6],
        2,
    );
    let d = a.distribution.as_ref().unwrap();
    assert_eq!(d.shares, [0.5, 2.0 / 6.0]);
    assert_eq!(d.missing_share, 1.0 / 6.0);
    // Booleans: no, yes.
    let a = fit_one(Kind::Boolean, &["yes", "no", "no", "no"], &[false; 4], 1);
    assert_eq!(a.distribution.as_ref().unwrap().shares, [0.75, 0.25]);
    // An artifact written before distributions existed reads, without one.
    let mut json = serde_json::to_value(&a).unwrap();
    json.as_object_mut()
        .unwrap()
        .remove("distribution")
        .unwrap();
    let old: Attribute = serde_json::from_value(json).unwrap();
    assert_eq!(old.distribution, None);
    assert!(
        !serde_json::to_string(&old)
            .unwrap()
            .contains("distribution")
    );
}

#[test]
fn numeric_distributions_store_the_closure_rate_per_bin() {
    // Ties: 0 for 7 of 10 values makes the bins {0 ×7}, {5}, {6}, {7}. Wins (hand-counted):
    // two of the seven zeros, the 5, not the 6, the 7; the missing lead's win is not binned.
    let cells = ["0", "5", "0", "6", "0", "0", "7", "0", "0", "0", ""];
    let won = [
        true, true, false, false, false, true, true, false, false, false, true,
    ];
    let a = fit_one(Kind::Numeric, &cells, &won, 1);
    let d = a.distribution.as_ref().unwrap();
    assert_eq!(d.edges, [0.0, 5.0, 6.0]);
    let counted: Vec<(u64, u64)> = d.rates.iter().map(|r| (r.leads, r.wins)).collect();
    assert_eq!(counted, [(7, 2), (1, 1), (1, 0), (1, 1)]);
    // Other kinds keep their rates in the encoding and store none here.
    let a = fit_one(Kind::Boolean, &["yes", "no"], &[true, false], 1);
    assert!(a.distribution.as_ref().unwrap().rates.is_empty());
    // A distribution written before the rates existed reads, without them.
    let mut json = serde_json::to_value(d).unwrap();
    json.as_object_mut().unwrap().remove("rates").unwrap();
    let old: Distribution = serde_json::from_value(json).unwrap();
    assert!(old.rates.is_empty());
    assert!(!serde_json::to_string(&old).unwrap().contains("rates"));
}

fn fit_shaped(cells: &[&str]) -> Attribute {
    let col = column(cells);
    let rows: Vec<usize> = (0..cells.len()).collect();
    let won: Vec<bool> = (0..cells.len()).map(|i| i % 3 == 0).collect();
    let options = EncoderOptions {
        shapes: true,
        ..EncoderOptions::default()
    };
    let enc = FeatureEncoder::fit(
        [("x", Kind::Numeric, &col)],
        &rows,
        &won,
        &MissingTokens::default(),
        &options,
    )
    .unwrap();
    enc.attributes.into_iter().next().unwrap()
}

/// The spline term of SPLINE.md written out once more, independently of `Shape::term`.
fn spec_term(t: &[f64], j: usize, v: f64) -> f64 {
    let k = t.len();
    let p3 = |u: f64| if u > 0.0 { u * u * u } else { 0.0 };
    (p3(v - t[j]) - p3(v - t[k - 2]) * (t[k - 1] - t[j]) / (t[k - 1] - t[k - 2])
        + p3(v - t[k - 1]) * (t[k - 2] - t[j]) / (t[k - 1] - t[k - 2]))
        / (t[k - 1] - t[0]).powi(2)
}

#[test]
fn a_shape_adds_standardised_spline_columns_after_the_linear_and_missing_ones() {
    // 0..=99 and two missing values: knots at the 5, 27.5, 50, 72.5 and 95% quantiles.
    let mut cells: Vec<String> = (0..100).map(|v| v.to_string()).collect();
    cells.extend(["".to_string(), "NA".to_string()]);
    let refs: Vec<&str> = cells.iter().map(String::as_str).collect();
    let a = fit_shaped(&refs);
    let shape = a
        .shape()
        .expect("a column of 100 distinct values bends")
        .clone();
    assert_eq!(shape.knots, [5.0, 27.0, 50.0, 72.0, 94.0]);
    assert_eq!(a.width(), 1 + 1 + 3);
    assert_eq!(
        a.column_names(),
        [
            "x",
            "x (missing)",
            "x (spline 1)",
            "x (spline 2)",
            "x (spline 3)"
        ]
    );
    // Each spline column is centred and scaled over the training values.
    for j in 0..3 {
        let terms: Vec<f64> = (0..100)
            .map(|v| spec_term(&shape.knots, j, v as f64))
            .collect();
        let mean = terms.iter().sum::<f64>() / 100.0;
        let sd = (terms.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / 100.0).sqrt();
        assert!((shape.centers[j] - mean).abs() < 1e-12);
        assert!((shape.scales[j] - sd).abs() < 1e-12);
    }
    let Encoding::Numeric { mean, scale, .. } = a.encoding else {
        panic!()
    };
    for v in [0.0, 5.0, 13.5, 50.0, 80.0, 99.0] {
        let (out, reading) = encode(&a, RawValue::Number(v)).unwrap();
        assert_eq!(reading, Reading::Number(v));
        assert!((out[0] - (v - mean) / scale).abs() < 1e-12);
        assert_eq!(out[1], 0.0);
        for j in 0..3 {
            let want = (spec_term(&shape.knots, j, v) - shape.centers[j]) / shape.scales[j];
            assert!((out[2 + j] - want).abs() < 1e-12, "v {v} column {j}");
        }
    }
    // Missing: the linear and spline columns are the average lead (0), the indicator is set.
    assert_eq!(
        encode(&a, RawValue::Missing).unwrap().0,
        [0.0, 1.0, 0.0, 0.0, 0.0]
    );
    // Linear beyond the outer knots: equal steps give equal differences.
    let at = |v: f64| encode(&a, RawValue::Number(v)).unwrap().0;
    let (x1, x2, x3) = (at(100.0), at(110.0), at(120.0));
    for c in 2..5 {
        assert!(((x3[c] - x2[c]) - (x2[c] - x1[c])).abs() < 1e-9);
    }
    // Out of range: winsorised first, the spline columns with the linear one.
    let Encoding::Numeric { upper_limit, .. } = a.encoding else {
        panic!()
    };
    assert_eq!(at(1e12), at(upper_limit.unwrap()));
}

#[test]
fn a_column_without_three_distinct_knots_gets_no_shape() {
    let mut cells: Vec<&str> = vec!["0"; 90];
    cells.extend(["1"; 10]);
    let a = fit_shaped(&cells);
    assert_eq!(a.shape(), None);
    assert_eq!(a.width(), 1);
    // Without shapes asked for, a bending column is linear, serialised as before.
    let plain = fit_one(
        Kind::Numeric,
        &["1", "2", "3", "4", "5", "6"],
        &[true; 6],
        1,
    );
    assert_eq!(plain.shape(), None);
    assert!(!serde_json::to_string(&plain).unwrap().contains("\"shape\""));
}

#[test]
fn dropping_shapes_moves_the_offsets_and_names_the_columns_kept() {
    let cells: Vec<String> = (0..50).map(|v| (v * v).to_string()).collect();
    let refs: Vec<&str> = cells.iter().map(String::as_str).collect();
    let col = column(&refs);
    let rows: Vec<usize> = (0..refs.len()).collect();
    let won: Vec<bool> = (0..refs.len()).map(|i| i % 2 == 0).collect();
    let options = EncoderOptions {
        shapes: true,
        ..EncoderOptions::default()
    };
    let fit = |options: &EncoderOptions| {
        FeatureEncoder::fit(
            [("a", Kind::Numeric, &col), ("b", Kind::Numeric, &col)],
            &rows,
            &won,
            &MissingTokens::default(),
            options,
        )
        .unwrap()
    };
    let mut enc = fit(&options);
    assert_eq!(enc.width(), 8);
    assert!(enc.has_shapes());
    let kept = enc.keep_shapes(&["b".to_string()]);
    assert_eq!(kept, [0, 4, 5, 6, 7]);
    assert_eq!(enc.attributes[1].offset, 1);
    assert_eq!(enc.width(), 5);
    assert_eq!(
        enc.attributes[0],
        fit(&EncoderOptions::default()).attributes[0]
    );
    assert!(enc.keep_shapes(&[]).len() == 2 && !enc.has_shapes());
}
