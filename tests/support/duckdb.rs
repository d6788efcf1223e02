//! DuckDB through its Python package: found in this Python, else installed from PyPI into the
//! user's site-packages (as the OpenAPI validator is), so the README's one test command needs
//! no set-up step.

use std::path::Path;
use std::process::Command;

const PINNED: &str = "duckdb==2.0.0";

/// Runs `script` (SQL statements separated by `;`, the last one a query) in a fresh in-memory
/// DuckDB and returns the last query's rows as CSV with a header (NULL as an empty field).
pub fn query(dir: &Path, script: &str) -> String {
    ensure_installed();
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

fn ensure_installed() {
    static READY: std::sync::Once = std::sync::Once::new();
    READY.call_once(|| {
        let found = Command::new("python3")
            .args(["-c", "import duckdb"])
            .output()
            .is_ok_and(|o| o.status.success());
        if found {
            return;
        }
        let output = Command::new("python3")
            .args(["-m", "pip", "install", "--user", "--quiet"])
            .args(["--disable-pip-version-check", PINNED])
            .output()
            .expect("python3 runs (the tests need Python 3 with pip)");
        assert!(
            output.status.success(),
            "installing {PINNED} from PyPI failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    });
}
