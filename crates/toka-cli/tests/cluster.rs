#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr
)]
//! Several `toka serve` processes sharing one PostgreSQL log.
//!
//! Needs PostgreSQL (`TOKA_POSTGRES_URL`, default 127.0.0.1:5432, database `test`, the
//! current user). Outside CI, with no server reachable, it says so loudly and skips.

mod util;

use std::collections::HashMap;
use std::process::Command;

use serde_json::{Value, json};
use util::*;

fn pg_reachable() -> bool {
    psql("select 1")
}

fn start_node(dir: &std::path::Path, schema: &str) -> Server {
    Server::start_with(dir, |c| postgres_env(c, schema))
}

async fn state(url: &str, token: &str) -> Value {
    reqwest::Client::new()
        .get(format!("{url}/v1/state"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Submitters per node, each scheduling `count` tasks with unique descriptions; returns
/// (description, acknowledged seq) pairs.
async fn load(
    urls: &[String],
    token: &str,
    root: &str,
    tag: &str,
    count: usize,
) -> Vec<(String, u64)> {
    let mut tasks = Vec::new();
    for (n, url) in urls.iter().enumerate() {
        for s in 0..8 {
            let (url, token, root, tag) = (
                url.clone(),
                token.to_string(),
                root.to_string(),
                tag.to_string(),
            );
            tasks.push(tokio::spawn(async move {
                let client = reqwest::Client::new();
                let mut acked = Vec::new();
                for i in 0..count {
                    let what = format!("{tag}-n{n}-s{s}-{i}");
                    let body = json!({"operation": {"op": "schedule_agent_task", "agent": root, "task": {"description": what}}});
                    let Ok(response) = client.post(format!("{url}/v1/messages")).bearer_auth(&token).json(&body).send().await else {
                        break; // the node went away (killed on purpose)
                    };
                    if response.status().is_success() {
                        let v: Value = response.json().await.unwrap();
                        acked.push((what, v["events"][0]["seq"].as_u64().unwrap()));
                    } else {
                        eprintln!("node {n} refused {what}: {}", response.text().await.unwrap_or_default());
                    }
                }
                acked
            }));
        }
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all
}

async fn wait_converged(urls: &[String], token: &str) -> Value {
    for _ in 0..200 {
        let states: Vec<Value> =
            futures::future::join_all(urls.iter().map(|u| state(u, token))).await;
        if states
            .windows(2)
            .all(|w| w[0]["head"] == w[1]["head"] && w[0]["state_digest"] == w[1]["state_digest"])
        {
            return states[0].clone();
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("nodes did not converge");
}

async fn check_log(url: &str, token: &str, acked: &[(String, u64)], head: u64) {
    let client = reqwest::Client::new();
    let mut seen: HashMap<String, u64> = HashMap::new();
    let mut next = 1;
    while next <= head {
        let page: Value = client
            .get(format!("{url}/v1/events?from={next}&limit=1000"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for e in page["events"].as_array().unwrap() {
            let seq = e["seq"].as_u64().unwrap();
            assert_eq!(seq, next, "gap in the shared log");
            next += 1;
            if let Some(d) = e["event"]["spec"]["description"].as_str() {
                assert!(
                    seen.insert(d.to_string(), seq).is_none(),
                    "{d} appears twice"
                );
            }
        }
    }
    for (what, seq) in acked {
        assert_eq!(
            seen.get(what),
            Some(seq),
            "acknowledged {what} not at seq {seq}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_share_one_log_and_a_killed_node_catches_up() {
    if !pg_reachable() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have PostgreSQL at {}",
            pg_url()
        );
        eprintln!(
            "\n*** SKIPPED three_nodes_share_one_log: no PostgreSQL at {} (set TOKA_POSTGRES_URL) ***\n",
            pg_url()
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let schema = format!("toka_cluster_{}", std::process::id());
    let _ = Command::new("psql")
        .arg(pg_url())
        .args(["-c", &format!("DROP SCHEMA IF EXISTS {schema} CASCADE")])
        .output();
    let (root, token) = init_with(dir.path(), |c| postgres_env(c, &schema));

    let nodes: Vec<Server> = (0..3).map(|_| start_node(dir.path(), &schema)).collect();
    let urls: Vec<String> = nodes.iter().map(|n| n.url.clone()).collect();

    // An SSE subscriber on node B sees what is submitted on node A.
    let head = state(&urls[1], &token).await["head"].as_u64().unwrap();
    let stream = reqwest::Client::new()
        .get(format!("{}/v1/events/stream?from={}", urls[1], head + 1))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let body = json!({"operation": {"op": "schedule_agent_task", "agent": root, "task": {"description": "from node A"}}});
    let r = reqwest::Client::new()
        .post(format!("{}/v1/messages", urls[0]))
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let mut bytes = stream.bytes_stream();
    let mut text = String::new();
    while !text.contains("from node A") {
        use futures::StreamExt as _;
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(10), bytes.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }

    // Phase 1: 3 nodes x 8 submitters.
    let acked = load(&urls, &token, &root, "p1", 25).await;
    assert_eq!(
        acked.len(),
        3 * 8 * 25,
        "every submit on every node was acknowledged"
    );
    let converged = wait_converged(&urls, &token).await;
    check_log(
        &urls[0],
        &token,
        &acked,
        converged["head"].as_u64().unwrap(),
    )
    .await;

    // Phase 2: node C is killed mid-run; A and B keep accepting.
    let mut nodes = nodes;
    let c = nodes.pop().unwrap();
    let survivors = urls[..2].to_vec();
    let run = tokio::spawn({
        let (urls, token, root) = (urls.clone(), token.clone(), root.clone());
        async move { load(&urls, &token, &root, "p2", 25).await }
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    drop(c); // SIGKILL
    let acked2 = run.await.unwrap();
    assert!(
        acked2.len() >= 2 * 8 * 25,
        "the surviving nodes kept accepting ({} acks)",
        acked2.len()
    );
    let converged = wait_converged(&survivors, &token).await;

    // The restarted node catches up to the same head and digest.
    let c = start_node(dir.path(), &schema);
    let all = vec![urls[0].clone(), urls[1].clone(), c.url.clone()];
    let final_state = wait_converged(&all, &token).await;
    assert_eq!(final_state["head"], converged["head"]);
    let mut everything = acked.clone();
    everything.extend(acked2);
    check_log(
        &c.url,
        &token,
        &everything,
        final_state["head"].as_u64().unwrap(),
    )
    .await;
    drop(nodes);
    drop(c);
    let _ = Command::new("psql")
        .arg(pg_url())
        .args(["-c", &format!("DROP SCHEMA IF EXISTS {schema} CASCADE")])
        .output();
}
