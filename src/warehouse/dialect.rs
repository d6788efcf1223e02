//! What differs between the SQL engines the export writes for: quoting of names and text,
//! type names, and the few functions that are not spelled alike (regular expressions, the
//! days between two dates). Everything else the export writes — CASE, CAST, GREATEST, LEAST,
//! EXP, POWER, FLOOR, LOWER, TRIM — is spelled the same in all five.

/// An SQL engine the export can write for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Dialect {
    Postgres,
    Duckdb,
    Bigquery,
    Spark,
    Snowflake,
}

impl Dialect {
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Postgres => "postgres",
            Dialect::Duckdb => "duckdb",
            Dialect::Bigquery => "bigquery",
            Dialect::Spark => "spark",
            Dialect::Snowflake => "snowflake",
        }
    }

    /// A quoted identifier (a column or a part of a table name), spelled exactly as given.
    pub fn ident(self, name: &str) -> String {
        match self {
            // Standard SQL: double quotes, a double quote doubled.
            Dialect::Postgres | Dialect::Duckdb | Dialect::Snowflake => {
                format!("\"{}\"", name.replace('"', "\"\""))
            }
            // Backticks; BigQuery escapes inside them with a backslash.
            Dialect::Bigquery => {
                format!("`{}`", name.replace('\\', "\\\\").replace('`', "\\`"))
            }
            // Backticks; Spark doubles a backtick inside them.
            Dialect::Spark => format!("`{}`", name.replace('`', "``")),
        }
    }

    /// A table name, each dot-separated part quoted (`analytics.leads`, `project.dataset.t`).
    pub fn table(self, name: &str) -> String {
        name.split('.')
            .map(|part| self.ident(part))
            .collect::<Vec<_>>()
            .join(".")
    }

    /// A text literal holding exactly `text`.
    pub fn text(self, text: &str) -> String {
        match self {
            // standard_conforming_strings (on since PostgreSQL 9.1) and DuckDB: a backslash is
            // itself, a quote is doubled.
            Dialect::Postgres | Dialect::Duckdb => format!("'{}'", text.replace('\'', "''")),
            // Backslash escapes; a doubled quote would be two adjacent literals.
            Dialect::Bigquery | Dialect::Spark => {
                format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'"))
            }
            // Backslash escapes are read; a quote may be doubled.
            Dialect::Snowflake => {
                format!("'{}'", text.replace('\\', "\\\\").replace('\'', "''"))
            }
        }
    }

    /// The 64-bit floating-point type.
    pub fn double(self) -> &'static str {
        match self {
            Dialect::Postgres => "DOUBLE PRECISION",
            Dialect::Bigquery => "FLOAT64",
            Dialect::Duckdb | Dialect::Spark | Dialect::Snowflake => "DOUBLE",
        }
    }

    /// The text type.
    pub fn text_type(self) -> &'static str {
        match self {
            Dialect::Postgres => "TEXT",
            Dialect::Bigquery | Dialect::Spark => "STRING",
            Dialect::Duckdb | Dialect::Snowflake => "VARCHAR",
        }
    }

    /// The integer type of the score.
    pub fn integer(self) -> &'static str {
        match self {
            Dialect::Bigquery => "INT64",
            _ => "INTEGER",
        }
    }

    /// A number exactly: cast from its shortest round-trip text, so that every engine reads
    /// the same f64 the model holds (a bare `0.1` is an exact DECIMAL in PostgreSQL, DuckDB,
    /// Spark and Snowflake, and would make the arithmetic around it decimal).
    pub fn number(self, v: f64) -> String {
        let plain = format!("{v}");
        let text = if plain.len() <= 24 {
            plain
        } else {
            format!("{v:e}")
        };
        format!("CAST('{text}' AS {})", self.double())
    }

    /// `expression` cast to the 64-bit floating-point type.
    pub fn to_double(self, expression: &str) -> String {
        format!("CAST({expression} AS {})", self.double())
    }

    /// `expression` with every run of white space replaced by one space (all occurrences:
    /// PostgreSQL and DuckDB need the `g` flag, the others replace all by default).
    pub fn collapse_spaces(self, expression: &str) -> String {
        let pattern = self.text(r"\s+");
        match self {
            Dialect::Postgres | Dialect::Duckdb => {
                format!("REGEXP_REPLACE({expression}, {pattern}, ' ', 'g')")
            }
            Dialect::Bigquery | Dialect::Spark | Dialect::Snowflake => {
                format!("REGEXP_REPLACE({expression}, {pattern}, ' ')")
            }
        }
    }

    /// Whole days from the date `from` to the date `to` (an integer expression).
    pub fn days_between(self, from: &str, to: &str) -> String {
        match self {
            Dialect::Postgres => format!("({to} - {from})"),
            Dialect::Duckdb => format!("DATE_DIFF('day', {from}, {to})"),
            Dialect::Bigquery => format!("DATE_DIFF({to}, {from}, DAY)"),
            Dialect::Spark => format!("DATEDIFF({to}, {from})"),
            Dialect::Snowflake => format!("DATEDIFF(day, {from}, {to})"),
        }
    }

    /// A date literal.
    pub fn date(self, date: chrono::NaiveDate) -> String {
        format!("CAST('{date}' AS DATE)")
    }
}
