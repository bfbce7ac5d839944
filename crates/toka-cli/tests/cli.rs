#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The `toka` command, end to end: every command, and its failures.

mod util;

use serde_json::Value;
use util::*;

#[test]
fn init_writes_a_private_key_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let (root, token) = init(dir.path());
    assert_eq!(root.len(), 36);
    assert_eq!(token.split('.').count(), 3);
    assert!(config(dir.path()).exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("keys/signing.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        // The log and the checkpoints live in folders only the node's user may open.
        for folder in ["data", "checkpoints"] {
            let mode = std::fs::metadata(dir.path().join(folder))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o700, "{folder}");
        }
    }
    let again = run(&["init", "--dir", dir.path().to_str().unwrap()]);
    assert_eq!(again.code, 1);
    assert!(again.stderr.contains("exists already"), "{}", again.stderr);
    let forced = run(&["init", "--dir", dir.path().to_str().unwrap(), "--force"]);
    assert_eq!(forced.code, 0, "{}", forced.stderr);
    assert!(forced.stdout.contains("Admin token"));
}

#[test]
fn a_bad_config_is_refused_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path());
    let text = std::fs::read_to_string(config(dir.path()))
        .unwrap()
        .replace("driver = ", "drivr = ");
    std::fs::write(config(dir.path()), text).unwrap();
    let r = run(&["verify", "--config", config(dir.path()).to_str().unwrap()]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("unknown key store.drivr"), "{}", r.stderr);
    let missing = run(&["verify", "--config", "/nonexistent/toka.toml"]);
    assert_eq!(missing.code, 1);
    assert!(missing.stderr.contains("toka init"), "{}", missing.stderr);
}

