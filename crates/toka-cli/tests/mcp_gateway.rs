#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr
)]
//! Toka as an MCP gateway (issue 11), with downstream servers written with the
//! official Python SDK: one started over stdio, one reached over streamable HTTP with
//! a bearer token and a header. Their tools become recorded Toka tools; a downstream
//! that dies or hangs fails the call, is retired while down and registered again
//! once back; a client listening with `subscriptions/listen` is told each time the
//! tools its token may call change (and when the token is revoked).

mod util;

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use util::*;

/// The token the HTTP downstream expects, passed to Toka by environment variable.
const WEB_TOKEN: &str = "downstream-secret-7f3a";

/// A downstream MCP server on streamable HTTP, stopped when dropped.
struct HttpDownstream {
    child: Child,
    port: u16,
}

impl HttpDownstream {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("python3")
            .arg(mcp_script("downstream_server.py"))
            .args(["--http", &port.to_string()])
            .env("EXPECT_TOKEN", WEB_TOKEN)
            .env("COUNT_FILE", "/dev/null")
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "the HTTP downstream did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Self { child, port }
    }
}

impl Drop for HttpDownstream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Appends the gateway's `[tools]` to the node's configuration: `py` over stdio
/// (refusing to start while `broken` exists), and `web` over HTTP if given a port.
fn configure(dir: &Path, broken: &Path, http_port: Option<u16>) {
    let cfg = config(dir);
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str(&format!(
        "\n[tools]\nrequire_approval = [\"mcp.py.count\"]\n\n[tools.mcp.py]\ncommand = {:?}\nargs = [{:?}]\n\
         env = {{ COUNT_FILE = {:?}, BROKEN_FILE = {:?}, PATH = {:?} }}\ntimeout_ms = 3000\n",
        python3(),
        mcp_script("downstream_server.py").display().to_string(),
        dir.join("count.txt").display().to_string(),
        broken.display().to_string(),
        std::env::var("PATH").unwrap_or_default(),
    ));
    if let Some(port) = http_port {
        text.push_str(&format!(
            "\n[tools.mcp.web]\nurl = \"http://127.0.0.1:{port}/mcp\"\n\
             headers = {{ X-Team = \"agents\" }}\nbearer_token_env = \"WEB_TOKEN\"\ntimeout_ms = 5000\n"
        ));
    }
    std::fs::write(&cfg, text).unwrap();
}

