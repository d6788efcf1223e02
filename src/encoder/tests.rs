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
