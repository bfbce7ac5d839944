#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The built-in tools' sandboxes (issue 10): a table of escape attempts for the fs
//! tools, hosts off the allowlist and redirects to them for `http.fetch` (real servers
//! on 127.0.0.1), and injection attempts for `exec`. Each is refused with a clear
//! error, and nothing outside the workspace is touched.

use std::path::Path;

use serde_json::{Value, json};
use toka_runtime::tools::{ToolHost, ToolInvocation};
use toka_tools::{Registry, ToolsConfig};
use toka_types::{EntityId, ToolResult};

struct Sandbox {
    _dir: tempfile::TempDir,
    root: std::path::PathBuf,
    outside: std::path::PathBuf,
    registry: Registry,
}

fn sandbox(extra: &str) -> Sandbox {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let outside = root.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret.txt"), "top secret").unwrap();
    let text = format!("workspace = \"ws\"\n{extra}");
    let table: toml::Table = toml::from_str(&text).unwrap();
    let config = ToolsConfig::from_table(&table, &root).unwrap();
    let registry = Registry::from_config(&config).unwrap();
    Sandbox {
        _dir: dir,
        root,
        outside,
        registry,
    }
}

impl Sandbox {
    fn ws(&self) -> std::path::PathBuf {
        self.root.join("ws")
    }

    async fn call(&self, tool: &str, input: Value) -> ToolResult {
        self.registry
            .run(ToolInvocation {
                call: EntityId::from_u128(1),
                agent: EntityId::from_u128(2),
                tool: tool.into(),
                input,
                attempt: 1,
            })
            .await
    }

    fn outside_untouched(&self) {
        let names: Vec<_> = std::fs::read_dir(&self.outside)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(
            names,
            ["secret.txt"],
            "something was written outside the workspace"
        );
        assert_eq!(
            std::fs::read_to_string(self.outside.join("secret.txt")).unwrap(),
            "top secret"
        );
    }
}

fn error_of(result: &ToolResult) -> &str {
    match result {
        ToolResult::Error { error } => error,
        ToolResult::Ok { output } => panic!("expected a refusal, got {output}"),
    }
}

#[tokio::test]
async fn fs_escape_attempts_are_refused() {
    let s = sandbox("");
    let ws = s.ws();
    std::fs::write(ws.join("inside.txt"), "hello").unwrap();
    std::os::unix::fs::symlink(&s.outside, ws.join("out-dir")).unwrap();
    std::os::unix::fs::symlink(s.outside.join("secret.txt"), ws.join("out-file")).unwrap();
    std::os::unix::fs::symlink(ws.join("inside.txt"), ws.join("in-link")).unwrap();
    let secret = s.outside.join("secret.txt").display().to_string();
    let long = "n".repeat(4096);
    let cases: Vec<(&str, Value, &str)> = vec![
        ("fs.read", json!({"path": "../outside/secret.txt"}), "`..`"),
        (
            "fs.read",
            json!({"path": "a/../../outside/secret.txt"}),
            "`..`",
        ),
        ("fs.read", json!({"path": secret}), "absolute"),
        (
            "fs.read",
            json!({"path": "out-file"}),
            "outside the workspace",
        ),
        (
            "fs.read",
            json!({"path": "out-dir/secret.txt"}),
            "outside the workspace",
        ),
        ("fs.read", json!({"path": "inside.txt\u{0}.png"}), "NUL"),
        ("fs.read", json!({"path": long}), "longer than"),
        (
            "fs.list",
            json!({"path": "out-dir"}),
            "outside the workspace",
        ),
        ("fs.list", json!({"path": ".."}), "`..`"),
        (
            "fs.write",
            json!({"path": "../outside/new.txt", "content": "x"}),
            "`..`",
        ),
        (
            "fs.write",
            json!({"path": "out-dir/new.txt", "content": "x"}),
            "outside the workspace",
        ),
        (
            "fs.write",
            json!({"path": "out-file", "content": "pwned"}),
            "symlink",
        ),
        (
            "fs.write",
            json!({"path": "in-link", "content": "x"}),
            "symlink",
        ),
        (
            "fs.write",
            json!({"path": "out-dir/sub/x", "content": "x", "create_dirs": true}),
            "outside the workspace",
        ),
        (
            "fs.write",
            json!({"path": format!("{}/x", "d".repeat(300)), "content": "x"}),
            "longer than 255",
        ),
    ];
    for (tool, input, needle) in cases {
        let result = s.call(tool, input.clone()).await;
        let error = error_of(&result);
        assert!(error.contains(needle), "{tool} {input}: {error}");
    }
    s.outside_untouched();
    assert_eq!(
        std::fs::read_to_string(ws.join("inside.txt")).unwrap(),
        "hello"
    );
}

