#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Tampering with a stopped node's data through the `sqlite3` command-line tool, as a
//! database-level attacker would (issue 9). Every change is caught by `toka verify`,
//! which names the first bad seq, and a cut log is refused by `toka serve`.

mod util;

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use util::*;

/// A stopped node whose log is: 1 genesis, 2 the admin token, 3..=10 tasks `job 0..7`;
/// a snapshot and a signed checkpoint at 10 (clean shutdown).
fn stopped_node(dir: &Path) {
    let (_, admin) = init_without_tools(dir);
    let server = Server::start(dir);
    for n in 0..8 {
        let r = client(&server, &admin, &["task", "schedule", &format!("job {n}")]);
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
    assert_eq!(server.stop(), 0);
}

fn copy_dir(from: &Path, to: &Path) {
    let status = Command::new("cp")
        .args(["-a", &format!("{}/.", from.display()), to.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn sqlite3(dir: &Path, sql: &str) {
    let out = Command::new("sqlite3")
        .arg(dir.join("data/toka.db"))
        .arg(sql)
        .output()
        .expect("the sqlite3 command-line tool (scripts/test.sh installs it)");
    assert!(
        out.status.success(),
        "sqlite3: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn verify_json(dir: &Path) -> (i32, Value) {
    let r = run(&[
        "--json",
        "verify",
        "--config",
        config(dir).to_str().unwrap(),
    ]);
    let v = serde_json::from_str(r.stdout.trim()).unwrap_or(Value::Null);
    (r.code, v)
}

#[test]
fn every_edit_through_sqlite3_is_caught_naming_the_seq() {
    let clean = tempfile::tempdir().unwrap();
    stopped_node(clean.path());
    let (code, v) = verify_json(clean.path());
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["newest_checkpoint"], 10);

    let cases: &[(&str, &str, u64, &str)] = &[
        (
            "edit a payload",
            "UPDATE events SET body = replace(body, 'job 4', 'job X') WHERE seq = 7",
            7,
            "payload altered",
        ),
        (
            "edit a header field",
            "UPDATE events SET kind = 'task.claimed' WHERE seq = 5",
            5,
            "header altered",
        ),
        (
            "edit the timestamp",
            "UPDATE events SET timestamp = timestamp + 1 WHERE seq = 9",
            9,
            "header altered",
        ),
        (
            "delete a row",
            "DELETE FROM events WHERE seq = 6",
            6,
            "missing",
        ),
        (
            "swap two rows",
            "UPDATE events SET seq = -1 WHERE seq = 5; UPDATE events SET seq = 5 WHERE seq = 6; UPDATE events SET seq = 6 WHERE seq = -1;",
            5,
            "reordered",
        ),
        (
            "cut the tail and the snapshots",
            "DELETE FROM events WHERE seq > 7; DELETE FROM snapshots;",
            8,
            "truncated",
        ),
        (
            "cut the tail, keep the snapshots",
            "DELETE FROM events WHERE seq > 7;",
            8,
            "truncated",
        ),
        (
            "forge a snapshot digest",
            "UPDATE snapshots SET state_digest = zeroblob(32)",
            10,
            "snapshot",
        ),
    ];
    for (what, sql, seq, reason) in cases {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(clean.path(), dir.path());
        sqlite3(dir.path(), sql);
        let (code, v) = verify_json(dir.path());
        assert_eq!(code, 1, "{what}: verify accepted it: {v}");
        assert_eq!(v["seq"], *seq, "{what}: {v}");
        assert!(
            v["reason"].as_str().unwrap_or("").contains(reason),
            "{what}: {v}"
        );
    }
}

#[test]
fn a_cut_log_is_refused_at_start_and_by_an_auditor_without_the_node_files() {
    let dir = tempfile::tempdir().unwrap();
    stopped_node(dir.path());
    let key = run(&[
        "--json",
        "checkpoint",
        "key",
        "--config",
        config(dir.path()).to_str().unwrap(),
    ]);
    assert_eq!(key.code, 0, "{}", key.stderr);
    let public: Value = serde_json::from_str(key.stdout.trim()).unwrap();
    let public = public["public_key"].as_str().unwrap().to_string();
    let audit = dir.path().join("audit.jsonl");
    std::fs::copy(dir.path().join("checkpoints/checkpoints.jsonl"), &audit).unwrap();

    // The attacker cuts the tail and removes everything on the node that remembers it.
    sqlite3(
        dir.path(),
        "DELETE FROM events WHERE seq > 4; DELETE FROM snapshots;",
    );
    let r = run(&[
        "serve",
        "--config",
        config(dir.path()).to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("events after 4 were removed"),
        "{}",
        r.stderr
    );
    std::fs::remove_file(dir.path().join("checkpoints/checkpoints.jsonl")).unwrap();
    std::fs::remove_file(dir.path().join("keys/checkpoint.json")).unwrap();
    let (code, v) = verify_json(dir.path());
    assert_eq!(code, 0, "without checkpoints a cut tail is invisible: {v}");

    // The auditor's copy of the checkpoints and the public key still catch it.
    let r = run(&[
        "--json",
        "verify",
        "--config",
        config(dir.path()).to_str().unwrap(),
        "--checkpoint",
        audit.to_str().unwrap(),
        "--public-key",
        &public,
    ]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    let v: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(v["seq"], 5, "{v}");
    // A checkpoint file signed by some other key is refused, not trusted.
    let wrong = "00".repeat(31) + "01";
    let r = run(&[
        "verify",
        "--config",
        config(dir.path()).to_str().unwrap(),
        "--checkpoint",
        audit.to_str().unwrap(),
        "--public-key",
        &wrong,
    ]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("not signed by"), "{}", r.stderr);
}

/// Checkpoints are kept in the store as well as in the file: an attacker who cuts the
/// tail and deletes the file is still caught, unless they also find the table.
#[test]
fn the_store_keeps_its_own_copy_of_the_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    stopped_node(dir.path());
    std::fs::remove_file(dir.path().join("checkpoints/checkpoints.jsonl")).unwrap();
    let mut cut = tempfile::tempdir().unwrap();
    copy_dir(dir.path(), cut.path());
    sqlite3(
        cut.path(),
        "DELETE FROM events WHERE seq > 7; DELETE FROM snapshots;",
    );
    let (code, v) = verify_json(cut.path());
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["seq"], 8, "{v}");
    // A checkpoint row planted with the node's key id but no valid signature is refused.
    cut = tempfile::tempdir().unwrap();
    copy_dir(dir.path(), cut.path());
    let (_, ok) = verify_json(cut.path());
    let r = run(&[
        "--json",
        "checkpoint",
        "key",
        "--config",
        config(dir.path()).to_str().unwrap(),
    ]);
    let key_id = serde_json::from_str::<Value>(r.stdout.trim()).unwrap()["key_id"]
        .as_str()
        .unwrap()
        .to_string();
    let forged = format!(
        r#"{{"seq":99,"chain_digest":"{d}","state_digest":"{d}","time":1,"key_id":"{key_id}","signature":"AAAA"}}"#,
        d = "00".repeat(32)
    );
    sqlite3(
        cut.path(),
        &format!("INSERT INTO checkpoints (seq, body) VALUES (99, '{forged}')"),
    );
    let r = run(&["verify", "--config", config(cut.path()).to_str().unwrap()]);
    assert_eq!(r.code, 1, "{ok}");
    assert!(r.stderr.contains("not signed by"), "{}", r.stderr);
}

/// The checkpoint file can be checked by a tool that is not Toka: Python's
/// `cryptography` package verifies each line over the documented bytes.
#[test]
fn checkpoints_verify_with_an_independent_ed25519_implementation() {
    let dir = tempfile::tempdir().unwrap();
    stopped_node(dir.path());
    let key = run(&[
        "--json",
        "checkpoint",
        "key",
        "--config",
        config(dir.path()).to_str().unwrap(),
    ]);
    let public: Value = serde_json::from_str(key.stdout.trim()).unwrap();
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/checkpoint/verify_checkpoint.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(public["public_key"].as_str().unwrap())
        .arg(dir.path().join("checkpoints/checkpoints.jsonl"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("ok 2 checkpoints"), "{stdout}");
    // A forged line fails there too.
    let text = std::fs::read_to_string(dir.path().join("checkpoints/checkpoints.jsonl")).unwrap();
    let forged = text.replacen("\"seq\":10", "\"seq\":11", 1);
    let forged_file = dir.path().join("forged.jsonl");
    std::fs::write(&forged_file, forged).unwrap();
    let out = Command::new("python3")
        .arg(&script)
        .arg(public["public_key"].as_str().unwrap())
        .arg(&forged_file)
        .output()
        .unwrap();
    assert!(!out.status.success());
}

/// The same matrix on a PostgreSQL node, through `psql`.
#[test]
fn every_edit_through_psql_is_caught_naming_the_seq() {
    if !psql("select 1") {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have PostgreSQL at {}",
            pg_url()
        );
        eprintln!(
            "\n*** SKIPPED psql tamper test: no PostgreSQL at {} ***\n",
            pg_url()
        );
        return;
    }
    let cases: &[(&str, &str, u64, &str)] = &[
        (
            "edit a payload",
            "UPDATE events SET body = convert_to(replace(convert_from(body, 'UTF8'), 'job 4', 'job X'), 'UTF8') WHERE seq = 7",
            7,
            "payload altered",
        ),
        (
            "edit a header field",
            "UPDATE events SET kind = 'task.claimed' WHERE seq = 5",
            5,
            "header altered",
        ),
        (
            "delete a row",
            "DELETE FROM events WHERE seq = 6",
            6,
            "missing",
        ),
        (
            "swap two rows",
            "UPDATE events SET seq = -1 WHERE seq = 5; UPDATE events SET seq = 5 WHERE seq = 6; UPDATE events SET seq = 6 WHERE seq = -1",
            5,
            "reordered",
        ),
        (
            "cut the tail and the snapshots",
            "DELETE FROM events WHERE seq > 7; UPDATE head SET seq = 7, digest = (SELECT digest FROM events WHERE seq = 7); DELETE FROM snapshots",
            8,
            "truncated",
        ),
        (
            "cut the tail, keep the snapshots",
            "DELETE FROM events WHERE seq > 7; UPDATE head SET seq = 7, digest = (SELECT digest FROM events WHERE seq = 7)",
            8,
            "truncated",
        ),
    ];
    for (n, (what, sql, seq, reason)) in cases.iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let schema = format!("toka_tamper_{}_{n}", std::process::id());
        psql(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
        let env = |c: &mut Command| postgres_env(c, &schema);
        let (_, admin) = init_with(dir.path(), env);
        without_tools(dir.path());
        let server = Server::start_with(dir.path(), |c| env(c));
        for j in 0..8 {
            let r = client(&server, &admin, &["task", "schedule", &format!("job {j}")]);
            assert_eq!(r.code, 0, "{}", r.stderr);
        }
        assert_eq!(server.stop(), 0);
        // The psql user reads what verify checks: the view computes body_json.
        assert!(psql(&format!(
            "SET search_path TO {schema}; SELECT body_json FROM events_json WHERE seq = 7"
        )));
        assert!(
            psql(&format!("SET search_path TO {schema}; {sql}")),
            "{what}: psql refused"
        );
        let mut verify = toka();
        verify.args([
            "--json",
            "verify",
            "--config",
            config(dir.path()).to_str().unwrap(),
        ]);
        env(&mut verify);
        let r = run_with(&mut verify);
        let v: Value = serde_json::from_str(r.stdout.trim()).unwrap_or(Value::Null);
        assert_eq!(r.code, 1, "{what}: verify accepted it: {v} {}", r.stderr);
        assert_eq!(v["seq"], *seq, "{what}: {v}");
        assert!(
            v["reason"].as_str().unwrap_or("").contains(reason),
            "{what}: {v}"
        );
        psql(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
    }
}
