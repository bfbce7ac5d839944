#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Every command's `--json` shape, against the fixture below (the same shapes
//! docs/cli.md documents): the keys each must have, and lists as arrays, streams as
//! JSON Lines.

mod util;

use serde_json::Value;
use util::*;

/// Parses one JSON document (or, for streams, every line) and checks `keys`.
fn has_keys(what: &str, r: &Run, keys: &[&str]) -> Value {
    assert_eq!(r.code, 0, "{what}: {}", r.stderr);
    let v: Value = serde_json::from_str(r.stdout.trim())
        .unwrap_or_else(|e| panic!("{what}: not one JSON document ({e}): {}", r.stdout));
    let object = match &v {
        Value::Array(items) => items
            .first()
            .cloned()
            .unwrap_or_else(|| panic!("{what}: empty list")),
        other => other.clone(),
    };
    for key in keys {
        assert!(object.get(key).is_some(), "{what}: no {key:?} in {object}");
    }
    v
}

#[test]
fn every_command_has_its_documented_json_shape() {
    let dir = tempfile::tempdir().unwrap();
    let config = tempfile::tempdir().unwrap();
    let r = run(&["--json", "init", "--dir", dir.path().to_str().unwrap()]);
    let init = has_keys("init", &r, &["config", "data", "root", "token"]);
    let admin = init["token"].as_str().unwrap().to_string();
    let server = Server::start(dir.path());
    let c = |args: &[&str]| client(&server, &admin, args);

    let token_file = dir.path().join("t");
    std::fs::write(&token_file, &admin).unwrap();
    let login = run_with(
        toka()
            .args([
                "--json",
                "login",
                "--server",
                &server.url,
                "--token-file",
                token_file.to_str().unwrap(),
            ])
            .env("XDG_CONFIG_HOME", config.path()),
    );
    has_keys(
        "login",
        &login,
        &["profile", "server", "file", "sub", "exp"],
    );
    has_keys(
        "status",
        &c(&["--json", "status"]),
        &[
            "server",
            "sub",
            "name",
            "jti",
            "permissions",
            "scope",
            "exp",
            "budget",
        ],
    );

    let spawned = has_keys(
        "agent spawn",
        &c(&["--json", "agent", "spawn", "worker"]),
        &["events"],
    );
    assert!(
        spawned["events"][0].get("seq").is_some() && spawned["events"][0].get("kind").is_some()
    );
    has_keys(
        "task schedule",
        &c(&["--json", "task", "schedule", "--agent", "worker", "job"]),
        &["events"],
    );
    has_keys("observe", &c(&["--json", "observe", "seen"]), &["events"]);
    has_keys(
        "task claim --next",
        &c(&["--json", "task", "claim", "--next", "--agent", "worker"]),
        &["task", "seq"],
    );
    let agents = has_keys(
        "agent list",
        &c(&["--json", "agent", "list"]),
        &[
            "id",
            "parent",
            "name",
            "status",
            "depth",
            "children",
            "tasks",
            "observations",
        ],
    );
    assert!(agents.is_array());
    let tasks = has_keys(
        "task list",
        &c(&["--json", "task", "list"]),
        &["id", "agent", "description", "state", "outcome"],
    );
    assert!(tasks.is_array());
    has_keys(
        "agent transcript",
        &c(&["--json", "agent", "transcript", "worker"]),
        &["agent", "steps"],
    );
    has_keys(
        "state",
        &c(&["--json", "state"]),
        &[
            "head",
            "chain_digest",
            "state_digest",
            "root",
            "agents",
            "tasks",
        ],
    );
    // A stream: JSON Lines, each an event.
    let r = c(&["--json", "events", "--limit", "3"]);
    assert_eq!(r.stdout.lines().count(), 3, "{}", r.stdout);
    for line in r.stdout.lines() {
        let e: Value = serde_json::from_str(line).unwrap();
        for key in [
            "seq",
            "id",
            "kind",
            "timestamp",
            "origin",
            "jti",
            "intent",
            "parents",
            "payload_hash",
            "digest",
            "event",
        ] {
            assert!(e.get(key).is_some(), "events: no {key:?}");
        }
    }
    let issued = has_keys(
        "token issue",
        &c(&[
            "--json",
            "token",
            "issue",
            "--sub",
            "worker",
            "--perm",
            "task:claim",
        ]),
        &["token", "jti", "sub", "exp", "permissions", "seq", "budget"],
    );
    has_keys(
        "token renew",
        &c(&["--json", "token", "renew"]),
        &["token", "jti", "sub", "exp", "permissions", "seq", "budget"],
    );
    has_keys(
        "token inspect",
        &c(&["--json", "token", "inspect"]),
        &["claims", "budget"],
    );
    let cfg = dir.path().join("toka.toml");
    let r = run(&[
        "--json",
        "token",
        "root",
        "--server",
        &server.url,
        "--config",
        cfg.to_str().unwrap(),
    ]);
    has_keys("token root", &r, &["root", "token", "jti", "exp", "seq"]);
    has_keys(
        "tool list",
        &c(&["--json", "tool", "list"]),
        &["tools", "version"],
    );
    has_keys(
        "tool call",
        &c(&[
            "--json",
            "tool",
            "call",
            "fs.list",
            "--input",
            r#"{"path": "."}"#,
        ]),
        &[
            "call",
            "agent",
            "origin",
            "tool",
            "status",
            "input",
            "input_hash",
            "attempts",
            "called_seq",
            "ended_seq",
            "result",
        ],
    );
    has_keys("approvals", &c(&["--json", "approvals"]), &["approvals"]);
    has_keys(
        "token revoke",
        &c(&["--json", "token", "revoke", issued["jti"].as_str().unwrap()]),
        &["events"],
    );
    let backup = dir.path().join("b.sqlite");
    let r = run(&[
        "--json",
        "backup",
        "--config",
        cfg.to_str().unwrap(),
        "--out",
        backup.to_str().unwrap(),
    ]);
    has_keys("backup", &r, &["file", "events", "digest", "verified"]);
    assert_eq!(server.stop(), 0);
    has_keys(
        "verify",
        &run(&["--json", "verify", "--config", cfg.to_str().unwrap()]),
        &["ok"],
    );
}
