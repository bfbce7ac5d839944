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

#[test]
fn the_official_mcp_client_lists_and_calls_through_toka() {
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
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (_, admin) = init(dir.path());
    let server = Server::start(dir.path());
    std::fs::write(dir.path().join("workspace/hello.txt"), "hello over MCP").unwrap();
    // An agent whose token allows fs.read and fs.write, not fs.list.
    let r = client(&server, &admin, &["--json", "agent", "spawn", "mcp-agent"]);
    let v: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    let agent = v["events"][0]["event"]["agent"]
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
            &agent,
            "--perm",
            "tool:fs.read",
            "--perm",
            "tool:fs.write",
        ],
    );
    let v: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    let token = v["token"].as_str().unwrap().to_string();

    let binary = assert_cmd::cargo::cargo_bin("toka");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mcp/stdio_client.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(&binary)
        .arg(&server.url)
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
    assert_eq!(
        v["tools"],
        serde_json::json!(["fs.read", "fs.write"]),
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
}
