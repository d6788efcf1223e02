//! Postgres in and out: the rows of a query as the leads of `train`, `score` and `evaluate`
//! (`--data postgres://… --query "SELECT …"`), and scored leads written into a table (`score
//! --out postgres://… --table T`).
//!
//! Reading goes through the CSV path: the query's rows are copied out as CSV (`COPY (query)
//! TO STDOUT`, PostgreSQL's own text for each value, in a read-only transaction) and read by
//! [`crate::data::parse_csv`], so a query reads exactly as a CSV export of the same rows would:
//! numbers as their shortest exact text, booleans as `t`/`f`, dates and timestamps in ISO form
//! (timestamps with a time zone in UTC), NULL as an empty (missing) cell. Columns of any
//! other type are refused before the query runs, naming the column.
//!
//! Passwords come from `PGPASSWORD` or the password file (`PGPASSFILE`, else `~/.pgpass`), as
//! libpq reads them; a password in the URL is refused, and no message carries a password (the
//! URL in messages is the one given, which has none).

use crate::score::ScoredRow;
use crate::warehouse::Dialect;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio_postgres::config::Host;
use tokio_postgres::types::{Kind, Type};

/// Rows sent per INSERT when writing scores (all in one transaction).
const BATCH_ROWS: usize = 1000;

/// Why a Postgres source or destination failed.
#[derive(Debug, thiserror::Error)]
pub enum PostgresError {
    #[error("{url}: not a usable connection URL ({message}); e.g. postgres://user@host:5432/db")]
    Url { url: String, message: String },
    #[error(
        "{url}: the URL holds a password; remove it and set PGPASSWORD or a ~/.pgpass line \
         instead (a password in a URL shows in process lists, shell history and logs)"
    )]
    PasswordInUrl { url: String },
    #[error("cannot connect to {url}: {message}")]
    Connect { url: String, message: String },
    #[error(
        "{url}: column {column:?} of the query has type {type_name}, which leadscore cannot read \
         (it reads numbers, text, booleans, dates and timestamps); cast it in the query, e.g. \
         \"{column}\"::text, or leave it out"
    )]
    UnsupportedType {
        url: String,
        column: String,
        type_name: String,
    },
    #[error("{url}: the query failed: {message}")]
    Query { url: String, message: String },
    #[error("{url}: the query returned no rows")]
    NoRows { url: String },
    #[error(
        "{url}: writing table {table} failed, nothing was written (one transaction): {message}"
    )]
    Write {
        url: String,
        table: String,
        message: String,
    },
}

/// Whether `--data` or `--out` names a Postgres database rather than a file.
pub fn is_url(text: &str) -> bool {
    text.starts_with("postgres://") || text.starts_with("postgresql://")
}

/// `--data`/`--out` as a Postgres URL, when it is one.
pub fn url_of(path: &Path) -> Option<&str> {
    path.to_str().filter(|p| is_url(p))
}

/// Refuses a Postgres URL that holds a password (see [`PostgresError::PasswordInUrl`]); a
/// command checks its `--data` and `--out` with this first, before any message names them.
pub fn refuse_password(path: &Path) -> Result<(), PostgresError> {
    match url_of(path) {
        Some(url) => config(url).map(drop),
        None => Ok(()),
    }
}

/// The rows of `query` as a table of text columns (see the module documentation); the
/// table's path, for messages, is the URL.
pub fn read_query(url: &str, query: &str) -> Result<crate::data::Table, crate::data::DataError> {
    let query = query.trim().trim_end_matches(';').trim_end();
    let bytes = run(url, |client| async move {
        let statement = client.prepare(query).await.map_err(|e| failed(url, &e))?;
        for column in statement.columns() {
            if !readable(column.type_()) {
                return Err(PostgresError::UnsupportedType {
                    url: url.into(),
                    column: column.name().into(),
                    type_name: column.type_().name().into(),
                });
            }
        }
        // Read-only: the query cannot change anything, whatever it says.
        client
            .batch_execute(
                "BEGIN TRANSACTION READ ONLY; SET LOCAL DateStyle TO ISO; \
                 SET LOCAL TimeZone TO 'UTC'; SET LOCAL extra_float_digits TO 3",
            )
            .await
            .map_err(|e| failed(url, &e))?;
        // The CSV reader tells `,` from `;` by counting them in the header, where PostgreSQL
        // quotes a name holding the delimiter but not one holding the other: column names
        // with more semicolons than the header has commas are copied out with `;`.
        let semicolons: usize = statement
            .columns()
            .iter()
            .map(|c| c.name().matches(';').count())
            .sum();
        let delimiter = if semicolons >= statement.columns().len().max(1) {
            ';'
        } else {
            ','
        };
        let copy = format!(
            "COPY ({query}) TO STDOUT WITH (FORMAT csv, HEADER true, DELIMITER '{delimiter}')"
        );
        let stream = client.copy_out(&copy).await.map_err(|e| failed(url, &e))?;
        let mut stream = std::pin::pin!(stream);
        let mut bytes = Vec::new();
        while let Some(chunk) = futures_next(&mut stream).await {
            bytes.extend_from_slice(&chunk.map_err(|e| failed(url, &e))?);
        }
        client
            .batch_execute("COMMIT")
            .await
            .map_err(|e| failed(url, &e))?;
        Ok(bytes)
    })?;
    let table = crate::data::parse_csv(&PathBuf::from(url), &bytes).map_err(|e| match e {
        crate::data::DataError::NoRows { .. } => PostgresError::NoRows { url: url.into() }.into(),
        other => other,
    })?;
    Ok(table)
}