fn tool_names(server: &Server, token: &str) -> Vec<String> {
    let r = client(server, token, &["--json", "tool", "list"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    v["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect()
}

/// Waits (up to 40 s) until `ok` holds for the tools `token` may call.
fn wait_for_tools(server: &Server, token: &str, what: &str, ok: impl Fn(&[String]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let names = tool_names(server, token);
        if ok(&names) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: tools are {names:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn events(server: &Server, admin: &str) -> Vec<Value> {
    let r = client(server, admin, &["--json", "events", "--from", "1"]);
    r.stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect()
}

#[test]
fn downstream_mcp_servers_become_recorded_toka_tools() {
    if !mcp_sdk_installed() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (_, admin) = init(dir.path());
    let web = HttpDownstream::start();
    let broken = dir.path().join("broken");
    configure(dir.path(), &broken, Some(web.port));
    let server = Server::start_with(dir.path(), |c| {
        c.env("WEB_TOKEN", WEB_TOKEN);
    });
    // A Python server that starts slower than the first connection waits (a loaded CI
    // machine: importing the SDK took over 3 s) is offered when its supervisor's next
    // attempt reaches it; wait for that rather than assume the first one did.
    let expected = [
        "mcp.py.echo",
        "mcp.py.count",
        "mcp.py.die",
        "mcp.py.hang",
        "mcp.web.echo",
    ];
    wait_for_tools(&server, &admin, "every downstream tool offered", |names| {
        expected.iter().all(|e| names.iter().any(|n| n == e))
    });
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

    // Through the official MCP client: a Toka operation and a tool of each downstream
    // server, under an agent's own token.
    let (agent, token) = agent_with(
        &server,
        &admin,
        "gateway-user",
        &["tool:mcp.*", "task:schedule"],
    );
    let calls = json!([
        ["toka.schedule_task", {"description": "through the gateway"}],
        ["mcp.py.echo", {"text": "over stdio"}],
        ["mcp.web.echo", {"text": "over HTTP"}],
        ["fs.read", {"path": "x"}],
    ]);
    let v = python_json(
        Command::new("python3")
            .arg(mcp_script("calls_client.py"))
            .arg("stdio")
            .arg(assert_cmd::cargo::cargo_bin("toka"))
            .args(["mcp", "--server", &server.url])
            .env("TOKA_TOKEN", &token)
            .env("CALLS", calls.to_string()),
    );
    let listed: Vec<&str> = v["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert!(listed.contains(&"mcp.web.echo"), "{listed:?}");
    assert!(!listed.contains(&"fs.read"), "not permitted: {listed:?}");
    let results = v["results"].as_array().unwrap();
    assert_eq!(results[0]["is_error"], false, "{v}");
    assert!(
        results[1]["text"]
            .as_str()
            .unwrap()
            .contains("echo: over stdio")
    );
    assert!(
        results[2]["text"]
            .as_str()
            .unwrap()
            .contains("echo: over HTTP")
    );
    assert_eq!(results[3]["is_error"], true, "{v}");
    assert!(
        results[3]["text"]
            .as_str()
            .unwrap()
            .contains("tool:fs.read")
    );
    // The log holds each call with the agent as origin and the token's jti, and the
    // downstream's answer in `tool.returned`.
    let jti = jti_of(&token);
    let log = events(&server, &admin);
    let mine: Vec<&Value> = log
        .iter()
        .filter(|e| e["origin"] == agent.as_str() && e["jti"] == jti.as_str())
        .collect();
    let kinds: Vec<&str> = mine.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "tool.called").count(),
        2,
        "{kinds:?}"
    );
    assert!(kinds.contains(&"task.scheduled"), "{kinds:?}");
    let returned: Vec<String> = log
        .iter()
        .filter(|e| e["kind"] == "tool.returned")
        .map(|e| e["event"].to_string())
        .collect();
    assert!(
        returned.iter().any(|r| r.contains("echo: over HTTP")),
        "{returned:?}"
    );

    // Approval applies to downstream tools as to any: nothing ran before it.
    let r = client(
        &server,
        &admin,
        &["--json", "tool", "call", "mcp.py.count", "--wait", "0"],
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        !dir.path().join("count.txt").exists(),
        "ran before approval"
    );
    // A downstream that dies or hangs fails the call; it never hangs the caller.
    let started = Instant::now();
    let r = client(&server, &admin, &["--json", "tool", "call", "mcp.py.die"]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    wait_for_tools(&server, &admin, "py back after die", |n| {
        n.iter().any(|t| t == "mcp.py.hang")
    });
    let r = client(&server, &admin, &["--json", "tool", "call", "mcp.py.hang"]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(
        r.stdout.contains("did not answer within 3000 ms"),
        "{}",
        r.stdout
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    // And it is started again for the next call.
    wait_for_tools(&server, &admin, "py back after hang", |n| {
        n.iter().any(|t| t == "mcp.py.echo")
    });
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
    // Each outage is in the log: retired while down, registered again once back.
    let log = events(&server, &admin);
    let retired = log
        .iter()
        .filter(|e| e["kind"] == "tool.retired" && e["event"].to_string().contains("mcp.py.echo"))
        .count();
    assert!(retired >= 2, "two outages, two retirements: {retired}");
    // SIGKILL of Toka while a downstream call runs: the call is at most once, so the
    // next start records it abandoned, outcome unknown (never run again).
    let r = client(
        &server,
        &admin,
        &["--json", "tool", "call", "mcp.py.hang", "--wait", "0"],
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
    let call = serde_json::from_str::<Value>(r.stdout.trim()).unwrap()["call"]
        .as_str()
        .unwrap()
        .to_string();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = client(&server, &admin, &["--json", "tool", "show", &call]);
        if r.stdout.contains("\"running\"") {
            break;
        }
        assert!(Instant::now() < deadline, "never started: {}", r.stdout);
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut server = server;
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    drop(server);
    let server = Server::start_with(dir.path(), |c| {
        c.env("WEB_TOKEN", WEB_TOKEN);
    });
    let r = client(&server, &admin, &["--json", "tool", "show", &call]);
    let shown: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(shown["status"], "abandoned", "{shown}");
    assert!(
        shown["reason"]
            .as_str()
            .unwrap()
            .contains("outcome unknown")
    );
    assert_eq!(server.stop(), 0);
    let r = run(&["verify", "--config", config(dir.path()).to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // The stdio downstream stopped with the node (none left running).
    let left = Command::new("pgrep")
        .args([
            "-f",
            &format!("{} *$", mcp_script("downstream_server.py").display()),
        ])
        .output()
        .unwrap();
    assert!(
        left.stdout.is_empty(),
        "downstream servers outlived the node: {}",
        String::from_utf8_lossy(&left.stdout)
    );
}

/// A listening MCP client's output lines, read on a thread.
struct Listener {
    child: Child,
    lines: mpsc::Receiver<Value>,
}

impl Listener {
    fn start(protocol: &str, mode: &str, target: &[&str], token: &str) -> Self {
        let mut child = Command::new("python3")
            .arg(mcp_script("listen_client.py"))
            .arg(protocol)
            .arg(mode)
            .args(target)
            .env("TOKA_TOKEN", token)
            .env("CHANGES", "3")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str(&line) {
                    let _ = tx.send(v);
                }
            }
        });
        Self { child, lines }
    }

    fn next(&self, what: &str) -> Value {
        let v = self
            .lines
            .recv_timeout(Duration::from_secs(45))
            .unwrap_or_else(|_| panic!("no {what} from the listening client"));
        assert_ne!(v["step"], "timeout", "{what}");
        v
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn has(v: &Value, tool: &str) -> bool {
    v["tools"]
        .as_array()
        .is_some_and(|t| t.iter().any(|n| n == tool))
}

#[test]
fn listening_mcp_clients_learn_when_their_tools_change() {
    if !mcp_sdk_installed() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (_, admin) = init(dir.path());
    let broken = dir.path().join("broken");
    configure(dir.path(), &broken, None);
    let server = Server::start(dir.path());
    let (_, token) = agent_with(&server, &admin, "listener", &["tool:mcp.py.*"]);
    let binary = assert_cmd::cargo::cargo_bin("toka");
    let binary = binary.to_str().unwrap();
    // Over the stdio bridge and on /mcp over HTTP; on protocol 2026-07-28
    // (`subscriptions/listen`) and on the initialize handshake (session notifications).
    let bridge = [binary, "mcp", "--server", &server.url];
    let clients = [
        Listener::start("modern", "stdio", &bridge, &token),
        Listener::start("modern", "http", &[&server.url], &token),
        Listener::start("legacy", "stdio", &bridge, &token),
        Listener::start("legacy", "http", &[&server.url], &token),
    ];
    for (i, c) in clients.iter().enumerate() {
        let v = c.next("listening");
        assert_eq!(v["step"], "listening", "{v}");
        let protocol = if i < 2 { "2026-07-28" } else { "2025-11-25" };
        assert_eq!(v["protocol"], protocol, "{v}");
        assert!(has(&v, "mcp.py.echo"), "{v}");
    }

    // The downstream dies and cannot start again: its tools are retired, calls to
    // them refused at once, and the listeners told.
    std::fs::write(&broken, "").unwrap();
    let r = client(&server, &admin, &["--json", "tool", "call", "mcp.py.die"]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    for c in &clients {
        let v = c.next("change after the outage");
        assert_eq!(v["step"], "changed", "{v}");
        assert!(!has(&v, "mcp.py.echo"), "retired while down: {v}");
    }
    let r = client(
        &server,
        &admin,
        &["tool", "call", "mcp.py.echo", "--input", r#"{"text":"x"}"#],
    );
    assert!(r.stderr.contains("tool_retired"), "{}", r.stderr);

    // It can start again: its tools are registered again, and the listeners told.
    std::fs::remove_file(&broken).unwrap();
    for c in &clients {
        let v = c.next("change once back");
        assert!(has(&v, "mcp.py.echo"), "registered again: {v}");
    }

    // The token is revoked: the list the client may use is gone.
    let jti = jti_of(&token);
    let r = client(&server, &admin, &["token", "revoke", &jti]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    for (i, c) in clients.iter().enumerate() {
        let v = c.next("change after revocation");
        assert_eq!(v["step"], "changed", "{v}");
        let error = v["error"]
            .as_str()
            .unwrap_or_else(|| panic!("still listed: {v}"));
        // The bridge passes Toka's reason on; /mcp refuses the request with a 401
        // before MCP (the SDK reports an error response).
        if i % 2 == 0 {
            assert!(error.contains("revoked"), "{v}");
        }
    }
    drop(clients);
    assert_eq!(server.stop(), 0);
}
