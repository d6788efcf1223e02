//! Helpers shared by the integration tests: temporary data, the CLI binaries, snapshots.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// How long a command run by a test may take before it is killed and its test fails, naming
/// it: a command that should exit but hangs (a refusal that starts serving instead) must not
/// hang the suite.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs the `leadscore` binary built for these tests to its exit ([`run_to_exit`]).
pub fn leadscore(args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_leadscore"));
    command.args(args).env("RUST_LOG", "warn");
    run_to_exit(&format!("leadscore {}", args.join(" ")), command)
}

/// Runs `command` with standard input closed, collecting its output; after
/// [`COMMAND_TIMEOUT`] it is killed and the test fails with `name` and what it wrote.
pub fn run_to_exit(name: &str, mut command: Command) -> Output {
    let mut run = || {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{name}: cannot start {command:?}: {e}"));
        let read = |mut stream: Box<dyn Read + Send>| {
            std::thread::spawn(move || {
                let mut bytes = Vec::new();
                let _ = stream.read_to_end(&mut bytes);
                bytes
            })
        };
        let stdout = read(Box::new(child.stdout.take().unwrap()));
        let stderr = read(Box::new(child.stderr.take().unwrap()));
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{name}: did not exit within {COMMAND_TIMEOUT:?} ({command:?}):\n{}",
                    String::from_utf8_lossy(&stderr.join().unwrap())
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        Output {
            status,
            stdout: stdout.join().unwrap(),
            stderr: stderr.join().unwrap(),
        }
    };
    // Inside a multi-threaded test runtime the wait must not hold a worker thread that an
    // in-process server of the same test needs.
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(run)
        }
        _ => run(),
    }
}

/// Runs the `leadscore-bench` binary (the serving benchmark's tools) built for these tests.
pub fn leadscore_bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_leadscore-bench"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("the leadscore-bench binary runs")
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Writes `text` to `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Every file below `dir` with its bytes, for before/after comparisons.
pub fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                out.extend(snapshot(&path));
            } else {
                out.push((path.clone(), std::fs::read(&path).unwrap_or_default()));
            }
        }
    }
    out.sort();
    out
}

/// Runs the `leadscore` binary with its training clock set to `trained_at` (RFC 3339): versions
/// are named by the second, so tests stamp each training rather than wait for the clock.
pub fn leadscore_at(trained_at: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_leadscore"))
        .args(args)
        .env("RUST_LOG", "warn")
        .env("LEADSCORE_TRAINED_AT", trained_at)
        .output()
        .expect("the leadscore binary runs")
}
