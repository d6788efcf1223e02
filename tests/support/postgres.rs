//! A real PostgreSQL server for a test: found on this machine (PATH, then the newest
//! `/usr/lib/postgresql/*/bin`) or installed from Debian's `postgresql` package, initialised in
//! a temporary directory and listening on 127.0.0.1 at a free port (its unix socket in the same
//! directory). Each test that needs one starts its own and the server is stopped, and its
//! directory removed, when the test's [`PgServer`] is dropped (on a failing test too).
//!
//! PostgreSQL refuses to run as root: as root the server runs as the `postgres` user (else
//! `nobody`) through `setpriv`, its directory chowned to that user.

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Instant;

/// The database superuser the tests connect as; its password is set per server.
pub const USER: &str = "leadscore_test";

pub struct PgServer {
    /// The data directory (`data/`), the socket, the log and the password file.
    dir: tempfile::TempDir,
    pub port: u16,
    /// The password of [`USER`] over TCP (the unix socket trusts the tests' own `psql`).
    pub password: String,
    bin: PathBuf,
    /// Who the server runs as, when the tests run as root: (uid, gid).
    run_as: Option<(u32, u32)>,
}

impl PgServer {
    /// Initialises and starts a server; fails the test, saying what to install, when
    /// PostgreSQL can be neither found nor installed.
    pub fn start() -> PgServer {
        let bin = binaries().clone();
        let dir = tempfile::tempdir().expect("a temporary directory");
        let run_as = run_as();
        let password = format!(
            "pw-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        );
        std::fs::write(dir.path().join("pwfile"), &password).unwrap();
        if let Some((uid, gid)) = run_as {
            chown_tree(dir.path(), uid, gid);
        }
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let mut server = PgServer {
            dir,
            port: 0,
            password,
            bin,
            run_as,
        };
        let data = server.data_dir();
        let pwfile = server.dir.path().join("pwfile");
        let output = server.as_server_user(&server.bin.join("initdb"), |c| {
            c.arg("-D")
                .arg(&data)
                .args(["-U", USER, "-E", "UTF8", "--no-locale", "--no-sync"])
                .args(["--auth-local=trust", "--auth-host=scram-sha-256"])
                .arg(format!("--pwfile={}", pwfile.display()));
        });
        assert!(output.status.success(), "initdb failed: {}", text(&output));
        // A free port can be taken between finding it and the server binding it: try again.
        for attempt in 0.. {
            server.port = free_port();
            if server.pg_ctl_start() {
                break;
            }
            assert!(attempt < 3, "PostgreSQL did not start:\n{}", server.log());
        }
        server
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Starts the server on its data directory and port; `false` when it did not start.
    fn pg_ctl_start(&self) -> bool {
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -c unix_socket_directories='{}' -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let (data, log) = (self.data_dir(), self.dir.path().join("log"));
        let output = self.as_server_user(&self.bin.join("pg_ctl"), |c| {
            c.arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(&log)
                .args(["-o", &options, "-w", "-t", "60", "start"]);
        });
        output.status.success()
    }

    /// Starts it again after [`PgServer::stop`], on the same port.
    pub fn restart(&self) {
        assert!(
            self.pg_ctl_start(),
            "PostgreSQL did not restart:\n{}",
            self.log()
        );
    }

    /// Stops the server at once, as a crash or a power cut would (`immediate`: no checkpoint,
    /// open transactions are lost, not finished).
    pub fn stop(&self) {
        let data = self.data_dir();
        let output = self.as_server_user(&self.bin.join("pg_ctl"), |c| {
            c.arg("-D")
                .arg(&data)
                .args(["-m", "immediate", "-w", "stop"]);
        });
        assert!(output.status.success(), "pg_ctl stop: {}", text(&output));
    }

    /// A connection URL for `leadscore` (no password: it comes from PGPASSWORD or .pgpass).
    pub fn url(&self) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/postgres", self.port)
    }

    /// Runs SQL through `psql` on the unix socket; returns what it printed (unaligned, tuples
    /// only), failing the test on an error.
    pub fn psql(&self, sql: &str) -> String {
        let output = self.try_psql(sql);
        assert!(output.status.success(), "psql {sql}: {}", text(&output));
        String::from_utf8(output.stdout).unwrap()
    }

    pub fn try_psql(&self, sql: &str) -> Output {
        Command::new(self.bin.join("psql"))
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
            .arg("-h")
            .arg(self.dir.path())
            .args(["-p", &self.port.to_string(), "-U", USER, "-d", "postgres"])
            .args(["-c", sql])
            .env_remove("PGPASSWORD")
            .output()
            .expect("psql runs")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    /// Runs a server binary, as the server's user when the tests run as root.
    fn as_server_user(&self, program: &Path, args: impl FnOnce(&mut Command)) -> Output {
        let mut command = match self.run_as {
            Some((uid, gid)) => {
                let mut c = Command::new("setpriv");
                c.arg(format!("--reuid={uid}"))
                    .arg(format!("--regid={gid}"))
                    .arg("--clear-groups")
                    .arg(program);
                c
            }
            None => Command::new(program),
        };
        args(&mut command);
        command
            .current_dir(self.dir.path())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()))
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let data = self.data_dir();
        if data.join("postmaster.pid").exists() {
            let _ = self.as_server_user(&self.bin.join("pg_ctl"), |c| {
                c.arg("-D")
                    .arg(&data)
                    .args(["-m", "immediate", "-w", "stop"]);
            });
        }
        // The TempDir removes the directory (root may remove what the server's user owns).
    }
}

