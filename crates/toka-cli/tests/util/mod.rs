//! Helpers: run `toka`, start and stop real `toka serve` processes.
#![allow(dead_code, clippy::print_stderr)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use assert_cmd::cargo::CommandCargoExt;
use serde_json::Value;

pub fn toka() -> Command {
    let mut c = Command::cargo_bin("toka").unwrap();
    // No saved profile of whoever runs the tests may leak in.
    c.env_remove("TOKA_TOKEN")
        .env_remove("TOKA_TOKEN_FILE")
        .env_remove("TOKA_PROFILE")
        .env(
            "XDG_CONFIG_HOME",
            std::env::temp_dir().join("toka-tests-no-profiles"),
        )
        .env_remove("TOKA_SERVER")
        .env_remove("TOKA_CONFIG")
        .env("RUST_LOG", "warn");
    c
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

pub fn run(args: &[&str]) -> Run {
    run_with(toka().args(args))
}

pub fn run_with(cmd: &mut Command) -> Run {
    let out = cmd.output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `toka init --json` in `dir`: (root, admin token).
pub fn init(dir: &Path) -> (String, String) {
    init_with(dir, |_| {})
}

/// [`init`] with extra settings applied to the command (e.g. [`postgres_env`]).
pub fn init_with(dir: &Path, setup: impl FnOnce(&mut Command)) -> (String, String) {
    let mut cmd = toka();
    cmd.args(["--json", "init", "--dir", dir.to_str().unwrap()]);
    setup(&mut cmd);
    let r = run_with(&mut cmd);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    (
        v["root"].as_str().unwrap().to_string(),
        v["token"].as_str().unwrap().to_string(),
    )
}

/// [`init`] for a node that offers no tools, so its log holds exactly what the test
/// writes (tests that count or edit events by `seq`).
pub fn init_without_tools(dir: &Path) -> (String, String) {
    let ids = init(dir);
    without_tools(dir);
    ids
}

/// Turns tools off in `dir`'s toka.toml.
pub fn without_tools(dir: &Path) {
    let path = config(dir);
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("\n[tools]\nenabled = false\n");
    std::fs::write(path, text).unwrap();
}

pub fn config(dir: &Path) -> PathBuf {
    dir.join("toka.toml")
}

pub struct Server {
    pub child: Child,
    pub url: String,
}

impl Server {
    pub fn start(dir: &Path) -> Self {
        Self::start_with(dir, |_| {})
    }

    /// Starts `toka serve` with extra settings applied to the command (e.g. env).
    pub fn start_with(dir: &Path, setup: impl FnOnce(&mut Command)) -> Self {
        Self::start_on(dir, "127.0.0.1:0", setup)
    }

    /// Starts `toka serve` listening on `listen` (to restart it on the same port).
    pub fn start_on(dir: &Path, listen: &str, setup: impl FnOnce(&mut Command)) -> Self {
        let mut cmd = toka();
        cmd.args([
            "--json",
            "serve",
            "--config",
            config(dir).to_str().unwrap(),
            "--listen",
            listen,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
        setup(&mut cmd);
        let mut child = cmd.spawn().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let v: Value = serde_json::from_str(line.trim())
            .unwrap_or_else(|e| panic!("serve printed {line:?}: {e}"));
        Self {
            child,
            url: v["listening"].as_str().unwrap().to_string(),
        }
    }

    /// SIGTERM, then wait: the server drains and exits 0.
    pub fn stop(mut self) -> i32 {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        let status = self.child.wait().unwrap();
        std::mem::forget(self);
        status.code().unwrap_or(-1)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a client command against `server` with `token`.
pub fn client(server: &Server, token: &str, args: &[&str]) -> Run {
    run_with(
        toka()
            .env("TOKA_SERVER", &server.url)
            .env("TOKA_TOKEN", token)
            .args(args),
    )
}

/// The PostgreSQL the tests use: `TOKA_POSTGRES_URL`, or the CI machine's default
/// (127.0.0.1:5432, database `test`, the current user).
pub fn pg_url() -> String {
    std::env::var("TOKA_POSTGRES_URL").unwrap_or_else(|_| {
        let user = std::env::var("USER").unwrap_or_else(|_| "postgres".into());
        format!("host=127.0.0.1 port=5432 dbname=test user={user}")
    })
}

/// Points a `toka` process at the PostgreSQL log in `schema` of [`pg_url`].
pub fn postgres_env(cmd: &mut Command, schema: &str) {
    cmd.env("TOKA_STORE_DRIVER", "postgres")
        .env("TOKA_POSTGRES_URL", pg_url())
        .env("TOKA_STORE_POSTGRES_SCHEMA", schema);
}

/// Runs `sql` with the `psql` tool against [`pg_url`]; whether it succeeded.
pub fn psql(sql: &str) -> bool {
    Command::new("psql")
        .arg(pg_url())
        .args(["-v", "ON_ERROR_STOP=1", "-c", sql])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Spawns `name` under the token's subject and gives it a token with `perms`, both
/// with `admin`; (agent id, its token).
pub fn agent_with(server: &Server, admin: &str, name: &str, perms: &[&str]) -> (String, String) {
    let r = client(server, admin, &["--json", "agent", "spawn", name]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    let id = v["events"][0]["event"]["agent"]
        .as_str()
        .unwrap()
        .to_string();
    let mut args = vec!["--json", "token", "issue", "--sub", &id];
    for p in perms {
        args.extend(["--perm", p]);
    }
    let r = client(server, admin, &args);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    (id, v["token"].as_str().unwrap().to_string())
}

/// The `jti` a token carries (read without verifying: it is our own test's token).
pub fn jti_of(token: &str) -> String {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice::<Value>(&bytes).unwrap()["jti"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Whether the MCP Python SDK is installed (CI must have it: scripts/test.sh installs
/// it, and under CI its absence fails the test).
pub fn mcp_sdk_installed() -> bool {
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

/// A script of tests/mcp.
pub fn mcp_script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/mcp")
        .join(name)
}

/// The absolute path of python3 (a downstream server's `command`).
pub fn python3() -> String {
    let out = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Runs a Python MCP client script and parses the one JSON object it prints; fails
/// the test, showing its output, if it did not succeed.
pub fn python_json(cmd: &mut Command) -> Value {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "MCP client failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap()
}
