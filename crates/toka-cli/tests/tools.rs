#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Tools through a real `toka serve` (issue 10): what a token sees and may call,
//! approval by someone else only, and a SIGKILL between `tool.called` and
//! `tool.returned`: after the restart the repeatable call ran once more, the other is
//! abandoned, and a side-effect counter proves no tool ran during recovery or verify.

mod util;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use util::*;

fn json(r: &Run) -> Value {
    serde_json::from_str(r.stdout.trim())
        .unwrap_or_else(|e| panic!("{e}: {} / {}", r.stdout, r.stderr))
}

fn append_config(dir: &Path, text: &str) {
    let path = config(dir);
    let mut config = std::fs::read_to_string(&path).unwrap();
    config.push_str(text);
    std::fs::write(path, config).unwrap();
}

#[test]
fn tokens_see_and_call_only_their_tools_and_never_approve_themselves() {
    let dir = tempfile::tempdir().unwrap();
    let (_, admin) = init(dir.path());
    let server = Server::start(dir.path());
    let (worker, wt) = agent_with(
        &server,
        &admin,
        "worker",
        &["tool:fs.*", "approval:grant", "agent:spawn", "token:issue"],
    );
    let (_, reader) = agent_with(&server, &admin, "reader", &["tool:fs.read"]);
    let (_, nothing) = agent_with(&server, &admin, "nothing", &["task:claim"]);

    let names = |token: &str| -> Vec<String> {
        let r = client(&server, token, &["--json", "tool", "list"]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        json(&r)["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names(&wt), ["fs.list", "fs.read", "fs.write"]);
    assert_eq!(names(&reader), ["fs.read"]);
    assert!(names(&nothing).is_empty());

    // Refused: no permission, schema-invalid input, another agent out of scope.
    let r = client(
        &server,
        &reader,
        &[
            "tool",
            "call",
            "fs.write",
            "--input",
            r#"{"path":"a","content":"b"}"#,
        ],
    );
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("tool:fs.write"), "{}", r.stderr);
    let r = client(
        &server,
        &wt,
        &["tool", "call", "fs.read", "--input", r#"{"path": 3}"#],
    );
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("tool_input_invalid") && r.stderr.contains("/path"),
        "{}",
        r.stderr
    );
    let r = client(
        &server,
        &reader,
        &[
            "tool",
            "call",
            "fs.read",
            "--agent",
            &worker,
            "--input",
            r#"{"path":"a"}"#,
        ],
    );
    assert!(r.stderr.contains("out_of_scope"), "{}", r.stderr);

    // fs.write waits for approval; neither the worker nor its child may give it.
    let r = client(
        &server,
        &wt,
        &[
            "--json",
            "tool",
            "call",
            "fs.write",
            "--wait",
            "0",
            "--input",
            r#"{"path":"out.txt","content":"approved bytes"}"#,
        ],
    );
    assert_eq!(r.code, 3, "still waiting: {}", r.stderr);
    let call = json(&r)["call"].as_str().unwrap().to_string();
    let r = client(&server, &wt, &["approve", &call]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("self_approval"), "{}", r.stderr);
    let r = client(
        &server,
        &wt,
        &["--json", "agent", "spawn", "--parent", &worker, "helper"],
    );
    let helper = json(&r)["events"][0]["event"]["agent"]
        .as_str()
        .unwrap()
        .to_string();
    let r = client(
        &server,
        &wt,
        &[
            "--json",
            "token",
            "issue",
            "--sub",
            &helper,
            "--perm",
            "approval:grant",
            "--scope",
            &worker,
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let helper_token = json(&r)["token"].as_str().unwrap().to_string();
    let r = client(&server, &helper_token, &["approve", &call]);
    assert!(
        r.stderr.contains("self_approval"),
        "a descendant approved: {}",
        r.stderr
    );
    assert!(!dir.path().join("workspace/out.txt").exists());
    // The admin sees it pending and approves: it runs, once.
    let r = client(&server, &admin, &["--json", "approvals"]);
    assert_eq!(json(&r)["approvals"][0]["call"], call.as_str());
    let r = client(
        &server,
        &admin,
        &["--json", "approve", &call, "--reason", "reviewed"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(json(&r)["status"], "succeeded");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("workspace/out.txt")).unwrap(),
        "approved bytes"
    );
    let r = client(&server, &admin, &["approve", &call]);
    assert!(
        r.stderr.contains("wrong_call_status"),
        "approved twice: {}",
        r.stderr
    );
    // A call is not visible outside the scope.
    let r = client(&server, &reader, &["tool", "show", &call]);
    assert!(r.stderr.contains("404"), "{}", r.stderr);
    // Denied calls end with the reason.
    let r = client(
        &server,
        &wt,
        &[
            "--json",
            "tool",
            "call",
            "fs.write",
            "--wait",
            "0",
            "--input",
            r#"{"path":"no.txt","content":"x"}"#,
        ],
    );
    let denied = json(&r)["call"].as_str().unwrap().to_string();
    let r = client(&server, &admin, &["deny", &denied]);
    assert_eq!(r.code, 2, "deny needs --reason");
    let r = client(
        &server,
        &admin,
        &["--json", "deny", &denied, "--reason", "not in this task"],
    );
    assert_eq!(json(&r)["status"], "denied");
    assert!(!dir.path().join("workspace/no.txt").exists());
    assert_eq!(server.stop(), 0);
    let r = run(&["verify", "--config", config(dir.path()).to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // The record reads with sqlite3 like the rest of the log: the call, its exact
    // input, who approved it, what it returned.
    let out = std::process::Command::new("sqlite3")
        .arg(dir.path().join("data/toka.db"))
        .arg(format!(
            "SELECT kind, CAST(body AS TEXT) FROM events_text \
             WHERE kind LIKE 'tool.%' AND CAST(body AS TEXT) LIKE '%{call}%' ORDER BY seq"
        ))
        .output()
        .expect("sqlite3 (scripts/test.sh installs it)");
    let text = String::from_utf8_lossy(&out.stdout);
    let kinds: Vec<&str> = text.lines().filter_map(|l| l.split('|').next()).collect();
    assert_eq!(
        kinds,
        [
            "tool.called",
            "tool.approved",
            "tool.started",
            "tool.returned"
        ],
        "{text}"
    );
    assert!(
        text.contains("approved bytes") && text.contains("reviewed"),
        "{text}"
    );
}

fn lines(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sigkill_mid_call_repeats_the_repeatable_and_abandons_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let (_, admin) = init(dir.path());
    let reads = dir.path().join("reads.count");
    let writes = dir.path().join("writes.count");
    append_config(
        dir.path(),
        &format!(
            r#"
[tools]
require_approval = []

[tools.exec.slow-read]
program = "/bin/sh"
args = ["-c", "echo run >> {reads}; sleep 2; echo read-done"]
repeatable = true
timeout_ms = 20000

[tools.exec.slow-write]
program = "/bin/sh"
args = ["-c", "echo run >> {writes}; sleep 2; echo write-done"]
timeout_ms = 20000
"#,
            reads = reads.display(),
            writes = writes.display()
        ),
    );
    let server = Server::start(dir.path());
    let open = |tool: &str| -> String {
        let r = client(
            &server,
            &admin,
            &["--json", "tool", "call", tool, "--wait", "0"],
        );
        assert_eq!(r.code, 3, "{}", r.stderr);
        json(&r)["call"].as_str().unwrap().to_string()
    };
    let read = open("exec.slow-read");
    let write = open("exec.slow-write");
    wait_until("both tools to start", || {
        lines(&reads) == 1 && lines(&writes) == 1
    });
    // Between tool.called (and tool.started) and tool.returned: kill it.
    let mut server = server;
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    drop(server);

    let server = Server::start(dir.path());
    let show = |call: &str| -> Value {
        let r = client(
            &server,
            &admin,
            &["--json", "tool", "show", call, "--wait", "20"],
        );
        json(&r)
    };
    let r = show(&read);
    assert_eq!(r["status"], "succeeded", "{r}");
    assert_eq!(r["attempts"], 2);
    assert_eq!(r["result"]["output"]["stdout"], "read-done\n");
    let w = show(&write);
    assert_eq!(w["status"], "abandoned", "{w}");
    assert!(w["reason"].as_str().unwrap().contains("outcome unknown"));
    assert_eq!((lines(&reads), lines(&writes)), (2, 1));
    assert_eq!(server.stop(), 0);
    // Neither verification, replay nor another start runs a tool again.
    let cfg = config(dir.path());
    let r = run(&["verify", "--config", cfg.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = run(&["replay", "--config", cfg.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let server = Server::start(dir.path());
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(server.stop(), 0);
    assert_eq!(
        (lines(&reads), lines(&writes)),
        (2, 1),
        "a tool ran during verify, replay or start"
    );
}