#[tokio::test]
async fn fs_tools_work_inside_and_cap_sizes() {
    let s = sandbox("max_read_bytes = 8\nmax_write_bytes = 16");
    let ok = |r: ToolResult| match r {
        ToolResult::Ok { output } => output,
        ToolResult::Error { error } => panic!("{error}"),
    };
    let out = ok(s
        .call(
            "fs.write",
            json!({"path": "notes/a.txt", "content": "hello world", "create_dirs": true}),
        )
        .await);
    assert_eq!(out["written"], 11);
    let out = ok(s.call("fs.read", json!({"path": "notes/a.txt"})).await);
    assert_eq!(out["content"], "hello wo");
    assert_eq!(out["truncated"], true);
    let out = ok(s
        .call("fs.read", json!({"path": "notes/a.txt", "offset": 6}))
        .await);
    assert_eq!(out["content"], "world");
    let out = ok(s.call("fs.list", json!({})).await);
    assert_eq!(out["entries"][0]["name"], "notes");
    assert_eq!(out["entries"][0]["kind"], "dir");
    let big = s
        .call(
            "fs.write",
            json!({"path": "b.txt", "content": "x".repeat(17)}),
        )
        .await;
    assert!(error_of(&big).contains("limit 16"));
    assert!(!s.ws().join("b.txt").exists());
}

async fn serve(app: axum::Router) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    port
}

#[tokio::test]
async fn http_fetch_stays_on_the_allowlist_through_redirects() {
    use axum::response::Redirect;
    use axum::routing::get;
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = std::sync::Arc::clone(&hits);
    let off_list = serve(axum::Router::new().route(
        "/",
        get(move || {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async { "you should not see this" }
        }),
    ))
    .await;
    let target = format!("http://127.0.0.1:{off_list}/");
    let big = "z".repeat(100);
    let allowed = serve(
        axum::Router::new()
            .route("/hello", get(|| async { "hi there" }))
            .route("/big", get(move || async move { big }))
            .route("/inside", get(|| async { Redirect::temporary("/hello") }))
            .route(
                "/away",
                get(move || async move { Redirect::temporary(&target) }),
            ),
    )
    .await;
    let s = sandbox(&format!(
        "[http]\nallow_hosts = [\"127.0.0.1:{allowed}\"]\nmax_response_bytes = 10\n"
    ));
    let base = format!("http://127.0.0.1:{allowed}");
    match s
        .call("http.fetch", json!({"url": format!("{base}/inside")}))
        .await
    {
        ToolResult::Ok { output } => {
            assert_eq!(output["status"], 200);
            assert_eq!(output["body"], "hi there");
            assert!(output["url"].as_str().unwrap().ends_with("/hello"));
        }
        ToolResult::Error { error } => panic!("{error}"),
    }
    match s
        .call("http.fetch", json!({"url": format!("{base}/big")}))
        .await
    {
        ToolResult::Ok { output } => {
            assert_eq!(output["bytes"], 10);
            assert_eq!(output["truncated"], true);
        }
        ToolResult::Error { error } => panic!("{error}"),
    }
    for (url, needle) in [
        (
            format!("http://127.0.0.1:{off_list}/"),
            "not on the allowlist",
        ),
        (format!("{base}/away"), "redirect to"),
        ("file:///etc/passwd".to_string(), "scheme"),
        (
            format!("http://localhost:{allowed}/hello"),
            "not on the allowlist",
        ),
    ] {
        let result = s.call("http.fetch", json!({"url": url})).await;
        let error = error_of(&result);
        assert!(error.contains(needle), "{url}: {error}");
    }
    let host_header = s
        .call(
            "http.fetch",
            json!({"url": format!("{base}/hello"), "headers": {"Host": "evil"}}),
        )
        .await;
    assert!(error_of(&host_header).contains("Host"));
    assert_eq!(
        hits.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "the off-list server was reached"
    );
}