/// Writes scored leads into `table` (created if absent) in one transaction: every row or
/// none. Columns: lead_id, probability, score, grade, model_version, scored_at (the same time
/// on every row). Returns the rows written.
pub fn write_scores(
    url: &str,
    table: &str,
    rows: &[ScoredRow],
    model_version: &str,
) -> Result<u64, PostgresError> {
    let name = Dialect::Postgres.table(table);
    let scored_at = chrono::Utc::now().to_rfc3339();
    let write_failed = |e: &tokio_postgres::Error| PostgresError::Write {
        url: url.into(),
        table: table.into(),
        message: describe(e),
    };
    run(url, |mut client| async move {
        let transaction = client.transaction().await.map_err(|e| write_failed(&e))?;
        transaction
            .batch_execute(&format!(
                "CREATE TABLE IF NOT EXISTS {name} (lead_id TEXT NOT NULL, probability DOUBLE \
                 PRECISION NOT NULL, score INTEGER NOT NULL, grade TEXT NOT NULL, model_version \
                 TEXT NOT NULL, scored_at TIMESTAMPTZ NOT NULL)"
            ))
            .await
            .map_err(|e| write_failed(&e))?;
        let insert = transaction
            .prepare(&format!(
                "INSERT INTO {name} (lead_id, probability, score, grade, model_version, scored_at) \
                 SELECT u.id, u.p, u.s, u.g, $5::text, CAST($6::text AS TIMESTAMPTZ) \
                 FROM UNNEST($1::text[], $2::float8[], $3::int4[], $4::text[]) AS u(id, p, s, g)"
            ))
            .await
            .map_err(|e| write_failed(&e))?;
        let mut written = 0;
        for batch in rows.chunks(BATCH_ROWS) {
            let ids: Vec<&str> = batch.iter().map(|r| r.lead_id.as_str()).collect();
            let probabilities: Vec<f64> = batch.iter().map(|r| r.scored.probability).collect();
            let scores: Vec<i32> = batch.iter().map(|r| r.scored.score as i32).collect();
            let grades: Vec<&str> = batch.iter().map(|r| r.scored.grade.as_str()).collect();
            written += transaction
                .execute(
                    &insert,
                    &[
                        &ids,
                        &probabilities,
                        &scores,
                        &grades,
                        &model_version,
                        &scored_at,
                    ],
                )
                .await
                .map_err(|e| write_failed(&e))?;
        }
        transaction.commit().await.map_err(|e| write_failed(&e))?;
        Ok(written)
    })
}

/// Types whose text the CSV path reads: numbers, text, booleans, dates and timestamps (and
/// enums and domains over them).
fn readable(t: &Type) -> bool {
    match t.kind() {
        Kind::Enum(_) => true,
        Kind::Domain(inner) => readable(inner),
        Kind::Simple => [
            Type::BOOL,
            Type::INT2,
            Type::INT4,
            Type::INT8,
            Type::FLOAT4,
            Type::FLOAT8,
            Type::NUMERIC,
            Type::TEXT,
            Type::VARCHAR,
            Type::BPCHAR,
            Type::NAME,
            Type::DATE,
            Type::TIMESTAMP,
            Type::TIMESTAMPTZ,
        ]
        .contains(t),
        _ => false,
    }
}

/// Connects (password from the environment or the password file) and runs `work` on a
/// runtime of its own: the commands that read and write are synchronous.
fn run<T, F, Fut>(url: &str, work: F) -> Result<T, PostgresError>
where
    F: FnOnce(tokio_postgres::Client) -> Fut,
    Fut: std::future::Future<Output = Result<T, PostgresError>>,
{
    let config = config(url)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| PostgresError::Connect {
            url: url.into(),
            message: e.to_string(),
        })?;
    runtime.block_on(async {
        let (client, connection) =
            config
                .connect(tokio_postgres::NoTls)
                .await
                .map_err(|e| PostgresError::Connect {
                    url: url.into(),
                    message: describe(&e),
                })?;
        let driver = tokio::spawn(connection);
        let result = work(client).await;
        driver.abort();
        result
    })
}

