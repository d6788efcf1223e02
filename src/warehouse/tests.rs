use super::*;

#[test]
fn numbers_are_written_as_the_f64_they_are() {
    for v in [
        0.1,
        -3.25,
        1e-300,
        123456789.123,
        5e-324,
        -1.7976931348623157e308,
        1.0 / 3.0,
    ] {
        let literal = Dialect::Postgres.number(v);
        let text = literal
            .strip_prefix("CAST('")
            .and_then(|rest| rest.strip_suffix("' AS DOUBLE PRECISION)"))
            .unwrap_or_else(|| panic!("{literal}"));
        assert_eq!(
            text.parse::<f64>().unwrap().to_bits(),
            v.to_bits(),
            "{literal}"
        );
        assert!(text.len() <= 24, "{literal}");
    }
}

#[test]
fn names_and_text_are_quoted_per_dialect() {
    let name = "it's a \"b`\\";
    assert_eq!(Dialect::Postgres.ident(name), r#""it's a ""b`\""#);
    assert_eq!(Dialect::Snowflake.ident(name), r#""it's a ""b`\""#);
    assert_eq!(Dialect::Bigquery.ident(name), r#"`it's a "b\`\\`"#);
    assert_eq!(Dialect::Spark.ident(name), r#"`it's a "b``\`"#);
    assert_eq!(Dialect::Duckdb.text(name), r#"'it''s a "b`\'"#);
    assert_eq!(Dialect::Bigquery.text(name), r#"'it\'s a "b`\\'"#);
    assert_eq!(Dialect::Spark.text(name), r#"'it\'s a "b`\\'"#);
    assert_eq!(Dialect::Snowflake.text(name), r#"'it''s a "b`\\'"#);
    assert_eq!(
        Dialect::Bigquery.table("proj.crm.leads"),
        "`proj`.`crm`.`leads`"
    );
}

#[test]
fn a_line_break_cannot_leave_a_comment() {
    assert_eq!(comment("a\nDROP TABLE x;\r--"), "a DROP TABLE x; --");
}
