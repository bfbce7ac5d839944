#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The routes the web console reads: `GET /v1/overview` (trust and load at a glance),
//! `GET /v1/agents/{id}/activity` (one agent's newest events, paged backwards) and
//! the budgets in the agent views — against a real `toka serve`, including an
//! attacker editing the running node's log with `sqlite3`.

mod util;

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use util::*;

async fn get(server: &Server, token: &str, path: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .get(format!("{}{path}", server.url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn agent_id(r: &Run) -> String {
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    v["events"][0]["event"]["agent"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overview_activity_and_budgets_show_what_the_log_holds() {
    let dir = tempfile::tempdir().unwrap();
    let (_, admin) = init(dir.path());
    let server = Server::start(dir.path());
    let worker = agent_id(&client(
        &server,
        &admin,
        &["--json", "agent", "spawn", "worker"],
    ));
    let other = agent_id(&client(
        &server,
        &admin,
        &["--json", "agent", "spawn", "other"],
    ));
    let r = client(
        &server,
        &admin,
        &[
            "--json",
            "token",
            "issue",
            "--sub",
            &worker,
            "--perm",
            "observation:emit",
            "--perm",
            "tool:fs.list",
            "--budget-tool-calls",
            "5",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let wt = serde_json::from_str::<Value>(r.stdout.trim()).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    for i in 0..7 {
        let who = if i % 2 == 0 { &worker } else { &other };
        let r = client(
            &server,
            &admin,
            &["observe", "--agent", who, &format!("note {i}")],
        );
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
    let r = client(
        &server,
        &wt,
        &["tool", "call", "fs.list", "--input", r#"{"path":"."}"#],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);

    // Budgets: the worker's token has 4 of its 5 tool calls left; `other` has none.
    let (status, agents) = get(&server, &admin, "/v1/agents").await;
    assert_eq!(status, 200);
    let find = |id: &str| {
        agents["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["id"] == id)
            .cloned()
            .unwrap()
    };
    assert_eq!(
        find(&worker)["budgets"][0]["left"],
        json!({"tool_calls": 4})
    );
    assert!(find(&other).get("budgets").is_none());

    // Activity: only the worker's events, newest first, paged with next_before.
    let mut seen = Vec::new();
    let mut path = format!("/v1/agents/{worker}/activity?limit=2");
    loop {
        let (status, page) = get(&server, &admin, &path).await;
        assert_eq!(status, 200, "{page}");
        for e in page["events"].as_array().unwrap() {
            seen.push((
                e["seq"].as_u64().unwrap(),
                e["kind"].as_str().unwrap().to_string(),
            ));
            let concerns = e["origin"] == worker.as_str()
                || e["event"]["agent"] == worker.as_str()
                || e["event"]["sub"] == worker.as_str()
                || e["kind"].as_str().unwrap().starts_with("tool.")
                || e["kind"] == "budget.spent";
            assert!(concerns, "{e}");
        }
        match page["next_before"].as_u64() {
            Some(before) => path = format!("/v1/agents/{worker}/activity?limit=2&before={before}"),
            None => break,
        }
    }
    let seqs: Vec<u64> = seen.iter().map(|(s, _)| *s).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] > w[1]),
        "newest first: {seqs:?}"
    );
    let notes = seen
        .iter()
        .filter(|(_, k)| k == "observation.emitted")
        .count();
    assert_eq!(notes, 4, "notes 0, 2, 4 and 6: {seen:?}");
    for kind in [
        "agent.spawned",
        "token.issued",
        "tool.called",
        "tool.returned",
    ] {
        assert!(seen.iter().any(|(_, k)| k == kind), "{kind} in {seen:?}");
    }
    let (status, e) = get(
        &server,
        &admin,
        &format!("/v1/agents/{worker}/activity?limit=0"),
    )
    .await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (400, Some("bad_request"))
    );
    let (status, _) = get(&server, &wt, &format!("/v1/agents/{other}/activity")).await;
    assert_eq!(
        status, 404,
        "another agent's activity is out of the worker's scope"
    );

    // Overview: the newest checkpoint matches the log, commit rates appear.
    let deadline = Instant::now() + Duration::from_secs(20);
    let overview = loop {
        let (status, o) = get(&server, &wt, "/v1/overview").await;
        assert_eq!(status, 200, "{o}");
        if o["commit_rate"].as_array().unwrap().len() >= 2 && o["checkpoint"].is_object() {
            break o;
        }
        assert!(Instant::now() < deadline, "no rates or checkpoint: {o}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let cp = &overview["checkpoint"];
    assert_eq!(cp["signature_valid"], true, "{overview}");
    assert_eq!(cp["matches_log"], true, "{overview}");
    assert_eq!(
        cp["behind"].as_u64().unwrap(),
        overview["head"].as_u64().unwrap() - cp["seq"].as_u64().unwrap()
    );
    assert!(
        overview["commit_rate"][0]["events_per_sec"]
            .as_f64()
            .unwrap()
            >= 0.0
    );
    let (status, _) = get(&server, "not-a-token", "/v1/overview").await;
    assert_eq!(status, 401);

    // An attacker rewrites the checkpointed record's digest under the running node:
    // the overview says the log no longer matches.
    let seq = cp["seq"].as_u64().unwrap();
    let out = Command::new("sqlite3")
        .arg(dir.path().join("data/toka.db"))
        .arg(format!(
            "UPDATE events SET digest = zeroblob(32) WHERE seq = {seq}"
        ))
        .output()
        .expect("the sqlite3 command-line tool (scripts/test.sh installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (status, o) = get(&server, &admin, "/v1/overview").await;
    assert_eq!(status, 200);
    assert_eq!(o["checkpoint"]["matches_log"], false, "{o}");
    assert!(o["checkpoint"]["problem"].is_string(), "{o}");
}