/// The connection settings of `url`, with the password from `PGPASSWORD` or the password file.
fn config(url: &str) -> Result<tokio_postgres::Config, PostgresError> {
    let mut config: tokio_postgres::Config =
        url.parse()
            .map_err(|e: tokio_postgres::Error| PostgresError::Url {
                url: redact(url),
                message: e.to_string(),
            })?;
    if config.get_password().is_some() {
        return Err(PostgresError::PasswordInUrl { url: redact(url) });
    }
    if config.get_user().is_none()
        && let Ok(user) = std::env::var("PGUSER")
    {
        config.user(user);
    }
    config
        .application_name("leadscore")
        .connect_timeout(Duration::from_secs(10));
    if let Some(password) = std::env::var_os("PGPASSWORD").filter(|p| !p.is_empty()) {
        config.password(password.as_encoded_bytes());
    } else if let Some(password) = password_file_entry(&config) {
        config.password(password);
    }
    Ok(config)
}

/// `url` with the password of its user part (`user:password@`), if any, replaced by `***`.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => {
            let user = &rest[..at];
            let user = user.split_once(':').map_or(user, |(name, _)| name);
            format!("{scheme}://{user}:***{}", &rest[at..])
        }
        None => url.to_string(),
    }
}

/// The password for this connection from the password file, as libpq finds it: `PGPASSFILE`,
/// else `~/.pgpass`; lines `host:port:database:user:password`, `*` matching anything, `\`
/// escaping `:` and `\`; the first matching line wins. A file others can read is ignored, as
/// libpq ignores it.
fn password_file_entry(config: &tokio_postgres::Config) -> Option<String> {
    let path = std::env::var_os("PGPASSFILE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".pgpass")))?;
    let metadata = std::fs::metadata(&path).ok()?;
    if std::os::unix::fs::PermissionsExt::mode(&metadata.permissions()) & 0o077 != 0 {
        tracing::warn!(
            "password file {} is readable by others: ignored (chmod 0600 it)",
            path.display()
        );
        return None;
    }
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(name)) => name.clone(),
        _ => "localhost".to_string(),
    };
    let port = config
        .get_ports()
        .first()
        .copied()
        .unwrap_or(5432)
        .to_string();
    let user = config
        .get_user()
        .map(str::to_string)
        .or_else(|| std::env::var("USER").ok())?;
    let database = config.get_dbname().unwrap_or(&user).to_string();
    let wanted = [
        host.as_str(),
        port.as_str(),
        database.as_str(),
        user.as_str(),
    ];
    std::fs::read_to_string(&path)
        .ok()?
        .lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let fields = split_password_line(line);
            (fields.len() == 5
                && fields[..4]
                    .iter()
                    .zip(wanted)
                    .all(|(field, value)| field == "*" || field == value))
            .then(|| fields[4].clone())
        })
}

/// The fields of a password-file line: split at `:`, `\` escaping the next character.
fn split_password_line(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next() {
                    fields.last_mut().expect("one field").push(next);
                }
            }
            ':' => fields.push(String::new()),
            c => fields.last_mut().expect("one field").push(c),
        }
    }
    fields
}

/// A driver error in words: the server's message (with its detail) rather than `db error`.
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => match db.detail() {
            Some(detail) => format!("{} ({detail})", db.message()),
            None => db.message().to_string(),
        },
        None => match std::error::Error::source(e) {
            Some(source) => format!("{e}: {source}"),
            None => e.to_string(),
        },
    }
}

fn failed(url: &str, e: &tokio_postgres::Error) -> PostgresError {
    PostgresError::Query {
        url: url.into(),
        message: describe(e),
    }
}

/// The next item of a stream (tokio-postgres streams are `futures` streams; this avoids a
/// dependency for one call).
async fn futures_next<S: tokio_stream::Stream + Unpin>(stream: &mut S) -> Option<S::Item> {
    tokio_stream::StreamExt::next(stream).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_file_lines_split_with_escapes() {
        assert_eq!(
            split_password_line(r"db\:host:5432:*:me:pa\:ss\\w"),
            ["db:host", "5432", "*", "me", r"pa:ss\w"]
        );
    }

    #[test]
    fn a_password_in_the_url_is_refused_without_showing_it() {
        let e = config("postgres://me:hunter2@localhost/db").unwrap_err();
        assert!(matches!(e, PostgresError::PasswordInUrl { .. }));
        let message = e.to_string();
        assert!(
            message.contains("postgres://me:***@localhost/db"),
            "{message}"
        );
        assert!(!message.contains("hunter2"), "{message}");
        assert_eq!(redact("postgres://h/db?user=x"), "postgres://h/db?user=x");
    }
}
