#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr
)]
//! Issue 9: two `toka serve` nodes on one PostgreSQL log keep working through a
//! restart of PostgreSQL itself, without being restarted: they answer `unavailable`
//! (503 with `Retry-After`) while it is down, serve again by themselves within 30 s,
//! re-open their LISTEN connection, converge to one head and digest, and every
//! acknowledged message is in the log exactly once.
//!
//! Its own test binary: it restarts the machine's PostgreSQL, which no other test may
//! be using at that moment. Needs PostgreSQL and `pg_ctlcluster` (run as root, as CI
//! is); outside CI without them it says so loudly and skips.

mod util;

use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use util::*;

fn pg_version() -> Option<String> {
    std::fs::read_dir("/etc/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .next()
}

fn restart_postgres(version: &str) {
    let status = Command::new("pg_ctlcluster")
        .args(["--skip-systemctl-redirect", version, "main", "restart"])
        .status()
        .unwrap();
    assert!(status.success(), "pg_ctlcluster restart failed");
}

struct Outcomes {
    acked: Vec<(String, u64)>,
    unknown: Vec<String>,
    unavailable_seen: u64,
}

/// One submitter on `url`: `count` tasks; a 503 that says nothing was written is
/// retried with the same message, a `commit_unknown` is not (it may be in the log).
async fn submitter(
    url: String,
    token: String,
    root: String,
    tag: String,
    count: usize,
) -> Outcomes {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut out = Outcomes {
        acked: Vec::new(),
        unknown: Vec::new(),
        unavailable_seen: 0,
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    for i in 0..count {
        let what = format!("{tag}-{i}");
        let body = json!({"operation": {"op": "schedule_agent_task", "agent": root, "task": {"description": what}}});
        loop {
            assert!(Instant::now() < deadline, "{tag}: no progress for 90 s");
            let response = client
                .post(format!("{url}/v1/messages"))
                .bearer_auth(&token)
                .json(&body)
                .send()
                .await;
            let Ok(response) = response else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let status = response.status().as_u16();
            let retry_after = response.headers().get("retry-after").is_some();
            let v: Value = response.json().await.unwrap_or(Value::Null);
            if status == 200 {
                out.acked
                    .push((what.clone(), v["events"][0]["seq"].as_u64().unwrap()));
                break;
            }
            let code = v["error"]["code"].as_str().unwrap_or("").to_string();
            assert_eq!(status, 503, "{tag}: unexpected answer {status} {v}");
            assert!(retry_after, "{tag}: 503 without Retry-After: {v}");
            if code == "commit_unknown" {
                out.unknown.push(what.clone());
                break;
            }
            assert!(
                ["unavailable", "storage", "busy"].contains(&code.as_str()),
                "{tag}: {v}"
            );
            out.unavailable_seen += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    out
}

async fn get(url: &str, path: &str, token: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .get(format!("{url}{path}"))
        .bearer_auth(token)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_survive_a_postgres_restart_without_being_restarted() {
    let under_ci = std::env::var_os("CI").is_some();
    let version = pg_version();
    if !psql("select 1") || version.is_none() {
        assert!(
            !under_ci,
            "CI must have PostgreSQL and pg_ctlcluster at {}",
            pg_url()
        );
        eprintln!("\n*** SKIPPED pg_restart: no PostgreSQL cluster to restart ***\n");
        return;
    }
    let version = version.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let schema = format!("toka_restart_{}", std::process::id());
    psql(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
    let env = |c: &mut Command| postgres_env(c, &schema);
    let (root, token) = init_with(dir.path(), env);
    let a = Server::start_with(dir.path(), |c| env(c));
    let b = Server::start_with(dir.path(), |c| env(c));
    let urls = [a.url.clone(), b.url.clone()];

    // Submitters on both nodes; PostgreSQL restarts under them.
    let mut load = Vec::new();
    for (n, url) in urls.iter().enumerate() {
        for s in 0..4 {
            load.push(tokio::spawn(submitter(
                url.clone(),
                token.clone(),
                root.clone(),
                format!("n{n}-s{s}"),
                60,
            )));
        }
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    restart_postgres(&version);
    let back = Instant::now();

    // Both nodes accept submissions again within 30 s, by themselves.
    for url in &urls {
        loop {
            let (status, v) = get(url, "/readyz", &token).await;
            if status == 200 {
                break;
            }
            assert_eq!(status, 503, "{v}");
            assert!(
                back.elapsed() < Duration::from_secs(30),
                "{url} not ready 30 s after PostgreSQL came back: {v}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let mut outcomes = Vec::new();
    for t in load {
        outcomes.push(t.await.unwrap());
    }
    let acked: Vec<(String, u64)> = outcomes.iter().flat_map(|o| o.acked.clone()).collect();
    let unknown: Vec<String> = outcomes.iter().flat_map(|o| o.unknown.clone()).collect();
    let refused: u64 = outcomes.iter().map(|o| o.unavailable_seen).sum();
    eprintln!(
        "pg_restart: {} acknowledged, {} commit_unknown, {refused} retried 503s",
        acked.len(),
        unknown.len()
    );
    assert_eq!(acked.len() + unknown.len(), 2 * 4 * 60);

    // One more message on node A only: node B learns of it through its re-opened LISTEN.
    let body = json!({"operation": {"op": "schedule_agent_task", "agent": root, "task": {"description": "after the restart"}}});
    let r = reqwest::Client::new()
        .post(format!("{}/v1/messages", urls[0]))
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let mut converged = None;
    for _ in 0..300 {
        let (_, sa) = get(&urls[0], "/v1/state", &token).await;
        let (_, sb) = get(&urls[1], "/v1/state", &token).await;
        if sa["head"] == sb["head"] && sa["state_digest"] == sb["state_digest"] {
            converged = Some(sa);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let converged = converged.expect("the nodes did not converge after the restart");
    let head = converged["head"].as_u64().unwrap();

    // Every acknowledged message exactly once at its seq; an unknown one at most once.
    let mut seen: HashMap<String, Vec<u64>> = HashMap::new();
    let mut next = 1;
    while next <= head {
        let (_, page) = get(
            &urls[1],
            &format!("/v1/events?from={next}&limit=1000"),
            &token,
        )
        .await;
        for e in page["events"].as_array().unwrap() {
            let seq = e["seq"].as_u64().unwrap();
            assert_eq!(seq, next, "gap in the shared log");
            next += 1;
            if let Some(d) = e["event"]["spec"]["description"].as_str() {
                seen.entry(d.to_string()).or_default().push(seq);
            }
        }
    }
    for (what, seq) in &acked {
        assert_eq!(seen.get(what), Some(&vec![*seq]), "acknowledged {what}");
    }
    for what in &unknown {
        assert!(seen.get(what).map_or(0, Vec::len) <= 1, "{what} twice");
    }
    drop(a);
    drop(b);
    psql(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
}