#[tokio::test]
async fn http_fetch_is_not_offered_without_an_allowlist() {
    let s = sandbox("");
    assert!(s.registry.get("http.fetch").is_none());
    assert!(s.registry.specs().iter().all(|t| t.name != "http.fetch"));
}

fn exec_config(root: &Path) -> String {
    let marker = root.join("outside").join("pwned");
    format!(
        r#"
[exec.echo]
program = "/bin/echo"
args = ["{{word}}"]
params.word = {{ type = "string" }}

[exec.printenv]
program = "/usr/bin/env"
env = {{ ONLY = "this" }}

[exec.touch]
program = "/usr/bin/touch"
args = ["--", "{{name}}"]
params.name = {{ type = "string" }}
allow_leading_dash = ["name"]

[exec.sleep]
program = "/bin/sleep"
args = ["{{secs}}"]
params.secs = {{ type = "integer" }}
timeout_ms = 200
# {marker:?}
"#
    )
}

#[tokio::test]
async fn exec_runs_only_declared_commands_without_a_shell() {
    let probe = tempfile::tempdir().unwrap();
    let s = sandbox(&exec_config(probe.path()));
    let marker = s.outside.join("pwned");
    let out = |r: ToolResult| match r {
        ToolResult::Ok { output } => output,
        ToolResult::Error { error } => panic!("{error}"),
    };
    // Metacharacters stay one literal argument.
    for word in [
        format!("; touch {}", marker.display()),
        format!("$(touch {})", marker.display()),
        format!("`touch {}`", marker.display()),
        "a && b | c > d".to_string(),
        "*".to_string(),
    ] {
        let o = out(s.call("exec.echo", json!({"word": word})).await);
        assert_eq!(o["stdout"], format!("{word}\n"));
        assert_eq!(o["args"], json!([word]));
    }
    assert!(!marker.exists(), "a shell ran");
    // No option smuggling by default.
    let r = s.call("exec.echo", json!({"word": "-e \\x41"})).await;
    assert!(error_of(&r).contains("starts with '-'"));
    // The environment is cleared, the working folder is the workspace.
    let o = out(s.call("exec.printenv", json!({})).await);
    assert_eq!(o["stdout"], "ONLY=this\n");
    let o = out(s.call("exec.touch", json!({"name": "-made-here"})).await);
    assert_eq!(o["exit_code"], 0);
    assert!(s.ws().join("-made-here").exists());
    // Undeclared commands do not exist.
    let r = s.call("exec.sh", json!({"cmd": "id"})).await;
    assert!(error_of(&r).contains("does not offer"));
    // Every exec tool needs approval and runs at most once unless declared otherwise.
    for spec in s
        .registry
        .specs()
        .into_iter()
        .filter(|t| t.name.starts_with("exec."))
    {
        assert_eq!(
            spec.approval,
            toka_types::ApprovalPolicy::Required,
            "{}",
            spec.name
        );
        assert_eq!(
            spec.retry,
            toka_types::RetryPolicy::AtMostOnce,
            "{}",
            spec.name
        );
    }
    s.outside_untouched();
}
