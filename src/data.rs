//! Reading a CRM's export (CSV or Parquet) into memory, column by column, or a Postgres
//! query's rows as the same CSV ([`read_leads`], [`crate::postgres`]).
//!
//! Inputs are told apart by their first bytes ([`Format::sniff`]), and streamed: each row is
//! handed to a [`RowSink`] as it is read, so a sink that keeps some rows (training's sampler)
//! holds only those. Parquet is read row group by row group (`parquet`), its typed values
//! written as the text a CSV export would hold, so one set of rules reads both.
//!
//! A CSV export is read once, strictly: a ragged row, an empty file or a header without columns is
//! an error naming the file and line. Lines are the physical lines a text editor shows (`\n`,
//! `\r\n` and a lone `\r` each end one; blank lines and line breaks inside quoted fields count).
//! The delimiter (`,` or `;`) is detected from the header, a UTF-8 byte-order mark is skipped,
//! and quoted fields follow RFC 4180 (the `csv` crate).
//! Cells are kept as text in one contiguous buffer per column: a million leads of thirty columns
//! cost one allocation per column, not thirty million.

use crate::names::{self, Claims, FieldIndex};
use sha2::{Digest, Sha256};
use std::io::{BufRead, Read};

mod parquet;
use std::path::{Path, PathBuf};

/// Why a CSV file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is empty: expected a header row and at least one lead")]
    Empty { path: PathBuf },
    #[error("{path} has a header row but no leads")]
    NoRows { path: PathBuf },
    #[error(
        "{path}, line {line}: {found} fields where the header has {expected}; \
         fix the row (a stray delimiter or an unclosed quote?) and run again"
    )]
    Ragged {
        path: PathBuf,
        line: u64,
        expected: usize,
        found: usize,
    },
    #[error("{path}, line {line}: {message}")]
    Malformed {
        path: PathBuf,
        line: u64,
        message: String,
    },
    #[error("{path}: header has the column {name:?} twice (columns {first} and {second})")]
    DuplicateColumn {
        path: PathBuf,
        name: String,
        first: usize,
        second: usize,
    },
    #[error(
        "{path}, line {line}: column {column} has no name in the header row but holds {value:?}; \
         name the column in the header row, or delete the column"
    )]
    UnnamedColumn {
        path: PathBuf,
        line: u64,
        /// 1-based, as a spreadsheet counts columns.
        column: usize,
        value: String,
    },
    #[error("{path}: {message}")]
    Parquet { path: PathBuf, message: String },
    #[error(
        "{path}: column {column:?} is of Parquet type {kind}, which leadscore cannot read; \
         leave it out of the file or cast it to a number, text, boolean, date or timestamp"
    )]
    UnsupportedType {
        path: PathBuf,
        column: String,
        kind: String,
    },
    #[error("{path}: no column named {name:?}; the columns are: {available}")]
    MissingColumn {
        path: PathBuf,
        name: String,
        available: String,
    },
    #[error(
        "{path}: the columns {first:?} and {second:?} both name the model's field {field:?} \
         (column names match ignoring case and spacing); remove or rename one"
    )]
    SameField {
        path: PathBuf,
        first: String,
        second: String,
        field: String,
    },
    #[error(
        "{path}: none of the columns is a field of the model; expected at least one of \
         {expected} (column names match ignoring case and spacing)"
    )]
    NoKnownColumn { path: PathBuf, expected: String },
    #[error(transparent)]
    Postgres(#[from] crate::postgres::PostgresError),
    #[error("{url} is a database: give the rows to read with --query \"SELECT …\"")]
    NoQuery { url: String },
    #[error("--query reads from a database, but {path} is a file: give --data postgres://host/db")]
    QueryWithoutDatabase { path: PathBuf },
}

/// The text of one column, every cell in one buffer.
#[derive(Debug, Clone, Default)]
pub struct TextColumn {
    /// All cells concatenated, trimmed of surrounding white space.
    bytes: String,
    /// `ends[i]` is where cell `i` stops in `bytes`; cell `i` starts where cell `i - 1` stops.
    ends: Vec<usize>,
}

