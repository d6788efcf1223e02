//! The serving benchmark's tools (`leadscore-bench`, a separate binary), run as processes: the
//! no-op ceiling server, and the load generator against it and the real server.

use crate::common::{leadscore, leadscore_bench, stderr};
use crate::server::{fixture, registry, score_request, start_serving};
use leadscore::server::pb;
use leadscore::server::pb::lead_scoring_client::LeadScoringClient;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub(crate) const BENCH: &str = env!("CARGO_BIN_EXE_leadscore-bench");

/// `leadscore-bench ceiling --addr 127.0.0.1:0`, its log collected; killed when dropped.
struct Ceiling {
    child: Child,
    addr: SocketAddr,
    log: Arc<Mutex<String>>,
}

impl Ceiling {
    /// Starts the ceiling and waits until it says where it listens.
    fn start() -> Ceiling {
        let mut child = Command::new(BENCH)
            .args(["ceiling", "--addr", "127.0.0.1:0"])
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().unwrap();
        let lines = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = lines.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = log.lock().unwrap().clone();
            if let Some(rest) = text.split("listening on ").nth(1) {
                let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
                let addr = rest[..end].parse().unwrap();
                return Ceiling { child, addr, log };
            }
            assert!(
                child.try_wait().unwrap().is_none(),
                "ceiling exited: {text}"
            );
            assert!(
                Instant::now() < deadline,
                "the ceiling did not start: {text}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Ceiling {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The report's line for `round` and `server`, split into its columns.
fn row<'a>(report: &'a str, round: &str, server: &str) -> Vec<&'a str> {
    report
        .lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .find(|columns| columns.len() == 8 && columns[0] == round && columns[1] == server)
        .unwrap_or_else(|| panic!("no {round} {server} line in:\n{report}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_load_generator_measures_the_server_and_the_noop_ceiling() {
    let f = fixture();
    let models = registry(&[&f.a], Some("test-a"));
    let server = start_serving(models.path(), |_| {}).await;
    let ceiling = Ceiling::start();

    // The ceiling answers with a constant, whatever the lead.
    let empty = LeadScoringClient::connect(ceiling.url())
        .await
        .unwrap()
        .score_lead(score_request(pb::Lead::default(), 3))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(empty, pb::ScoreLeadResponse::default());

    let pids = format!("{},{}", std::process::id(), ceiling.child.id());
    let (target, ceiling_url) = (server.url(), ceiling.url());
    let data = f.data.to_str().unwrap().to_string();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(BENCH)
            .args(["load", "--target", &target, "--ceiling", &ceiling_url])
            .args(["--data", &data, "--id", "lead_id", "--exclude", "converted"])
            .args(["--concurrency", "4", "--batch", "10", "--explain", "3"])
            .args(["--warmup", "0.05", "--duration", "0.3", "--rounds", "1"])
            .args(["--server-pids", &pids, "--json"])
            .env("RUST_LOG", "warn")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let (report, err) = (String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert!(out.status.success(), "{err}\n{report}");
    assert!(
        err.contains("ScoreLeads × 10, concurrency 4,") && err.contains(", 11 fields per lead;"),
        "every column but the id and the outcome is sent: {err}"
    );
    for name in ["leadscore", "json", "ceiling"] {
        for round in ["1", "median"] {
            let columns = row(&report, round, name);
            let number = |i: usize| columns[i].parse::<f64>().unwrap();
            let (calls, leads, p50, p99) = (number(2), number(3), number(4), number(5));
            assert!(calls > 0.0, "{report}");
            // Both are rounded to whole numbers per second.
            assert!((leads - 10.0 * calls).abs() <= 10.0, "{report}");
            assert!(p50 <= p99, "{report}");
            assert_eq!(columns[6], "0", "no errors: {report}");
            assert!(number(7) > 0.0, "CPU per call from the pids: {report}");
        }
    }
    assert!(
        report.contains("% of the no-op ceiling (medians; per round: "),
        "{report}"
    );
    assert!(
        report.contains("server CPU per call over all rounds: leadscore "),
        "{report}"
    );
    // The JSON API on the same address, the same leads, beside gRPC.
    assert!(
        report.contains("JSON throughput: ")
            && report.contains("% of gRPC's (medians; per round: "),
        "{report}"
    );
    assert!(
        report.contains("server CPU per call over all rounds: gRPC "),
        "{report}"
    );

    // SIGTERM stops the ceiling cleanly.
    let status = Command::new("kill")
        .args(["-TERM", &ceiling.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut ceiling = ceiling;
    let code = tokio::task::block_in_place(|| ceiling.child.wait().unwrap().code());
    std::thread::sleep(Duration::from_millis(100)); // the reader finishes
    let log = ceiling.log.lock().unwrap().clone();
    assert_eq!(code, Some(0), "{log}");
    assert!(
        log.contains("SIGTERM received") && log.contains("stopped"),
        "{log}"
    );
    server.stop().await;
}

#[test]
fn the_product_has_no_benchmark_modes() {
    for args in [vec!["serve", "--noop"], vec!["bench", "--help"]] {
        let out = leadscore(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn ceiling_refusals_say_why() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = crate::common::write(dir.path(), "garbage.pem", "not a certificate\n");
    let garbage = garbage.to_str().unwrap();
    let missing = dir.path().join("missing.pem");
    let missing = missing.to_str().unwrap();
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_addr = busy.local_addr().unwrap().to_string();
    let cases: [(&[&str], &str); 4] = [
        (
            &["--addr", "0.0.0.0:0"],
            "pass --insecure to serve it anyway",
        ),
        (&["--addr", &busy_addr], "binding --addr"),
        (
            &[
                "--addr",
                "127.0.0.1:0",
                "--tls-cert",
                missing,
                "--tls-key",
                garbage,
            ],
            "reading --tls-cert",
        ),
        (
            &[
                "--addr",
                "127.0.0.1:0",
                "--tls-cert",
                garbage,
                "--tls-key",
                garbage,
            ],
            "TLS configuration (--tls-cert/--tls-key)",
        ),
    ];
    for (args, message) in cases {
        let out = leadscore_bench(&[&["ceiling"], args].concat());
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains(message),
            "{args:?}: expected {message:?} in {err}"
        );
    }
    drop(busy);
}
