#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Output discipline (part of issue 15): a closed pipe ends a command quietly, logs
//! written to a non-terminal carry no colour codes, and the API answers unknown routes
//! and methods with a JSON error like every other refusal.

mod util;

use std::io::{Read, Write};
use std::process::Stdio;

use util::*;

/// Runs `toka args` with its stdout closed before it writes; (exit code, stderr).
fn with_closed_stdout(args: &[&str]) -> (i32, String) {
    let mut child = toka()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (child.wait().unwrap().code().unwrap_or(-1), stderr)
}

#[test]
fn a_closed_pipe_ends_quietly() {
    let (code, stderr) = with_closed_stdout(&["completions", "bash"]);
    assert_eq!((code, stderr.as_str()), (0, ""), "completions | true");
    let dir = tempfile::tempdir().unwrap();
    init(dir.path());
    let cfg = config(dir.path());
    let (code, stderr) = with_closed_stdout(&["export", "--config", cfg.to_str().unwrap()]);
    assert_eq!((code, stderr.as_str()), (0, ""), "export | head");
    let (code, stderr) = with_closed_stdout(&["replay", "--config", cfg.to_str().unwrap()]);
    assert_eq!((code, stderr.as_str()), (0, ""), "replay | head");
}

#[test]
fn logs_to_a_non_terminal_have_no_escape_codes() {
    let dir = tempfile::tempdir().unwrap();
    let demo = dir.path().join("demo");
    let r =
        run_with(
            toka()
                .env("RUST_LOG", "info")
                .args(["demo", "--dir", demo.to_str().unwrap()]),
        );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("INFO"),
        "no log lines to check: {}",
        r.stderr
    );
    assert!(
        !r.stderr.contains('\u{1b}'),
        "escape codes in logs: {:?}",
        r.stderr
    );
}

/// A raw HTTP/1.1 request; (status, body).
fn http(url: &str, method: &str, path: &str) -> (u16, String) {
    let addr = url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = response.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

#[test]
fn unknown_routes_and_methods_answer_json() {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path());
    let server = Server::start(dir.path());
    for (method, path, status, code) in [
        ("GET", "/v1/nope", 404, "not_found"),
        ("GET", "/console/nope.js", 404, "not_found"),
        ("DELETE", "/v1/state", 405, "method_not_allowed"),
        ("PUT", "/v1/messages", 405, "method_not_allowed"),
    ] {
        let (got, body) = http(&server.url, method, path);
        assert_eq!(got, status, "{method} {path}: {body}");
        let body = body
            .lines()
            .find(|l| l.starts_with('{'))
            .unwrap_or(&body)
            .to_string();
        let v: serde_json::Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}: {body:?}"));
        assert_eq!(v["error"]["code"], code, "{method} {path}");
    }
    assert_eq!(server.stop(), 0);
}