impl TextColumn {
    pub fn push(&mut self, cell: &str) {
        self.bytes.push_str(cell.trim());
        self.ends.push(self.bytes.len());
    }

    pub fn get(&self, row: usize) -> &str {
        let start = if row == 0 { 0 } else { self.ends[row - 1] };
        &self.bytes[start..self.ends[row]]
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> + '_ {
        (0..self.len()).map(|row| self.get(row))
    }
}

/// A CSV file held in memory.
#[derive(Debug, Clone)]
pub struct Table {
    /// Where the data came from, for error messages.
    pub path: PathBuf,
    /// Column names as the CRM spelled them (trimmed).
    pub headers: Vec<String>,
    /// One entry per header, in header order.
    pub columns: Vec<TextColumn>,
    /// `lines[i]` is the 1-based physical line where data row `i` starts (the header is line 1
    /// when the file does not begin with blank lines), so errors can point at it.
    pub lines: Vec<u64>,
    /// SHA-256 of the file's bytes, recorded in the model so a model can be traced to its data.
    pub sha256: String,
    pub delimiter: u8,
    /// What was read past without failing (e.g. empty unnamed columns), for the caller to show.
    pub warnings: Vec<String>,
}

impl Table {
    pub fn rows(&self) -> usize {
        self.lines.len()
    }

