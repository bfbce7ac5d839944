#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr
)]
//! `toka mcp` with a real MCP client, the official Python SDK (issue 11, bridge mode):
//! `tools/list` shows exactly the token's tools with their schemas; calls go through
//! Toka (recorded like any call); a refusal or a failed tool is an MCP tool error with
//! Toka's reason, never a protocol failure; a call waiting for approval answers with
//! its id and state.

mod util;

use std::process::Command;

use serde_json::Value;
use util::*;

/// Whether the MCP Python SDK is installed (CI must have it).
fn sdk_installed() -> bool {
    let installed = Command::new("python3")
        .args(["-c", "import mcp"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !installed {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have the MCP Python SDK (scripts/test.sh installs it)"
        );
        eprintln!("\n*** SKIPPED MCP client test: no `mcp` Python package (pip install mcp) ***\n");
    }
    installed
}

fn script(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/mcp")
        .join(name)
}

#[test]
fn streamable_http_at_slash_mcp_checks_the_bearer_on_every_request() {
    if !sdk_installed() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (_, admin) = init(dir.path());
    let server = Server::start(dir.path());
    std::fs::write(dir.path().join("workspace/hello.txt"), "hello over HTTP").unwrap();
    let (agent, token) = agent_with(&server, &admin, "mcp-agent", &["tool:fs.read"]);
    // Without a token, or with a bad one: 401 and a Bearer challenge.
    for auth in [None, Some("Bearer not.a.token")] {
        let mut curl = Command::new("curl");
        curl.args([
            "-s",
            "-i",
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
        ]);
        curl.args(["-H", "Accept: application/json, text/event-stream"]);
        if let Some(a) = auth {
            curl.args(["-H", &format!("Authorization: {a}")]);
        }
        let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
        let out = curl
            .args(["-d", body, &format!("{}/mcp", server.url)])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_lowercase();
        assert!(text.starts_with("http/1.1 401"), "{auth:?}: {text}");
        assert!(
            text.contains("www-authenticate: bearer realm=\"toka\""),
            "{auth:?}: {text}"
        );
    }
    let out = Command::new("python3")
        .arg(script("http_client.py"))
        .arg(&server.url)
        .arg(&token)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "MCP client failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap();
    // The tool it may call, and the reads every token has (they show its scope).
    let reads = [
        "toka.list_agents",
        "toka.list_tasks",
        "toka.read_call",
        "toka.read_events",
    ];
    let mut expected = vec!["fs.read"];
    expected.extend(reads);
    assert_eq!(v["tools"], serde_json::json!(expected), "{v}");
    assert_eq!(v["read"]["is_error"], false, "{v}");
    assert!(
        v["read"]["text"]
            .as_str()
            .unwrap()
            .contains("hello over HTTP"),
        "{v}"
    );
    assert_eq!(v["escape"]["is_error"], true, "{v}");
    assert!(
        v["escape"]["text"]
            .as_str()
            .unwrap()
            .contains("absolute paths"),
        "{v}"
    );
    let r = client(&server, &admin, &["--json", "events", "--from", "1"]);
    let called = r
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["kind"] == "tool.called" && e["origin"] == agent.as_str())
        .count();
    assert_eq!(called, 2, "both calls are in the log under the agent");
    assert_eq!(server.stop(), 0);
}

