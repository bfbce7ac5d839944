#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Workers: claim the next task (waiting for one), cancel and requeue, against a real
//! `toka serve`.

mod util;

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use util::*;

fn json(r: &Run) -> Value {
    assert_eq!(r.code, 0, "{}", r.stderr);
    serde_json::from_str(r.stdout.trim()).unwrap()
}

fn schedule(server: &Server, admin: &str, agent: &str, what: &str) -> String {
    json(&client(
        server,
        admin,
        &["--json", "task", "schedule", "--agent", agent, what],
    ))["events"][0]["event"]["task"]
        .as_str()
        .unwrap()
        .to_string()
}

fn state_of(server: &Server, admin: &str, agent: &str, task: &str) -> String {
    let r = client(server, admin, &["--json", "task", "list", "--agent", agent]);
    let v = json(&r);
    let items = v
        .as_array()
        .cloned()
        .unwrap_or_else(|| v["items"].as_array().unwrap().clone());
    items
        .iter()
        .find(|t| t["id"] == task)
        .map(|t| t["state"].as_str().unwrap().to_string())
        .unwrap()
}

#[test]
fn claim_next_waits_for_work_and_cancel_and_requeue_are_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let (_, admin) = init(dir.path());
    let server = Server::start(dir.path());
    let (worker, wt) = agent_with(&server, &admin, "worker", &["task:claim", "task:complete"]);

    // Nothing queued: a bounded wait, then no_task_queued.
    let started = Instant::now();
    let r = client(&server, &wt, &["task", "claim", "--next", "--wait", "1s"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("no_task_queued"), "{}", r.stderr);
    assert!(started.elapsed() >= Duration::from_secs(1), "it waited");

    // A waiting worker gets the task scheduled while it waits.
    let waiting = toka()
        .args([
            "--json",
            "task",
            "claim",
            "--next",
            "--wait",
            "30s",
            "--server",
            &server.url,
        ])
        .env("TOKA_TOKEN", &wt)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    let first = schedule(&server, &admin, &worker, "first job");
    let out = waiting.wait_with_output().unwrap();
    assert!(out.status.success());
    let claimed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(claimed["task"]["id"], first.as_str());
    assert_eq!(claimed["task"]["state"], "claimed");

    // Oldest first.
    let second = schedule(&server, &admin, &worker, "second job");
    let third = schedule(&server, &admin, &worker, "third job");
    let r = json(&client(
        &server,
        &wt,
        &["--json", "task", "claim", "--next"],
    ));
    assert_eq!(r["task"]["id"], second.as_str());

    // Requeue needs its permission; the admin has it. The task is claimable again.
    let r = client(
        &server,
        &wt,
        &["task", "requeue", &second, "--reason", "worker lost"],
    );
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("task:requeue"), "{}", r.stderr);
    let r = client(
        &server,
        &admin,
        &[
            "task",
            "requeue",
            "--agent",
            &worker,
            &second,
            "--reason",
            "worker lost",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(state_of(&server, &admin, &worker, &second), "queued");
    let r = json(&client(
        &server,
        &wt,
        &["--json", "task", "claim", "--next"],
    ));
    assert_eq!(
        r["task"]["id"],
        second.as_str(),
        "the requeued task is the oldest again"
    );

    // Cancel a queued task, with its reason in the log; an ended one cannot be.
    let r = client(
        &server,
        &admin,
        &[
            "--json",
            "task",
            "cancel",
            "--agent",
            &worker,
            &third,
            "--reason",
            "not needed",
        ],
    );
    let v = json(&r);
    assert_eq!(v["events"][0]["kind"], "task.cancelled");
    assert_eq!(v["events"][0]["event"]["reason"], "not needed");
    assert_eq!(state_of(&server, &admin, &worker, &third), "cancelled");
    let r = client(
        &server,
        &admin,
        &["task", "cancel", "--agent", &worker, &third],
    );
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("task_not_open"), "{}", r.stderr);
    // Nothing left to claim.
    let r = client(&server, &wt, &["task", "claim", "--next"]);
    assert!(r.stderr.contains("no_task_queued"), "{}", r.stderr);
    // Usage errors: --wait without --next, neither a task nor --next, over 120 s.
    for args in [
        &["task", "claim", "x", "--wait", "3"][..],
        &["task", "claim"][..],
        &["task", "claim", "--next", "--wait", "5m"][..],
    ] {
        assert_eq!(client(&server, &wt, args).code, 2, "{args:?}");
    }
}

#[test]
fn a_task_carries_a_structured_input_of_up_to_a_mebibyte() {
    let dir = tempfile::tempdir().unwrap();
    let (_, admin) = init(dir.path());
    let server = Server::start(dir.path());
    let (worker, wt) = agent_with(&server, &admin, "worker", &["task:claim", "task:complete"]);
    let input = r#"{"files": ["a.md", "b.md"], "words": 300}"#;
    let r = client(
        &server,
        &admin,
        &[
            "--json",
            "task",
            "schedule",
            "--agent",
            &worker,
            "summarise",
            "--input",
            input,
        ],
    );
    let v = json(&r);
    assert_eq!(v["events"][0]["event"]["spec"]["input"]["words"], 300);
    let claimed = json(&client(
        &server,
        &wt,
        &["--json", "task", "claim", "--next"],
    ));
    assert_eq!(
        claimed["task"]["input"],
        serde_json::json!({"files": ["a.md", "b.md"], "words": 300})
    );
    // Nearly a mebibyte, from a file, is taken; over it is refused before sending.
    let big = dir.path().join("big.json");
    std::fs::write(&big, format!("{{\"blob\": \"{}\"}}", "x".repeat(1_000_000))).unwrap();
    let at = format!("@{}", big.display());
    let r = client(
        &server,
        &admin,
        &[
            "task", "schedule", "--agent", &worker, "big", "--input", &at,
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    std::fs::write(&big, format!("{{\"blob\": \"{}\"}}", "x".repeat(1_100_000))).unwrap();
    let r = client(
        &server,
        &admin,
        &[
            "task", "schedule", "--agent", &worker, "too big", "--input", &at,
        ],
    );
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("at most 1 MiB"), "{}", r.stderr);
    let r = client(
        &server,
        &admin,
        &[
            "task", "schedule", "--agent", &worker, "bad", "--input", "{nope",
        ],
    );
    assert!(r.stderr.contains("--input is not JSON"), "{}", r.stderr);

    // The result may carry JSON too.
    let task = claimed["task"]["id"].as_str().unwrap().to_string();
    let r = client(
        &server,
        &wt,
        &[
            "task",
            "complete",
            &task,
            "--result",
            "two files",
            "--output",
            r#"{"summaries": 2}"#,
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains(r#"(output {"summaries":2})"#),
        "{}",
        r.stdout
    );
    let list = json(&client(
        &server,
        &admin,
        &[
            "--json", "task", "list", "--agent", &worker, "--state", "done",
        ],
    ));
    assert_eq!(list[0]["outcome"]["output"]["summaries"], 2);
    assert_eq!(list[0]["outcome"]["result"], "two files");
}
