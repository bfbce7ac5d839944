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
fn streamable_http_at_slash_mcp_checks_the_bearer_on_every_request() {
    if !mcp_sdk_installed() {
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
    let v = python_json(
        Command::new("python3")
            .arg(mcp_script("http_client.py"))
            .arg(&server.url)
            .arg(&token),
    );
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
    if !mcp_sdk_installed() {
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
    let v = python_json(
        Command::new("python3")
            .arg(mcp_script("stdio_client.py"))
            .arg(&binary)
            .args(["mcp", "--server", &server.url])
            .env("TOKA_TOKEN", &token),
    );
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

    // Approved by a person with `toka approve`, the call runs; reading it through MCP
    // (a new session of the same agent) gives its result.
    let text = v["write_waits"]["text"].as_str().unwrap();
    let call = text
        .strip_prefix("Toka call ")
        .and_then(|t| t.split_whitespace().next())
        .unwrap_or_else(|| panic!("no call id in {text:?}"));
    let r = client(&server, &admin, &["approve", call]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let read = serde_json::json!([["toka.read_call", {"call": call, "wait_secs": 10}]]);
    let read = python_json(
        Command::new("python3")
            .arg(mcp_script("calls_client.py"))
            .arg("stdio")
            .arg(&binary)
            .args(["mcp", "--server", &server.url])
            .env("TOKA_TOKEN", &token)
            .env("CALLS", read.to_string()),
    );
    let answer = read["results"][0]["text"].as_str().unwrap();
    assert!(answer.contains("\"status\":\"succeeded\""), "{answer}");
    assert!(
        answer.contains("\"written\":1"),
        "the result is in the answer: {answer}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("workspace/w.txt")).unwrap(),
        "x"
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
    assert!(
        r.stdout.contains("\"tool.approved\""),
        "the approval is in the log"
    );
    assert!(called.iter().all(|e| e["origin"] == agent.as_str()));
    assert_eq!(server.stop(), 0);

    // On its own, on the data folder (no server): the same tools, the same record.
    let v = python_json(
        Command::new("python3")
            .arg(mcp_script("stdio_client.py"))
            .arg(&binary)
            .args(["mcp", "--config", config(dir.path()).to_str().unwrap()])
            .env("TOKA_TOKEN", &token)
            .env_remove("TOKA_SERVER"),
    );
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
fn malformed_and_oversized_requests_leave_the_session_usable() {
    let dir = tempfile::tempdir().unwrap();
    let (_, admin) = init(dir.path());
    let server = Server::start(dir.path());
    // stdio: a line that is not JSON is skipped, an oversized tool input is the
    // API's clean refusal (an MCP tool error), and the session answers what follows.
    let initialize = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#;
    let big = "a".repeat(2 * 1024 * 1024);
    let input = [
        "{not json".to_string(),
        initialize.to_string(),
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#.to_string(),
        format!(
            r#"{{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{{"name":"fs.read","arguments":{{"path":"{big}"}}}}}}"#
        ),
        r#"{"jsonrpc":"2.0","id":3,"method":"tools/list"}"#.to_string(),
    ]
    .join("\n")
        + "\n";
    let mut child = toka()
        .args(["mcp", "--server", &server.url])
        .env("TOKA_TOKEN", &admin)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(input.as_bytes()).unwrap();
    } // closing stdin ends the session once the answers are out
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let answers: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let by_id = |id: u64| {
        answers
            .iter()
            .find(|a| a["id"] == id)
            .unwrap_or_else(|| panic!("no answer {id}: {answers:?}"))
    };
    assert!(by_id(1)["result"]["capabilities"]["tools"]["listChanged"] == true);
    let oversized = by_id(2);
    assert_eq!(oversized["result"]["isError"], true, "{oversized}");
    assert!(
        oversized.to_string().contains("413 body_too_large"),
        "{oversized}"
    );
    assert!(by_id(3)["result"]["tools"].as_array().unwrap().len() > 3);

    // HTTP: a body that is not JSON is a JSON-RPC parse error, one too large a 413;
    // the endpoint then answers a good request.
    let post = |body: &[u8]| {
        let mut curl = Command::new("curl")
            .args(["-s", "-m", "20", "-w", "\n%{http_code}", "-X", "POST"])
            .args(["-H", &format!("Authorization: Bearer {admin}")])
            .args(["-H", "Content-Type: application/json"])
            .args(["-H", "Accept: application/json, text/event-stream"])
            .args(["--data-binary", "@-", &format!("{}/mcp", server.url)])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        {
            use std::io::Write as _;
            let _ = curl.stdin.take().unwrap().write_all(body);
        }
        let out = curl.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let (body, status) = text.rsplit_once('\n').unwrap();
        (status.to_string(), body.to_string())
    };
    let (status, body) = post(b"{not json");
    assert_eq!(status, "400", "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"]["code"], -32700, "{v}");
    let (status, _) = post(&vec![b' '; 5 * 1024 * 1024]);
    assert_eq!(status, "413");
    let (status, body) = post(initialize.as_bytes());
    assert_eq!(status, "200", "{body}");
    assert!(body.contains("\"serverInfo\""), "{body}");
    assert_eq!(server.stop(), 0);
}

#[test]
fn an_mcp_agent_example_does_its_job_through_toka() {
    if !mcp_sdk_installed() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (_, admin) = init(dir.path());
    let server = Server::start(dir.path());
    std::fs::write(dir.path().join("workspace/a.txt"), "the quick brown fox").unwrap();
    std::fs::write(dir.path().join("workspace/b.txt"), "hello world").unwrap();
    std::fs::write(dir.path().join("workspace/c.md"), "not counted").unwrap();
    let (agent, token) = agent_with(
        &server,
        &admin,
        "counter",
        &["tool:fs.list", "tool:fs.read", "observation:emit"],
    );
    let example =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/mcp_agent.py");
    let out = Command::new("python3")
        .arg(example)
        .arg(&server.url)
        .env("TOKA_TOKEN", &token)
        .env("TOKA_BIN", assert_cmd::cargo::cargo_bin("toka"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("recorded: a.txt: 4 words, b.txt: 2 words"),
        "{stdout}"
    );
    // Its audit trail: three tool calls and the observation, all under its token.
    let jti = jti_of(&token);
    let r = client(&server, &admin, &["--json", "events", "--from", "1"]);
    let kinds: Vec<String> = r
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["origin"] == agent.as_str() && e["jti"] == jti.as_str())
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        kinds,
        [
            "tool.called",
            "tool.called",
            "tool.called",
            "observation.emitted"
        ],
        "{kinds:?}"
    );
    assert_eq!(server.stop(), 0);
}