#[test]
fn usage_errors_exit_2_and_completions_print() {
    assert_eq!(run(&["task", "frobnicate"]).code, 2);
    // Out-of-range numbers are usage errors, not silently corrected.
    let r = run(&["bench", "--submitters", "0"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_eq!(run(&["bench", "--messages", "0"]).code, 2);
    let r = run(&["task", "list", "--state", "finished"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("queued"),
        "the values are listed: {}",
        r.stderr
    );
    let r = run(&["completions", "bash"]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains("toka"));
}

#[test]
fn client_commands_against_a_server_with_their_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let (root, admin) = init_without_tools(dir.path());
    let server = Server::start(dir.path());

    let r = client(&server, &admin, &["--json", "agent", "spawn", "worker"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let spawned: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    let worker = spawned["events"][0]["event"]["agent"]
        .as_str()
        .unwrap()
        .to_string();

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
            "task:claim",
            "--perm",
            "task:complete",
            "--perm",
            "observation:emit",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let worker_token = serde_json::from_str::<Value>(r.stdout.trim()).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();

    let r = client(
        &server,
        &admin,
        &[
            "--json",
            "task",
            "schedule",
            "--agent",
            &worker,
            "write the report",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let task =
        serde_json::from_str::<Value>(r.stdout.trim()).unwrap()["events"][0]["event"]["task"]
            .as_str()
            .unwrap()
            .to_string();

    assert_eq!(
        client(&server, &worker_token, &["task", "claim", &task]).code,
        0
    );
    assert_eq!(
        client(&server, &worker_token, &["observe", "halfway there"]).code,
        0
    );
    assert_eq!(
        client(
            &server,
            &worker_token,
            &["task", "complete", &task, "--result", "done"]
        )
        .code,
        0
    );

    let r = client(
        &server,
        &admin,
        &["--json", "task", "list", "--state", "done"],
    );
    let done: Vec<Value> = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(done.len(), 1);
    assert_eq!(done[0]["description"], "write the report");

    let r = client(&server, &admin, &["agent", "list"]);
    assert!(
        r.stdout.contains("root") && r.stdout.contains("  worker"),
        "{}",
        r.stdout
    );

    // The worker's token cannot spawn: refused, exit 1, the permission named.
    let r = client(&server, &worker_token, &["agent", "spawn", "rogue"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("agent:spawn"), "{}", r.stderr);
    // And cannot see the root's part of the tree.
    let r = client(&server, &worker_token, &["--json", "agent", "list"]);
    let visible: Vec<Value> = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(visible.len(), 1, "{visible:?}");
    assert_eq!(visible[0]["id"], worker);

    // No token, a bad token.
    let r = run_with(toka().env("TOKA_SERVER", &server.url).args(["state"]));
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("no token"), "{}", r.stderr);
    let r = client(&server, "not.a.token", &["state"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("401"), "{}", r.stderr);

    let r = client(&server, &admin, &["--json", "state"]);
    let state: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(state["root"], root);
    // genesis, 2 issuances, spawn, schedule, claim, observe, complete.
    assert_eq!(state["head"], 8);
    let r = client(&server, &admin, &["--json", "events", "--from", "1"]);
    assert_eq!(r.stdout.lines().count(), 8);
    let kinds: Vec<String> = r
        .stdout
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(kinds.iter().filter(|k| *k == "token.issued").count(), 2);

    // A second writer on the same folder is refused clearly.
    let r = run(&["verify", "--config", config(dir.path()).to_str().unwrap()]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("in use by another process"),
        "{}",
        r.stderr
    );

    assert_eq!(server.stop(), 0, "serve exits 0 on SIGTERM");
}

#[test]
fn verify_replay_export_import_and_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let (_, admin) = init_without_tools(dir.path());
    let server = Server::start(dir.path());
    for n in 0..10 {
        assert_eq!(
            client(&server, &admin, &["task", "schedule", &format!("job {n}")]).code,
            0
        );
    }
    assert_eq!(server.stop(), 0);
    let cfg = config(dir.path());
    let cfg = cfg.to_str().unwrap();

    let r = run(&["--json", "verify", "--config", cfg]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let ok: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(ok["events"], 12); // genesis, the admin token's issuance, 10 tasks

    let r = run(&["--json", "replay", "--config", cfg, "--to", "6"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let at6: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(at6["tasks"]["queued"], 4);

    let export = dir.path().join("log.jsonl");
    assert_eq!(
        run(&["export", "--config", cfg, "--out", export.to_str().unwrap()]).code,
        0
    );
    assert_eq!(
        std::fs::read_to_string(&export).unwrap().lines().count(),
        12
    );

    let copy = tempfile::tempdir().unwrap();
    assert_eq!(
        run(&["init", "--dir", copy.path().to_str().unwrap(), "--empty"]).code,
        0
    );
    let copy_cfg = config(copy.path());
    let r = run(&[
        "--json",
        "import",
        "--config",
        copy_cfg.to_str().unwrap(),
        export.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = run(&["--json", "verify", "--config", copy_cfg.to_str().unwrap()]);
    let copied: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(copied["state_digest"], ok["state_digest"]);

    // A broken export is refused before anything is written.
    let text = std::fs::read_to_string(&export).unwrap();
    let broken: Vec<&str> = text
        .lines()
        .enumerate()
        .filter(|(i, _)| *i != 4)
        .map(|(_, l)| l)
        .collect();
    let broken_file = dir.path().join("broken.jsonl");
    std::fs::write(&broken_file, broken.join("\n")).unwrap();
    let empty = tempfile::tempdir().unwrap();
    assert_eq!(
        run(&["init", "--dir", empty.path().to_str().unwrap(), "--empty"]).code,
        0
    );
    let r = run(&[
        "import",
        "--config",
        config(empty.path()).to_str().unwrap(),
        broken_file.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("seq 6 where 5 was expected"),
        "{}",
        r.stderr
    );

    // Tamper with the database: verify exits 1 naming the seq.
    let conn = rusqlite::Connection::open(dir.path().join("data/toka.db")).unwrap();
    conn.execute(
        "UPDATE events SET body = replace(body, 'job 3', 'job X') WHERE seq = 6",
        [],
    )
    .unwrap();
    drop(conn);
    let r = run(&["verify", "--config", cfg]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("seq 6") && r.stderr.contains("payload altered"),
        "{}",
        r.stderr
    );
}

#[test]
fn demo_runs_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let r = run(&["demo", "--dir", dir.path().join("demo").to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("was refused"), "{}", r.stdout);
    // The planner step, on the scripted model, says so and records its exchanges.
    assert!(r.stdout.contains("SCRIPTED model"), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("answer: The outage was caused by an expired certificate."),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("(identical)"));
    // A newcomer's first command warns about nothing (it once printed a WARN line that
    // no checkpoint covered the snapshot its own replay started from).
    for (stream, text) in [("stdout", &r.stdout), ("stderr", &r.stderr)] {
        assert!(
            !text.contains(" WARN ") && !text.contains(" ERROR "),
            "the demo logged a warning on {stream}: {text}"
        );
    }
    let r = run(&[
        "verify",
        "--config",
        dir.path().join("demo/toka.toml").to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
}

#[test]
fn bench_reports_figures_as_json() {
    let r = run(&[
        "--json",
        "bench",
        "--driver",
        "sqlite",
        "--submitters",
        "4",
        "--messages",
        "400",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(v["acknowledged"], 400);
    assert!(v["per_second"].as_f64().unwrap() > 0.0);
    assert!(v["replay_events"].as_u64().unwrap() > 400);
    assert!(v["baseline"].is_null(), "no baseline unless asked");
}

#[test]
fn bench_compare_runs_the_plain_table_baseline_and_prints_ratios() {
    let r = run(&[
        "--json",
        "bench",
        "--submitters",
        "4",
        "--messages",
        "300",
        "--compare",
        "--runs",
        "3",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(v["toka_runs"].as_array().unwrap().len(), 3);
    assert_eq!(v["baseline_runs"].as_array().unwrap().len(), 3);
    assert_eq!(v["baseline_runs"][0]["batched"]["rows"], 300);
    let append = v["baseline"]["append_per_second"].as_f64().unwrap();
    let ratio = v["append_ratio"].as_f64().unwrap();
    let expected = v["per_second"].as_f64().unwrap() / append;
    assert!((ratio - expected).abs() < 1e-9 * expected.max(1.0), "{v}");
    assert!(v["replay_ratio"].as_f64().unwrap() > 0.0);
    assert!(v["baseline"]["single_commit_per_second"].as_f64().unwrap() > 0.0);
    // The human form names the baseline and the ratio.
    let r = run(&[
        "bench",
        "--submitters",
        "2",
        "--messages",
        "100",
        "--compare",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("baseline: a plain table in SQLite"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("toka/plain"), "{}", r.stdout);
}

#[test]
fn bench_floor_times_each_stage_and_sets_the_ceilings_beside_the_figures() {
    let r = run(&[
        "--json",
        "bench",
        "--driver",
        "memory",
        "--submitters",
        "3",
        "--messages",
        "600",
        "--floor",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    let floor = &v["floor"];
    assert_eq!(floor["messages"], 600, "{v}");
    let stage = |name: &str| floor[name].as_f64().unwrap();
    for name in [
        "decide_us",
        "encode_us",
        "seal_us",
        "apply_us",
        "check_us",
        "decode_us",
    ] {
        assert!(stage(name) > 0.0, "{name}: {v}");
    }
    // One writer decides, encodes and seals every message in turn.
    let writer = 1e6 / (stage("decide_us") + stage("encode_us") + stage("seal_us"));
    assert!(
        (stage("writer_ceiling") - writer).abs() < 1e-6 * writer,
        "{v}"
    );
    assert!(stage("commit_ceiling") <= stage("writer_ceiling"), "{v}");
    let ratio = v["floor_ratios"]["writer"].as_f64().unwrap();
    let expected = v["per_second"].as_f64().unwrap() / writer;
    assert!((ratio - expected).abs() < 1e-6 * expected.max(1.0), "{v}");
    // Without the flag there is none.
    let r = run(&["--json", "bench", "--driver", "memory", "--messages", "50"]);
    let v: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert!(v["floor"].is_null() && v["floor_ratios"].is_null(), "{v}");
    // The human form names the stages and the ceilings.
    let r = run(&["bench", "--driver", "memory", "--messages", "50", "--floor"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    for words in ["floor:", "seal", "one writer", "toka/ceiling"] {
        assert!(r.stdout.contains(words), "{words}: {}", r.stdout);
    }
}

#[test]
fn bench_compare_on_memory_puts_the_kernel_alone_beside_the_pipeline() {
    let r = run(&[
        "--json",
        "bench",
        "--driver",
        "memory",
        "--submitters",
        "3",
        "--messages",
        "200",
        "--compare",
        "--runs",
        "3",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    let runs = v["baseline_runs"].as_array().unwrap();
    assert_eq!(runs.len(), 3);
    assert!(runs.iter().all(|k| k["messages"] == 200), "{v}");
    let alone = v["baseline"]["per_second"].as_f64().unwrap();
    let mut each: Vec<f64> = runs
        .iter()
        .map(|k| k["per_second"].as_f64().unwrap())
        .collect();
    each.sort_by(f64::total_cmp);
    assert_eq!(alone, each[1], "the median of the three: {v}");
    let ratio = v["append_ratio"].as_f64().unwrap();
    let expected = v["per_second"].as_f64().unwrap() / alone;
    assert!((ratio - expected).abs() < 1e-9 * expected.max(1.0), "{v}");
    assert!(v["replay_ratio"].is_null(), "no table to read back: {v}");
    // The human form names the baseline and the ratio.
    let r = run(&[
        "bench",
        "--driver",
        "memory",
        "--messages",
        "50",
        "--compare",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("baseline: the kernel alone"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("toka/kernel"), "{}", r.stdout);
}

#[test]
fn terminate_revoke_inspect_root_token_and_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let (root, admin) = init(dir.path());
    let cfg = config(dir.path());
    let cfg = cfg.to_str().unwrap();
    let server = Server::start(dir.path());
    let r = client(&server, &admin, &["--json", "agent", "spawn", "doomed"]);
    let doomed =
        serde_json::from_str::<Value>(r.stdout.trim()).unwrap()["events"][0]["event"]["agent"]
            .as_str()
            .unwrap()
            .to_string();
    let r = client(
        &server,
        &admin,
        &[
            "--json",
            "token",
            "issue",
            "--sub",
            &doomed,
            "--perm",
            "observation:emit",
        ],
    );
    let issued: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    let (doomed_token, jti) = (
        issued["token"].as_str().unwrap(),
        issued["jti"].as_str().unwrap(),
    );

    // inspect shows the claims without a server.
    let r = run(&["--json", "token", "inspect", doomed_token]);
    let shown: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    let claims = &shown["claims"];
    assert_eq!(claims["sub"], doomed);
    assert_eq!(
        claims["permissions"],
        serde_json::json!(["observation:emit"])
    );
    assert_eq!(run(&["token", "inspect", "garbage"]).code, 1);

    // revoke: the token stops working, for writes (the kernel) and for reads (the
    // API's own check, whose cache of verified tokens already holds this one).
    assert_eq!(
        client(&server, doomed_token, &["observe", "before"]).code,
        0
    );
    assert_eq!(client(&server, doomed_token, &["state"]).code, 0);
    assert_eq!(client(&server, &admin, &["token", "revoke", jti]).code, 0);
    let r = client(&server, doomed_token, &["observe", "after"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("revoked"), "{}", r.stderr);
    let r = client(&server, doomed_token, &["state"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("revoked"), "{}", r.stderr);

    // terminate: the agent and its tasks are gone for good.
    assert_eq!(
        client(
            &server,
            &admin,
            &["task", "schedule", "--agent", &doomed, "never done"]
        )
        .code,
        0
    );
    assert_eq!(
        client(&server, &admin, &["agent", "terminate", &doomed]).code,
        0
    );
    let r = client(
        &server,
        &admin,
        &["--json", "task", "list", "--agent", &doomed],
    );
    let tasks: Vec<Value> = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(tasks[0]["state"], "cancelled");
    assert_eq!(server.stop(), 0);

    // Offline: a fresh admin token from the key, snapshots.
    let r = run(&["--json", "token", "root", "--config", cfg]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let fresh: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(fresh["root"], root);
    let r = run(&["--json", "snapshot", "create", "--config", cfg]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let taken = serde_json::from_str::<Value>(r.stdout.trim()).unwrap()["snapshot"]
        .as_u64()
        .unwrap();
    let r = run(&["--json", "snapshot", "list", "--config", cfg]);
    let list: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert!(
        list["snapshots"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!(taken))
    );
    // The fresh token works on a restarted server, which recovers from the snapshot.
    let server = Server::start(dir.path());
    assert_eq!(
        client(&server, fresh["token"].as_str().unwrap(), &["state"]).code,
        0
    );
}

#[test]
fn events_follow_streams_new_events_and_reconnects_after_a_restart() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let (_, admin) = init_without_tools(dir.path());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let server = Server::start_on(dir.path(), &listen, |_| {});
    let mut follower = toka()
        .env("TOKA_SERVER", &server.url)
        .env("TOKA_TOKEN", &admin)
        .args(["--json", "events", "--follow", "--from", "1"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    assert_eq!(
        client(&server, &admin, &["task", "schedule", "streamed"]).code,
        0
    );
    let mut lines = BufReader::new(follower.stdout.take().unwrap()).lines();
    let first: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    let second: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    let third: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(
        (
            first["seq"].as_u64(),
            second["seq"].as_u64(),
            third["seq"].as_u64()
        ),
        (Some(1), Some(2), Some(3))
    );
    assert_eq!(second["kind"], "token.issued");
    assert_eq!(third["event"]["spec"]["description"], "streamed");
    // The server restarts: the follower reconnects and goes on from seq 4, without
    // missing or repeating an event.
    assert_eq!(server.stop(), 0);
    let server = Server::start_on(dir.path(), &listen, |_| {});
    assert_eq!(
        client(&server, &admin, &["task", "schedule", "after the restart"]).code,
        0
    );
    let fourth: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(fourth["seq"].as_u64(), Some(4), "{fourth}");
    assert_eq!(fourth["event"]["spec"]["description"], "after the restart");
    let _ = follower.kill();
    let _ = follower.wait();
    assert_eq!(server.stop(), 0);
}

#[test]
fn after_a_clean_stop_the_database_file_alone_holds_the_log() {
    if !sqlite3_installed() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (_, admin) = init_without_tools(dir.path());
    let server = Server::start(dir.path());
    for n in 0..5 {
        let r = client(&server, &admin, &["observe", &format!("note {n}")]);
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
    assert_eq!(server.stop(), 0);
    // Copy the database file alone (no -wal, no -shm), as an operator might.
    let copy = dir.path().join("copy.db");
    std::fs::copy(dir.path().join("data/toka.db"), &copy).unwrap();
    let out = std::process::Command::new("sqlite3")
        .arg(&copy)
        .arg("SELECT count(*) FROM events")
        .output()
        .unwrap();
    let count: u64 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0);
    assert!(
        count >= 7,
        "the copy holds {count} events: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Whether the sqlite3 command-line tool is there (CI must have it).
fn sqlite3_installed() -> bool {
    let there = std::process::Command::new("sqlite3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        there || std::env::var_os("CI").is_none(),
        "CI must have sqlite3 (scripts/test.sh installs it)"
    );
    there
}