#[test]
fn the_official_mcp_client_lists_and_calls_through_toka() {
    if !sdk_installed() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (_, admin) = init(dir.path());
    let server = Server::start(dir.path());
    std::fs::write(dir.path().join("workspace/hello.txt"), "hello over MCP").unwrap();
    // An agent whose token allows fs.read and fs.write, not fs.list.
    let (agent, token) = agent_with(
        &server,
        &admin,
        "mcp-agent",
        &["tool:fs.read", "tool:fs.write", "task:schedule"],
    );

    let binary = assert_cmd::cargo::cargo_bin("toka");
    let out = Command::new("python3")
        .arg(script("stdio_client.py"))
        .arg(&binary)
        .args(["mcp", "--server", &server.url])
        .env("TOKA_TOKEN", &token)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "MCP client failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap();
    let expected = [
        "fs.read",
        "fs.write",
        "toka.list_agents",
        "toka.list_tasks",
        "toka.read_call",
        "toka.read_events",
        "toka.schedule_task",
    ];
    assert_eq!(v["tools"], serde_json::json!(expected), "{v}");
    // Toka's own operations: allowed ones run (recorded), others are refused.
    assert_eq!(v["schedule"]["is_error"], false, "{v}");
    assert!(
        v["tasks"]["text"]
            .as_str()
            .unwrap()
            .contains("scheduled over MCP"),
        "{v}"
    );
    assert_eq!(v["spawn_refused"]["is_error"], true);
    assert!(
        v["spawn_refused"]["text"]
            .as_str()
            .unwrap()
            .contains("agent:spawn"),
        "{v}"
    );
    assert_eq!(v["bad_id"]["is_error"], true);
    assert!(
        v["bad_id"]["text"].as_str().unwrap().contains("UUID"),
        "{v}"
    );
    assert_eq!(
        v["schemas"]["fs.read"]["required"],
        serde_json::json!(["path"])
    );
    assert_eq!(v["read_ok"]["is_error"], false, "{v}");
    assert!(
        v["read_ok"]["text"]
            .as_str()
            .unwrap()
            .contains("hello over MCP"),
        "{v}"
    );
    assert_eq!(v["read_escape"]["is_error"], true);
    assert!(
        v["read_escape"]["text"]
            .as_str()
            .unwrap()
            .contains("`..` leaves the workspace"),
        "{v}"
    );
    assert_eq!(v["read_bad_input"]["is_error"], true);
    assert!(
        v["read_bad_input"]["text"]
            .as_str()
            .unwrap()
            .contains("tool_input_invalid"),
        "{v}"
    );
    assert_eq!(v["not_permitted"]["is_error"], true);
    assert!(
        v["not_permitted"]["text"]
            .as_str()
            .unwrap()
            .contains("tool:fs.list"),
        "{v}"
    );
    assert_eq!(v["write_waits"]["is_error"], false);
    assert!(
        v["write_waits"]["text"]
            .as_str()
            .unwrap()
            .contains("awaiting_approval"),
        "{v}"
    );

    // Every call is in the log, under the agent's token.
    let r = client(&server, &admin, &["--json", "events", "--from", "1"]);
    let called: Vec<Value> = r
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["kind"] == "tool.called")
        .collect();
    assert_eq!(
        called.len(),
        3,
        "read_ok, read_escape and write_waits were called: {called:?}"
    );
    assert!(called.iter().all(|e| e["origin"] == agent.as_str()));
    assert_eq!(server.stop(), 0);

    // On its own, on the data folder (no server): the same tools, the same record.
    let out = Command::new("python3")
        .arg(script("stdio_client.py"))
        .arg(&binary)
        .args(["mcp", "--config", config(dir.path()).to_str().unwrap()])
        .env("TOKA_TOKEN", &token)
        .env_remove("TOKA_SERVER")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "stand-alone MCP failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap();
    assert_eq!(v["tools"], serde_json::json!(expected), "{v}");
    assert!(
        v["read_ok"]["text"]
            .as_str()
            .unwrap()
            .contains("hello over MCP"),
        "{v}"
    );
    let r = run(&["export", "--config", config(dir.path()).to_str().unwrap()]);
    let calls = r
        .stdout
        .lines()
        .filter(|l| l.contains("\"tool.called\""))
        .count();
    assert_eq!(calls, 6, "three calls per session are recorded");
    let r = run(&["verify", "--config", config(dir.path()).to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
}

#[test]
fn downstream_mcp_servers_become_recorded_toka_tools() {
    if !sdk_installed() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (_, admin) = init(dir.path());
    let python = String::from_utf8(
        Command::new("python3")
            .args(["-c", "import sys; print(sys.executable)"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let counter = dir.path().join("count.txt");
    let path_var = std::env::var("PATH").unwrap_or_default();
    let cfg = config(dir.path());
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str(&format!(
        "\n[tools]\nrequire_approval = [\"mcp.py.count\"]\n\n[tools.mcp.py]\ncommand = {:?}\nargs = [{:?}]\n\
         env = {{ COUNT_FILE = {:?}, PATH = {:?} }}\ntimeout_ms = 3000\n",
        python.trim(),
        script("downstream_server.py").display().to_string(),
        counter.display().to_string(),
        path_var,
    ));
    std::fs::write(&cfg, text).unwrap();
    let server = Server::start(dir.path());
    let r = client(&server, &admin, &["--json", "tool", "list"]);
    let v: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    let names: Vec<&str> = v["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    for expected in ["mcp.py.echo", "mcp.py.count", "mcp.py.die", "mcp.py.hang"] {
        assert!(
            names.contains(&expected),
            "{expected} not offered: {names:?}"
        );
    }
    // A call goes through, with the downstream schema checked by the kernel first.
    let r = client(
        &server,
        &admin,
        &[
            "--json",
            "tool",
            "call",
            "mcp.py.echo",
            "--input",
            r#"{"text":"hi"}"#,
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("echo: hi"), "{}", r.stdout);
    let r = client(
        &server,
        &admin,
        &["tool", "call", "mcp.py.echo", "--input", r#"{"text": 5}"#],
    );
    assert!(r.stderr.contains("tool_input_invalid"), "{}", r.stderr);
    // Approval applies to downstream tools as to any: nothing ran before it.
    let r = client(
        &server,
        &admin,
        &["--json", "tool", "call", "mcp.py.count", "--wait", "0"],
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(!counter.exists(), "the downstream tool ran before approval");
    // A downstream that dies or hangs fails the call; it never hangs the caller.
    let started = std::time::Instant::now();
    let r = client(&server, &admin, &["--json", "tool", "call", "mcp.py.die"]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    let r2 = client(&server, &admin, &["--json", "tool", "call", "mcp.py.hang"]);
    assert_eq!(r2.code, 1, "{}", r2.stdout);
    assert!(
        r2.stdout.contains("did not answer within 3000 ms"),
        "{}",
        r2.stdout
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    // And the server is started again for the next call.
    let r = client(
        &server,
        &admin,
        &[
            "--json",
            "tool",
            "call",
            "mcp.py.echo",
            "--input",
            r#"{"text":"again"}"#,
        ],
    );
    assert_eq!(r.code, 0, "{} {}", r.stdout, r.stderr);
    assert!(r.stdout.contains("echo: again"), "{}", r.stdout);
    assert_eq!(server.stop(), 0);
    let r = run(&["verify", "--config", cfg.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // The downstream server stopped with the node (none left running).
    let left = Command::new("pgrep")
        .args(["-f", &script("downstream_server.py").display().to_string()])
        .output()
        .unwrap();
    assert!(
        left.stdout.is_empty(),
        "downstream servers outlived the node: {}",
        String::from_utf8_lossy(&left.stdout)
    );
}
