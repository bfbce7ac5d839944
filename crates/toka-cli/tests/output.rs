#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The output discipline: human views in words (observations decoded, long fields
//! cut with a hint), errors as one JSON line under --json, usage errors exit 2, no
//! escape codes off a terminal, event filters, `--follow` from seq 1 like `events`,
//! and the man page.

mod util;

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use serde_json::Value;
use util::*;

#[test]
fn humans_read_words_and_machines_read_one_json_shape() {
    let dir = tempfile::tempdir().unwrap();
    let (_, admin) = init(dir.path());
    let server = Server::start(dir.path());
    let (worker, wt) = agent_with(
        &server,
        &admin,
        "worker",
        &["task:claim", "observation:emit"],
    );

    // An observation is shown as text; a long one is cut, saying how to see it all.
    let r = client(&server, &wt, &["observe", "saw the report"]);
    assert!(
        r.stdout.contains("observed: saw the report"),
        "{}",
        r.stdout
    );
    let long = "x".repeat(70_000);
    let r = client(&server, &wt, &["observe", &long]);
    assert!(
        r.stdout.len() < 1_000,
        "a 70 KB observation is not echoed whole"
    );
    assert!(
        r.stdout.contains("70000 characters; --json for all"),
        "{}",
        r.stdout
    );
    let r = client(&server, &wt, &["--json", "observe", &long]);
    let v: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(v["events"][0]["kind"], "observation.emitted");

    // Refusals: exit 1; under --json one JSON line on stderr with the rule's code.
    let r = client(&server, &wt, &["--json", "task", "claim", "--next"]);
    assert_eq!(r.code, 1);
    let e: Value = serde_json::from_str(r.stderr.trim()).unwrap();
    assert_eq!(e["error"]["code"], "no_task_queued");
    assert_eq!(e["error"]["status"], 409);
    let r = client(&server, &wt, &["--json", "agent", "spawn", "rogue"]);
    let e: Value = serde_json::from_str(r.stderr.trim()).unwrap();
    assert_eq!(e["error"]["code"], "permission_denied");
    // Usage errors exit 2 before anything is sent.
    for args in [
        &["task", "claim", "not-an-id"][..],
        &["token", "revoke", "not-a-uuid"][..],
        &["events", "--since", "yesterday-ish"][..],
        &["events", "--limit", "0"][..],
    ] {
        assert_eq!(client(&server, &wt, args).code, 2, "{args:?}");
    }

    // Off a terminal nothing carries escape codes (tables, errors).
    for args in [
        &["agent", "list"][..],
        &["events"][..],
        &["task", "claim", "--next"][..],
    ] {
        let r = client(&server, &admin, args);
        assert!(
            !r.stdout.contains('\u{1b}') && !r.stderr.contains('\u{1b}'),
            "{args:?}"
        );
    }

    // Filters: kind prefix, agent (by name), since; JSON Lines.
    let r = client(
        &server,
        &admin,
        &[
            "--json",
            "events",
            "--kind",
            "observation.",
            "--agent",
            "worker",
            "--since",
            "1h",
        ],
    );
    let lines: Vec<Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{}", r.stdout);
    assert!(
        lines
            .iter()
            .all(|e| e["kind"] == "observation.emitted" && e["origin"] == worker.as_str())
    );
    let r = client(
        &server,
        &admin,
        &[
            "--json", "events", "--kind", "agent.", "--kind", "token.", "--limit", "2",
        ],
    );
    assert_eq!(r.stdout.lines().count(), 2, "{}", r.stdout);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert_eq!(client(&server, &wt, &["observe", "just now"]).code, 0);
    let r = client(&server, &admin, &["--json", "events", "--since", "1s"]);
    let recent: Vec<Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        recent.len(),
        1,
        "only the newest event is under a second old: {}",
        r.stdout
    );
    assert_eq!(recent[0]["kind"], "observation.emitted");

    // --follow starts at seq 1 like `events`, then goes on live.
    let mut follow = toka()
        .args(["--json", "events", "--follow", "--server", &server.url])
        .env("TOKA_TOKEN", &admin)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(follow.stdout.take().unwrap()).lines();
    let first: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(first["seq"], 1);
    follow.kill().unwrap();
    let _ = follow.wait();

    // The man page comes from the same definition.
    let r = run(&["man"]);
    assert!(
        r.stdout.contains(".TH toka 1") && r.stdout.contains("backup"),
        "{}",
        &r.stdout[..200]
    );
}

