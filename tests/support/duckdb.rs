//! DuckDB through its Python package (pinned; found or installed by [`super::python`]).

use std::path::Path;
use std::process::Command;

const PINNED: &str = "duckdb==2.0.0";

/// Runs `script` (SQL statements separated by `;`, the last one a query) in a fresh in-memory
/// DuckDB and returns the last query's rows as CSV with a header (NULL as an empty field).
pub fn query(dir: &Path, script: &str) -> String {
    super::python::ensure_package("duckdb", PINNED);
    let sql = dir.join("duckdb_script.sql");
    std::fs::write(&sql, script).unwrap();
    let out = dir.join("duckdb_result.csv");
    let program = "import duckdb, sys\n\
        con = duckdb.connect()\n\
        statements = [s for s in open(sys.argv[1]).read().split(';\\n') if s.strip()]\n\
        for s in statements[:-1]:\n    con.execute(s)\n\
        con.execute(f\"COPY ({statements[-1].strip().rstrip(';')}) TO '{sys.argv[2]}' (HEADER)\")\n";
    let output = Command::new("python3")
        .args(["-c", program])
        .arg(&sql)
        .arg(&out)
        .output()
        .expect("python3 runs (the tests need Python 3 with pip)");
    assert!(
        output.status.success(),
        "duckdb: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::read_to_string(out).unwrap()
}