    /// Index of the column called `name`: spelled exactly, else the first that denotes the same
    /// field under the name rule ([`names`]).
    pub fn column_index(&self, name: &str) -> Result<usize, DataError> {
        if let Some(i) = self.headers.iter().position(|h| h == name) {
            return Ok(i);
        }
        self.headers
            .iter()
            .position(|h| names::same(h, name))
            .ok_or_else(|| DataError::MissingColumn {
                path: self.path.clone(),
                name: name.to_string(),
                available: self
                    .headers
                    .iter()
                    .map(|h| format!("{h:?}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// The column each of a model's fields comes from (`None`: absent), by attribute index,
    /// each header matched under the name rule ([`names`]). Refused: two headers that denote
    /// the same field, and a file none of whose headers is a field of the model.
    pub fn attribute_columns(&self, fields: &FieldIndex) -> Result<Vec<Option<usize>>, DataError> {
        let mut claims = Claims::default();
        claims.start(fields.names().len());
        for (column, header) in self.headers.iter().enumerate() {
            let Some(attribute) = fields.get(header.as_bytes()) else {
                continue;
            };
            if let Err(first) = claims.claim(attribute, column) {
                return Err(DataError::SameField {
                    path: self.path.clone(),
                    first: self.headers[first].clone(),
                    second: header.clone(),
                    field: fields.names()[attribute].clone(),
                });
            }
        }
        if claims.none() && !fields.names().is_empty() {
            return Err(DataError::NoKnownColumn {
                path: self.path.clone(),
                expected: fields.expected(),
            });
        }
        Ok(claims.by_field().to_vec())
    }

    pub fn column(&self, index: usize) -> &TextColumn {
        &self.columns[index]
    }
}

/// Reads the leads `--data` names: the rows of `query` when it is a Postgres URL
/// ([`crate::postgres`]), else a CSV or Parquet file
/// ([`read_table`]).
pub fn read_leads(data: &Path, query: Option<&str>) -> Result<Table, DataError> {
    match (crate::postgres::url_of(data), query) {
        (Some(url), Some(query)) => crate::postgres::read_query(url, query),
        (Some(url), None) => Err(DataError::NoQuery { url: url.into() }),
        (None, Some(_)) => Err(DataError::QueryWithoutDatabase {
            path: data.to_path_buf(),
        }),
        (None, None) => read_table(data),
    }
}

/// Where rows go as an input is read: a [`Table`] keeps them all; training's sampler keeps some
/// (`train::sampling`). Reading hands over one row at a time, so what is kept is all that is held.
pub trait RowSink {
    /// Why the sink stops the reading (a reading error is one).
    type Error: From<DataError>;
    /// The column names (trimmed), once, before the first row (not called for a file without
    /// rows).
    fn start(&mut self, path: &Path, headers: &[String]) -> Result<(), Self::Error>;
    /// One row: exactly one cell per header, in header order, and where it is (`Table::lines`).
    fn row<'a>(
        &mut self,
        cells: impl Iterator<Item = &'a str>,
        line: u64,
    ) -> Result<(), Self::Error>;
}

/// What reading learned about the input besides its rows.
#[derive(Debug, Clone)]
pub struct Source {
    /// SHA-256 of the file's bytes.
    pub sha256: String,
    /// The CSV delimiter (`,` for inputs that have none).
    pub delimiter: u8,
}

/// The input formats, told apart by their first bytes, not by the file name: an export named
/// `.csv` that is Parquet (or the other way round) is still read as what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Parquet,
}

impl Format {
    /// Parquet files begin (and end) with the magic bytes `PAR1`; anything else is read as CSV.
    pub fn sniff(path: &Path) -> Result<Format, DataError> {
        let mut head = [0u8; 4];
        let mut file = std::fs::File::open(path).map_err(|source| DataError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let mut filled = 0;
        while filled < head.len() {
            match file.read(&mut head[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(DataError::Io {
                        path: path.to_path_buf(),
                        source,
                    });
                }
            }
        }
        Ok(if filled == 4 && &head == parquet::MAGIC {
            Format::Parquet
        } else {
            Format::Csv
        })
    }
}

/// Reads a whole input file, CSV or Parquet ([`Format::sniff`]), into memory.
pub fn read_table(path: &Path) -> Result<Table, DataError> {
    let mut table = Table::empty(path);
    let source = read_into(path, &mut table)?;
    table.finish(source)?;
    // Every command reads its input through here, so each shows what was read past.
    for warning in &table.warnings {
        tracing::warn!("{warning}");
    }
    Ok(table)
}

/// Reads a CSV file whatever its first bytes (the tests' and tools' way in; commands read
/// through [`read_table`]).
pub fn read_csv(path: &Path) -> Result<Table, DataError> {
    let mut table = Table::empty(path);
    let file = std::fs::File::open(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let source = csv_into(path, file, &mut table)?;
    table.finish(source)?;
    for warning in &table.warnings {
        tracing::warn!("{warning}");
    }
    Ok(table)
}

/// Streams an input file's rows into `sink`, CSV or Parquet.
pub fn read_into<S: RowSink>(path: &Path, sink: &mut S) -> Result<Source, S::Error> {
    match Format::sniff(path)? {
        Format::Parquet => parquet::read_into(path, sink),
        Format::Csv => {
            let file = std::fs::File::open(path).map_err(|source| DataError::Io {
                path: path.to_path_buf(),
                source,
            })?;
            csv_into(path, file, sink)
        }
    }
}

/// A csv reader's error as a `DataError` naming the file and the physical line.
fn malformed(path: &Path, e: csv::Error, line: u64) -> DataError {
    match e.into_kind() {
        csv::ErrorKind::Io(source) => DataError::Io {
            path: path.to_path_buf(),
            source,
        },
        csv::ErrorKind::Utf8 { err, .. } => DataError::Malformed {
            path: path.to_path_buf(),
            line,
            message: format!("not valid UTF-8 text ({err}); export the file as UTF-8"),
        },
        other => DataError::Malformed {
            path: path.to_path_buf(),
            line,
            message: format!("{other:?}"),
        },
    }
}

/// Refuses a header naming one column twice. Empty header cells are not names: spreadsheets
/// export them past the last named column (and sometimes between), and such columns are dropped
/// after reading when they hold nothing.
fn refuse_duplicate_headers(path: &Path, headers: &[String]) -> Result<(), DataError> {
    for (second, name) in headers.iter().enumerate().filter(|(_, h)| !h.is_empty()) {
        if let Some(first) = headers[..second].iter().position(|h| h == name) {
            return Err(DataError::DuplicateColumn {
                path: path.to_path_buf(),
                name: name.clone(),
                first: first + 1,
                second: second + 1,
            });
        }
    }
    Ok(())
}

impl RowSink for Table {
    type Error = DataError;

    fn start(&mut self, _path: &Path, headers: &[String]) -> Result<(), DataError> {
        self.headers = headers.to_vec();
        self.columns = vec![TextColumn::default(); headers.len()];
        Ok(())
    }

    fn row<'a>(
        &mut self,
        cells: impl Iterator<Item = &'a str>,
        line: u64,
    ) -> Result<(), DataError> {
        for (column, cell) in self.columns.iter_mut().zip(cells) {
            column.push(cell);
        }
        self.lines.push(line);
        Ok(())
    }
}

/// Parses CSV bytes; `path` is only used in messages.
pub fn parse_csv(path: &Path, bytes: &[u8]) -> Result<Table, DataError> {
    let mut table = Table::empty(path);
    let source = csv_into(path, bytes, &mut table)?;
    table.finish(source)?;
    Ok(table)
}

/// Streams CSV from `input` into `sink`, hashing it on the way; `path` is only used in
/// messages. What is held at once is the reader's buffer and the current record.
fn csv_into<S: RowSink>(path: &Path, input: impl Read, sink: &mut S) -> Result<Source, S::Error> {
    let io_err = |source| DataError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut input = std::io::BufReader::with_capacity(
        1 << 16,
        Hashing {
            inner: input,
            hasher: Sha256::new(),
        },
    );
    // The header decides the delimiter: look at the start without consuming it.
    let head = input.fill_buf().map_err(io_err)?;
    let bom = head.starts_with(b"\xEF\xBB\xBF");
    let delimiter = detect_delimiter(if bom { &head[3..] } else { head });
    if bom {
        input.consume(3);
    }
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(true)
        .flexible(true)
        .from_reader(LineBreaks::new(input));
    let malformed = |e: csv::Error, reader: &mut csv::Reader<LineBreaks<_>>| {
        let line = reader.get_mut().record_line(e.position());
        malformed(path, e, line)
    };
    let headers: Vec<String> = match reader.headers() {
        Ok(h) => h.iter().map(|h| h.trim().to_string()).collect(),
        Err(e) => return Err(malformed(e, &mut reader).into()),
    };
    refuse_duplicate_headers(path, &headers)?;
    // The sink hears of the columns with the first row: an empty or header-only file is refused
    // as such, before a sink looks for its columns.
    let mut started = false;
    // Rows may omit the cells of trailing unnamed columns (a header ending in `,,`).
    let named_width = headers.len() - headers.iter().rev().take_while(|h| h.is_empty()).count();
    let mut record = csv::StringRecord::new();
    let mut rows = 0u64;
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => return Err(malformed(e, &mut reader).into()),
        }
        let line = reader.get_mut().record_line(record.position());
        // A blank line in the middle of an export is not a lead.
        if record.len() == 1 && record[0].trim().is_empty() && headers.len() > 1 {
            continue;
        }
        if record.len() != headers.len() && !(named_width..headers.len()).contains(&record.len()) {
            return Err(DataError::Ragged {
                path: path.to_path_buf(),
                line,
                expected: headers.len(),
                found: record.len(),
            }
            .into());
        }
        let cells = record
            .iter()
            .chain(std::iter::repeat(""))
            .take(headers.len());
        if !started {
            sink.start(path, &headers)?;
            started = true;
        }
        sink.row(cells, line)?;
        rows += 1;
    }
    let lines = reader.into_inner();
    if !lines.content {
        return Err(DataError::Empty {
            path: path.to_path_buf(),
        }
        .into());
    }
    if rows == 0 {
        return Err(DataError::NoRows {
            path: path.to_path_buf(),
        }
        .into());
    }
    let hashing = lines.inner.into_inner();
    Ok(Source {
        sha256: format!("{:x}", hashing.hasher.finalize()),
        delimiter,
    })
}

/// Hashes every byte read through it: the file's SHA-256 without holding the file.
struct Hashing<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

impl Table {
    /// A table with no columns yet, to read `path` into.
    pub fn empty(path: &Path) -> Table {
        Table {
            path: path.to_path_buf(),
            headers: Vec::new(),
            columns: Vec::new(),
            lines: Vec::new(),
            sha256: String::new(),
            delimiter: b',',
            warnings: Vec::new(),
        }
    }

    /// Completes a table once its rows are in: where they came from, then the empty unnamed
    /// columns dropped.
    pub fn finish(&mut self, source: Source) -> Result<(), DataError> {
        self.sha256 = source.sha256;
        self.delimiter = source.delimiter;
        if self.lines.is_empty() {
            return Err(DataError::NoRows {
                path: self.path.clone(),
            });
        }
        self.drop_empty_unnamed_columns()
    }

    /// Keeps the rows whose `keep` is true, in order (training's sampler thins a table with it).
    pub fn retain_rows(&mut self, keep: &[bool]) {
        for column in &mut self.columns {
            let mut kept = TextColumn::default();
            for (row, _) in keep.iter().enumerate().filter(|(_, k)| **k) {
                kept.bytes.push_str(column.get(row));
                kept.ends.push(kept.bytes.len());
            }
            *column = kept;
        }
        let mut row = 0;
        self.lines.retain(|_| {
            row += 1;
            keep[row - 1]
        });
    }

    /// Drops columns with no name in the header and no value in any row, with a warning; an
    /// unnamed column that holds a value is refused (it is data nobody can refer to).
    fn drop_empty_unnamed_columns(&mut self) -> Result<(), DataError> {
        let mut dropped = Vec::new();
        for index in (0..self.headers.len()).rev() {
            if !self.headers[index].is_empty() {
                continue;
            }
            let column = &self.columns[index];
            if let Some(row) = (0..column.len()).find(|&r| !column.get(r).trim().is_empty()) {
                return Err(DataError::UnnamedColumn {
                    path: self.path.clone(),
                    line: self.lines[row],
                    column: index + 1,
                    value: column.get(row).chars().take(64).collect(),
                });
            }
            self.headers.remove(index);
            self.columns.remove(index);
            dropped.push(index + 1);
        }
        if !dropped.is_empty() {
            dropped.reverse();
            let list: Vec<String> = dropped.iter().map(usize::to_string).collect();
            self.warnings.push(format!(
                "{}: ignored {} column(s) with no name in the header and no values (column {})",
                self.path.display(),
                dropped.len(),
                list.join(", ")
            ));
        }
        Ok(())
    }
}

/// Physical line numbers of the records a csv reader returns, counted from byte offsets.
///
/// The csv crate's own `Position::line` is not the line an editor shows: it counts only `\n`
/// (every record of a CR-only file is on line 1), gives a record ended by `\r\n` the line of the
/// record before it, and gives the first record after a blank line the blank line's number
/// (BurntSushi/rust-csv#395, #208). Its byte offsets are exact, so lines are counted here from
/// those. The reader sits under the csv reader and notes where each `\r` and `\n` passes; records
/// come in file order, so the breaks before a record are counted and forgotten: what is held is
/// the breaks in the csv reader's buffer, not the file.
struct LineBreaks<R> {
    inner: R,
    /// Offsets of the `\r` and `\n` bytes read but not yet counted, and whether each ends a line
    /// (the `\n` of a `\r\n` ends the same line as its `\r`).
    pending: std::collections::VecDeque<(u64, bool)>,
    /// Bytes read so far.
    offset: u64,
    /// The last byte read, for a `\r\n` split across two reads.
    last: u8,
    /// Whether any byte read is not white space (else the file is empty).
    content: bool,
    /// The 1-based line the counted breaks reach.
    line: u64,
}

impl<R> LineBreaks<R> {
    fn new(inner: R) -> Self {
        LineBreaks {
            inner,
            pending: std::collections::VecDeque::new(),
            offset: 0,
            last: 0,
            content: false,
            line: 1,
        }
    }

    /// The line of the record the reader says starts at `position` (0 when it gave none). The
    /// reader's byte offset is where it stopped after the previous record: possibly before the
    /// `\n` of a `\r\n`, or before blank lines it skips, so line breaks are stepped over first
    /// (no record begins with one: a line break in a field is quoted).
    fn record_line(&mut self, position: Option<&csv::Position>) -> u64 {
        let Some(position) = position else { return 0 };
        let mut start = position.byte();
        while let Some(&(at, ends)) = self.pending.front() {
            if at > start {
                break;
            }
            if at == start {
                start += 1;
            }
            self.line += u64::from(ends);
            self.pending.pop_front();
        }
        self.line
    }
}

impl<R: Read> Read for LineBreaks<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        for &b in &buf[..n] {
            match b {
                b'\r' => self.pending.push_back((self.offset, true)),
                b'\n' => self.pending.push_back((self.offset, self.last != b'\r')),
                b if !b.is_ascii_whitespace() => self.content = true,
                _ => {}
            }
            self.last = b;
            self.offset += 1;
        }
        Ok(n)
    }
}

