#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr
)]
//! The web console in a real browser: headless Chromium (Debian's `chromium`) driven
//! by Playwright (`playwright-core` from npm), against a real `toka serve` with a
//! small agent tree, a call waiting for approval and a live stream. Screenshots are
//! saved under `target/console-screenshots/`.
//!
//! `scripts/test.sh` installs the browser and the npm package; under CI a missing one
//! fails the test instead of skipping it.
mod util;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use util::*;

fn console_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/console")
}

fn chromium() -> Option<PathBuf> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// The browser and Playwright, or `None` (a loud skip outside CI, a failure in CI).
fn browser_installed() -> Option<PathBuf> {
    let playwright = console_dir().join("node_modules/playwright-core");
    match chromium() {
        Some(path) if playwright.exists() => Some(path),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must have chromium and playwright-core (scripts/test.sh installs them)"
            );
            eprintln!(
                "\n*** SKIPPED console test: needs Debian's chromium and `npm ci` in {} ***\n",
                console_dir().display()
            );
            None
        }
    }
}

fn json(r: &Run) -> Value {
    assert_eq!(r.code, 0, "{}", r.stderr);
    serde_json::from_str(r.stdout.trim()).unwrap()
}

fn spawn(server: &Server, token: &str, parent: &str, name: &str) -> String {
    let r = client(
        server,
        token,
        &["--json", "agent", "spawn", "--parent", parent, name],
    );
    json(&r)["events"][0]["event"]["agent"]
        .as_str()
        .unwrap()
        .to_string()
}

fn issue(server: &Server, token: &str, sub: &str, perms: &[&str], extra: &[&str]) -> String {
    let mut args = vec!["--json", "token", "issue", "--sub", sub];
    for p in perms {
        args.extend(["--perm", p]);
    }
    args.extend(extra);
    json(&client(server, token, &args))["token"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Gives `agent` a claimed task with one recorded model step (its transcript).
fn record_a_model_step(server: &Server, admin: &str, worker: &str, agent: &str) {
    let r = client(
        server,
        admin,
        &[
            "--json",
            "task",
            "schedule",
            "--agent",
            agent,
            "summarise the report",
        ],
    );
    let task = json(&r)["events"][0]["event"]["task"]
        .as_str()
        .unwrap()
        .to_string();
    let r = client(server, worker, &["task", "claim", &task]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let step = serde_json::json!({"operation": {
        "op": "record_model_step", "agent": agent, "task": task, "step": 1,
        "model": "scripted-model", "request_hash": "ab".repeat(32),
        "appended": [{"role": "user", "content": "summarise the report"}],
        "response": {"choices": [{"message": {"role": "assistant",
            "content": "The report says the console works."}, "finish_reason": "stop"}],
            "usage": {"total_tokens": 42}},
    }});
    let rt = tokio::runtime::Runtime::new().unwrap();
    let status = rt.block_on(async {
        reqwest::Client::new()
            .post(format!("{}/v1/messages", server.url))
            .bearer_auth(worker)
            .json(&step)
            .send()
            .await
            .unwrap()
            .status()
    });
    assert_eq!(status, 200);
}

#[test]
fn a_scoped_person_sees_their_agents_approves_a_call_and_watches_events_live() {
    let Some(chromium) = browser_installed() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (root, admin) = init(dir.path());
    let server = Server::start(dir.path());
    let team_a = spawn(&server, &admin, &root, "team-a");
    let worker_a = spawn(&server, &admin, &team_a, "worker-a");
    let team_b = spawn(&server, &admin, &root, "team-b");
    spawn(&server, &admin, &team_b, "worker-b");

    // The person: team-a's token, scope team-a's subtree, may approve.
    let person = issue(
        &server,
        &admin,
        &team_a,
        &["approval:grant", "task:schedule"],
        &[],
    );
    let worker = issue(
        &server,
        &admin,
        &worker_a,
        &[
            "tool:fs.write",
            "observation:emit",
            "task:claim",
            "model:use",
        ],
        &["--budget-tool-calls", "5"],
    );
    record_a_model_step(&server, &admin, &worker, &worker_a);
    let r = client(&server, &worker, &["observe", "first look at the data"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = client(
        &server,
        &worker,
        &[
            "--json",
            "tool",
            "call",
            "fs.write",
            "--wait",
            "0",
            "--input",
            r#"{"path":"report.txt","content":"console approved"}"#,
        ],
    );
    assert_eq!(r.code, 3, "the call waits for approval: {}", r.stderr);
    let call = serde_json::from_str::<Value>(r.stdout.trim()).unwrap()["call"]
        .as_str()
        .unwrap()
        .to_string();

    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/console-screenshots");
    let out = Command::new("node")
        .arg(console_dir().join("console_e2e.mjs"))
        .current_dir(console_dir())
        .env("TOKA_URL", &server.url)
        .env("CONSOLE_TOKEN", &person)
        .env("WORKER_ID", &worker_a)
        .env("WORKER_TOKEN", &worker)
        .env("CALL_ID", &call)
        .env("VISIBLE", r#"["team-a","worker-a"]"#)
        .env("ABSENT", r#"["team-b","worker-b"]"#)
        .env("ARTIFACTS", &artifacts)
        .env("CHROMIUM", &chromium)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the browser test failed (screenshots in {}):\n{stdout}\n{stderr}",
        artifacts.display()
    );
    assert!(stdout.contains(r#""ok":true"#), "{stdout}");
    for shot in [
        "01-wrong-token",
        "02-agents",
        "05-approved",
        "07-phone-dark",
    ] {
        assert!(artifacts.join(format!("{shot}.png")).exists(), "{shot}");
    }

    // What the browser did is in the log: the approval, by the person, with the reason.
    let r = client(&server, &admin, &["--json", "tool", "show", &call]);
    let v = json(&r);
    assert_eq!(v["status"], "succeeded", "{v}");
    assert_eq!(v["decided_by"], team_a.as_str());
    assert_eq!(v["reason"], "checked in the console");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("workspace/report.txt")).ok(),
        Some("console approved".into())
    );
}

#[test]
fn the_console_page_is_served_with_a_strict_policy() {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path());
    let server = Server::start(dir.path());
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let page = reqwest::get(format!("{}/", server.url)).await.unwrap();
        assert_eq!(page.status(), 200);
        let csp = page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(csp.contains("default-src 'none'") && csp.contains("connect-src 'self'"));
        let body = page.text().await.unwrap();
        assert!(body.contains("/console/console.js"), "{body}");
        // The API's own answers are unchanged next to it.
        let missing = reqwest::get(format!("{}/v1/nothing", server.url))
            .await
            .unwrap();
        assert_eq!(missing.status(), 404);
        let v: Value = missing.json().await.unwrap();
        assert_eq!(v["error"]["code"], "not_found");
    });
}