/// Runs `toka args` on a pseudo-terminal (util-linux `script`), returning what it
/// printed there.
fn on_a_terminal(args: &str, env: &[(&str, &str)]) -> String {
    let toka = assert_cmd::cargo::cargo_bin("toka");
    let mut cmd = std::process::Command::new("script");
    cmd.args(["-qec", &format!("{} {args}", toka.display()), "/dev/null"])
        .env_remove("NO_COLOR")
        .env(
            "XDG_CONFIG_HOME",
            std::env::temp_dir().join("toka-tests-no-profiles"),
        );
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd
        .output()
        .expect("util-linux `script` runs a command on a terminal");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn colour_only_on_a_terminal_and_never_with_no_color() {
    let dir = tempfile::tempdir().unwrap();
    let (_, admin) = init(dir.path());
    let server = Server::start(dir.path());
    let args = format!("agent list --server {} --token {admin}", server.url);
    let coloured = on_a_terminal(&args, &[]);
    assert!(
        coloured.contains("\u{1b}["),
        "a terminal gets a bold header: {coloured:?}"
    );
    assert!(coloured.contains("root"));
    let plain = on_a_terminal(&args, &[("NO_COLOR", "1")]);
    assert!(!plain.contains('\u{1b}'), "NO_COLOR: {plain:?}");
    assert!(plain.contains("root"));
}

/// What `source <(COMPLETE=bash toka)` would offer for the last word of `words`.
fn complete(server: &Server, token: &str, words: &[&str]) -> Vec<String> {
    let r = run_with(
        toka()
            .env("COMPLETE", "bash")
            .env("_CLAP_COMPLETE_INDEX", (words.len() - 1).to_string())
            .env("TOKA_SERVER", &server.url)
            .env("TOKA_TOKEN", token)
            .arg("--")
            .args(words),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    r.stdout.lines().map(str::to_string).collect()
}

#[test]
fn completions_offer_names_paths_tasks_and_permissions_from_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let (_, admin) = init(dir.path());
    let server = Server::start(dir.path());
    assert_eq!(
        client(&server, &admin, &["agent", "spawn", "planner"]).code,
        0
    );
    let r = client(
        &server,
        &admin,
        &["agent", "spawn", "--parent", "planner", "worker-1"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        complete(
            &server,
            &admin,
            &["toka", "task", "schedule", "--agent", "root/pl"]
        ),
        ["root/planner", "root/planner/worker-1"]
    );
    assert!(
        complete(&server, &admin, &["toka", "agent", "terminate", "wor"])
            .contains(&"worker-1".to_string())
    );
    let perms = complete(
        &server,
        &admin,
        &["toka", "token", "issue", "--sub", "x", "--perm", "tool:"],
    );
    assert!(
        perms.contains(&"tool:fs.read".to_string()) && perms.contains(&"tool:*".to_string()),
        "{perms:?}"
    );
    let task = client(
        &server,
        &admin,
        &["-q", "task", "schedule", "--agent", "worker-1", "job"],
    );
    let task = task.stdout.trim().to_string();
    assert_eq!(
        complete(&server, &admin, &["toka", "task", "claim", &task[..6]]),
        [task]
    );
    assert_eq!(
        complete(&server, &admin, &["toka", "task", "list", "--state", "cl"]),
        ["claimed"]
    );
    // A token the server refuses offers nothing (and fails nothing).
    assert!(
        complete(
            &server,
            "bad.token.x",
            &["toka", "task", "schedule", "--agent", "r"]
        )
        .is_empty()
    );
}