/// `;` when the header line has more semicolons than commas outside quotes (European exports),
/// else `,`.
fn detect_delimiter(body: &[u8]) -> u8 {
    let (mut commas, mut semicolons, mut quoted) = (0usize, 0usize, false);
    for &b in body {
        match b {
            b'"' => quoted = !quoted,
            b'\n' | b'\r' if !quoted => break,
            b',' if !quoted => commas += 1,
            b';' if !quoted => semicolons += 1,
            _ => {}
        }
    }
    if semicolons > commas { b';' } else { b',' }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Table, DataError> {
        parse_csv(Path::new("leads.csv"), text.as_bytes())
    }

    #[test]
    fn reads_quoted_fields_bom_and_semicolons() {
        let t = parse("\u{feff}id;name;n\n1;\"Smith; John\";3\n2;\"a \"\"b\"\"\";4\n").unwrap();
        assert_eq!(t.delimiter, b';');
        assert_eq!(t.headers, ["id", "name", "n"]);
        assert_eq!(t.column(1).get(0), "Smith; John");
        assert_eq!(t.column(1).get(1), "a \"b\"");
        assert_eq!(t.lines, [2, 3]);
    }

    #[test]
    fn ragged_row_names_file_and_line() {
        let err = parse("a,b\n1,2\n3\n").unwrap_err().to_string();
        assert!(err.contains("leads.csv, line 3"), "{err}");
        assert!(err.contains("1 fields where the header has 2"), "{err}");
    }

    #[test]
    fn empty_unnamed_columns_are_dropped_with_a_warning_and_filled_ones_refused() {
        // An Excel export: empty header cells after the last name, rows with or without them.
        let t = parse("id,n,,\n1,2,,\n3,4\n5,6,\n").unwrap();
        assert_eq!(t.headers, ["id", "n"]);
        assert_eq!(t.columns.len(), 2);
        assert_eq!(t.column(1).get(2), "6");
        assert_eq!(t.warnings.len(), 1);
        assert!(t.warnings[0].contains("(column 3, 4)"), "{:?}", t.warnings);
        // Between named columns too.
        let t = parse("id,,n\n1,,2\n").unwrap();
        assert_eq!(t.headers, ["id", "n"]);
        assert_eq!(t.column(1).get(0), "2");
        // An unnamed column with a value is data nobody can name: refused, naming line and column.
        let err = parse("id,n,\n1,2,\n3,4,oops\n").unwrap_err().to_string();
        assert!(
            err.contains(
                "leads.csv, line 3: column 3 has no name in the header row but holds \"oops\""
            ),
            "{err}"
        );
        // Rows shorter than the named columns are still ragged.
        let err = parse("id,n,\n1\n").unwrap_err().to_string();
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn empty_and_header_only_files_are_refused() {
        assert!(matches!(parse(""), Err(DataError::Empty { .. })));
        assert!(matches!(parse("  \n"), Err(DataError::Empty { .. })));
        assert!(matches!(parse("a,b\n"), Err(DataError::NoRows { .. })));
    }

    #[test]
    fn missing_column_lists_the_available_ones() {
        let t = parse("Lead ID,Converted\n1,0\n").unwrap();
        assert_eq!(t.column_index("lead  id").unwrap(), 0);
        let err = t.column_index("won").unwrap_err().to_string();
        assert!(err.contains("\"Lead ID\", \"Converted\""), "{err}");
    }

    #[test]
    fn lines_are_the_lines_an_editor_shows_whatever_ends_them() {
        // Blank lines, and a quoted field spanning two lines, before the rows named.
        let rows = "a,b\n1,x\n\n2,\"y\nz\"\n\n\n3,w\n";
        let ragged = "a,b\n\n1,x\n2,\"y\nz\"\n\n4\n";
        let not_utf8: &[u8] = b"a,b\n\n1,\"x\ny\"\n2,\xff\n";
        for newline in ["\n", "\r\n", "\r"] {
            let t = parse(&rows.replace('\n', newline)).unwrap();
            assert_eq!(t.lines, [2, 4, 8], "{newline:?}");
            assert_eq!(t.column(1).get(1), format!("y{newline}z"));
            let err = parse(&ragged.replace('\n', newline))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("leads.csv, line 7: 1 fields"),
                "{newline:?}: {err}"
            );
            let bytes: Vec<u8> = not_utf8
                .iter()
                .flat_map(|&b| match b {
                    b'\n' => newline.as_bytes().to_vec(),
                    b => vec![b],
                })
                .collect();
            let err = parse_csv(Path::new("x.csv"), &bytes)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("x.csv, line 5: not valid UTF-8"),
                "{newline:?}: {err}"
            );
        }
    }

    #[test]
    fn the_header_ends_at_a_lone_carriage_return_when_detecting_the_delimiter() {
        // Counted over the whole file, the row's semicolons would outnumber the commas.
        let t = parse("a,b\rx;y;z;w,1\r").unwrap();
        assert_eq!(t.delimiter, b',');
        assert_eq!(t.headers, ["a", "b"]);
        assert_eq!(t.column(0).get(0), "x;y;z;w");
    }

    #[test]
    fn invalid_utf8_is_reported_with_its_line() {
        let err = parse_csv(Path::new("x.csv"), b"a,b\n1,\xff\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2"), "{err}");
        assert!(err.contains("UTF-8"), "{err}");
    }

    #[test]
    fn headers_match_model_fields_under_the_name_rule() {
        let fields = FieldIndex::new(["Lead Source", "region", "visits"]);
        let t = parse("lead_id,LEAD  source,Region\n1,web,north\n").unwrap();
        assert_eq!(
            t.attribute_columns(&fields).unwrap(),
            [Some(1), Some(2), None]
        );

        let t = parse("Lead Source,id,lead source\n1,2,3\n").unwrap();
        let err = t.attribute_columns(&fields).unwrap_err().to_string();
        assert!(
            err.contains(
                "leads.csv: the columns \"Lead Source\" and \"lead source\" both name the \
                 model's field \"Lead Source\""
            ),
            "{err}"
        );

        let t = parse("id,colour\n1,teal\n").unwrap();
        let err = t.attribute_columns(&fields).unwrap_err().to_string();
        assert!(
            err.contains(r#"expected at least one of "Lead Source", "region", "visits""#),
            "{err}"
        );
    }
}