fn text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).to_string() + &String::from_utf8_lossy(&output.stderr)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a loopback port")
        .port()
}

/// Who the server runs as when the tests run as root: `postgres` (Debian's package creates
/// it), else `nobody`.
fn run_as() -> Option<(u32, u32)> {
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    for user in ["postgres", "nobody"] {
        let id = |flag: &str| {
            Command::new("id")
                .args([flag, user])
                .output()
                .ok()
                .filter(|o| o.status.success())
                .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse().ok())
        };
        if let (Some(uid), Some(gid)) = (id("-u"), id("-g")) {
            return Some((uid, gid));
        }
    }
    panic!(
        "running as root, and neither a `postgres` nor a `nobody` user exists to run PostgreSQL as"
    );
}

fn chown_tree(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
    if path.is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            chown_tree(&entry.unwrap().path(), uid, gid);
        }
    }
}

/// The directory holding `initdb`, `pg_ctl`, `postgres` and `psql`: found, else installed
/// (once per test run).
fn binaries() -> &'static PathBuf {
    static FOUND: OnceLock<PathBuf> = OnceLock::new();
    FOUND.get_or_init(|| {
        if let Some(dir) = find_binaries() {
            return dir;
        }
        let attempt = install();
        find_binaries().unwrap_or_else(|| {
            panic!(
                "PostgreSQL's server programs (initdb, pg_ctl, postgres, psql) are not on PATH \
                 nor in /usr/lib/postgresql/*/bin, and installing them failed ({attempt}). \
                 Install PostgreSQL (on Debian or Ubuntu: `apt-get install postgresql`) and \
                 run the tests again."
            )
        })
    })
}

fn find_binaries() -> Option<PathBuf> {
    let complete = |dir: &Path| {
        ["initdb", "pg_ctl", "postgres", "psql"]
            .iter()
            .all(|b| dir.join(b).is_file())
    };
    // On PATH (a symlink, as Debian's /usr/bin wrappers are not the server programs, leads to
    // the directory that has them all).
    for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
        if let Ok(real) = std::fs::canonicalize(dir.join("initdb"))
            && let Some(parent) = real.parent()
            && complete(parent)
        {
            return Some(parent.to_path_buf());
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let version = e.file_name().to_str()?.parse().ok()?;
            Some((version, e.path().join("bin")))
        })
        .filter(|(_, bin)| complete(bin))
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

/// Installs Debian's `postgresql` package (as root, else with `sudo -n`); says what happened.
fn install() -> String {
    if !Path::new("/etc/debian_version").exists() {
        return "not a Debian machine: nothing installed".into();
    }
    let root = unsafe { libc::geteuid() } == 0;
    let apt = |args: &[&str]| -> Result<(), String> {
        let mut command = if root {
            Command::new("apt-get")
        } else {
            let mut c = Command::new("sudo");
            c.args(["-n", "apt-get"]);
            c
        };
        let output = command
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output()
            .map_err(|e| format!("cannot run apt-get: {e}"))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(text(&output).lines().last().unwrap_or_default().to_string())
        }
    };
    let start = Instant::now();
    let installed = apt(&["install", "-y", "-q", "postgresql"]).or_else(|_| {
        apt(&["update", "-q"])?;
        apt(&["install", "-y", "-q", "postgresql"])
    });
    match installed {
        Ok(()) => format!("installed in {:?}", start.elapsed()),
        Err(e) => format!("apt-get install postgresql: {e}"),
    }
}
